import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

@testable import PGEvents

/// A database with the journal and a `things` table whose key column has the given type.
private func keyedDatabase(keyType: String, keys: [String], setup: String = "") async throws -> TemporaryDatabase {
    let database = try await journalDatabase()
    let connection = try await database.connect()
    try await connection.execute(setup)
    try await connection.execute("CREATE TABLE things (code \(keyType) PRIMARY KEY, name text NOT NULL)")
    for (index, key) in keys.enumerated() {
        try await connection.query("INSERT INTO things VALUES ($1, $2)", [key, "thing \(index + 1)"])
    }
    await connection.close()
    return database
}

/// A processor whose channel `ev` decodes JSON, fetches `things` by `event.row.k`, and queues the payload on `jobs`.
private func fetchingProcessor(
    _ database: TemporaryDatabase, _ redis: TemporaryRedis, logger: Logger = Logger(label: "test"), extra: String = ""
) throws -> EventProcessor {
    let configuration = try ProcessorConfiguration(
        yaml: """
            consumer: poison
            channels:
              ev:
                decode: json
                fetch: {table: public.things, key: code, from: event.row.k}
                queue: jobs
                max_attempts: 2
                attempt_backoff: 0.02
            catch_up_interval: 0.5
            listener: {heartbeat_interval: 0.5, heartbeat_timeout: 1}
            retry: {initial: 0.05, maximum: 0.5}
            \(extra)
            """)
    return EventProcessor(configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: logger)
}

/// The dead letters on `queue`, oldest first.
func deadLetters(_ redis: RedisConnection, _ queue: String = "pgevents:dead") async throws -> [[String: Any]] {
    try (await redis.command("LRANGE", RedisArgument(queue), 0, -1).array ?? []).reversed().map { item in
        try JSONSerialization.jsonObject(with: Data(item.bytes ?? [])) as? [String: Any] ?? [:]
    }
}

/// The payloads on the list `queue`, oldest first.
func payloads(_ redis: RedisConnection, _ queue: String = "jobs") async throws -> [String] {
    (try await redis.command("LRANGE", RedisArgument(queue), 0, -1).array ?? []).reversed().compactMap(\.string)
}

/// Puts the consumer back to "batch `batchID` was read and delivered, but not acknowledged": what a crash between Redis
/// and the acknowledgement leaves (the batch's snapshot and number were stored when it was opened). `doneBefore` is
/// the done snapshot before that batch; everything committed since must belong to it.
func rewindToUnacknowledged(_ database: TemporaryDatabase, consumer: String, doneBefore: String, batchID: Int) async throws {
    let connection = try await database.connect()
    try await connection.query(
        """
        UPDATE pgevents.consumers SET batch_snapshot = done_snapshot, done_snapshot = $2::pg_snapshot, batch_seq = 0, batch_id = $3
         WHERE name = $1
        """, [consumer, doneBefore, batchID])
    await connection.close()
}

@Suite("Poison events: one bad event never stops delivery")
struct PoisonEventTests {
    struct KeyCase: Sendable, CustomTestStringConvertible {
        var type: String
        var good: String
        var bad: String
        /// The SQLSTATE of the bad key's dead letter; nil where PostgreSQL would round or truncate it silently.
        var sqlState: String?
        var setup = ""
        var testDescription: String { "\(type): '\(bad)'" }
    }

    @Test(
        "the good events of the chunk are delivered once and in order, the bad one is dead-lettered with why, and a replay after a crash writes nothing twice",
        arguments: [
            KeyCase(type: "date", good: "2026-01-01", bad: "not-a-date", sqlState: "22007"),
            KeyCase(type: "timestamptz", good: "2026-01-01 10:00:00+00", bad: "2026-13-45 10:00", sqlState: "22008"),
            KeyCase(type: "mood", good: "happy", bad: "furious", sqlState: "22P02", setup: "CREATE TYPE mood AS ENUM ('happy', 'sad')"),
            KeyCase(type: "inet", good: "10.0.0.1", bad: "10.0.0.300", sqlState: "22P02"),
            KeyCase(type: "numeric(5,2)", good: "12.50", bad: "1234567", sqlState: "22003"),
            KeyCase(type: "integer", good: "7", bad: "99999999999", sqlState: "22003"),
            KeyCase(type: "varchar(5)", good: "abcde", bad: "abcdefgh", sqlState: nil),
            KeyCase(type: "numeric(3,1)", good: "1.2", bad: "1.24", sqlState: nil),
            KeyCase(type: "real", good: "0.1", bad: "0.1000000001", sqlState: nil),
        ])
    func badKey(_ key: KeyCase) async throws {
        let database = try await keyedDatabase(keyType: key.type, keys: [key.good], setup: key.setup)
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            // Registered first, so that the three events form one batch after this snapshot.
            let registration = try await database.connect()
            try await JournalSource(name: "poison").register(on: registration)
            let doneBefore = try await registration.query("SELECT done_snapshot::text FROM pgevents.consumers WHERE name = 'poison'")
                .scalar(String.self)
            await registration.close()
            let payload = { (n: Int, k: String) in #"{"n":\#(n),"row":{"k":"\#(k)"}}"# }
            try await writer.execute("BEGIN")
            for (n, k) in [(1, key.good), (2, key.bad), (3, key.good)] {
                try await writer.query("SELECT pgevents.emit('ev', $1)", [payload(n, k)])
            }
            try await writer.execute("COMMIT")

            let processor = try fetchingProcessor(database, redis)
            try await withRunningProcessor(processor) {
                try await waitForJobs(reader, count: 2)
                try await waitForJobs(reader, count: 1, queue: "pgevents:dead")
            }
            #expect(try await payloads(reader) == [payload(1, key.good), payload(3, key.good)])
            let dead = try await deadLetters(reader)
            #expect(dead.count == 1)
            #expect(dead.first?["seq"] as? Int == 2)
            #expect(dead.first?["channel"] as? String == "ev")
            #expect(dead.first?["payload"] as? String == payload(2, key.bad))
            #expect(dead.first?["sqlstate"] as? String == key.sqlState, "\(dead.first ?? [:])")
            #expect(
                (dead.first?["reason"] as? String)?.contains(key.sqlState == nil ? "not exactly a value of" : "not a value of") == true,
                "\(dead.first ?? [:])")
            #expect((dead.first?["hint"] as? String)?.contains("dead-letters replay") == true)

            // A crash after Redis took the first batch and before its acknowledgement: the next run replays it, and
            // goes on (the processor is alive: a later event is delivered).
            try await rewindToUnacknowledged(database, consumer: "poison", doneBefore: doneBefore, batchID: 1)
            try await withRunningProcessor(try fetchingProcessor(database, redis)) {
                try await writer.query("SELECT pgevents.emit('ev', $1)", [payload(4, key.good)])
                try await waitForJobs(reader, count: 3)
            }
            #expect(try await payloads(reader) == [1, 3, 4].map { payload($0, key.good) })
            #expect(try await deadLetters(reader).count == 1)
            await reader.close()
        }
        await writer.close()
    }

    @Test(
        "a job Redis refuses (WRONGTYPE) is tried max_attempts times, then dead-lettered with Redis' error; other queues go on; replay writes it once fixed"
    )
    func refusedJob() async throws {
        let database = try await keyedDatabase(keyType: "int", keys: ["1"])
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            try await reader.command("SET", "jobs:bad", "not a list")
            let configuration = try ProcessorConfiguration(
                yaml: """
                    consumer: refused
                    channels:
                      ev:
                        decode: json
                        rule_mode: all_matches
                        rules:
                          - {name: good, enqueue: {queue: "jobs:ok", job: {n: "{{event.n}}"}}}
                          - {name: bad, when: {field: event.n, lt: 3}, enqueue: {queue: "jobs:bad", job: {n: "{{event.n}}"}}}
                        max_attempts: 3
                        attempt_backoff: 0.02
                    catch_up_interval: 0.5
                    retry: {initial: 0.05, maximum: 0.5}
                    """)
            let capture = LogCapture()
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: capture.logger())
            try await withRunningProcessor(processor) {
                try await writer.execute("SELECT pgevents.emit('ev', '{\"n\":' || g || '}') FROM generate_series(1, 4) g")
                try await waitForJobs(reader, count: 4, queue: "jobs:ok")
                try await waitForJobs(reader, count: 2, queue: "pgevents:dead")
            }
            #expect(try await payloads(reader, "jobs:ok") == (1...4).map { #"{"n":\#($0)}"# })
            let dead = try await deadLetters(reader)
            #expect(dead.map { $0["seq"] as? Int } == [1, 2])
            #expect(dead.allSatisfy { ($0["redis_error"] as? String)?.hasPrefix("WRONGTYPE") == true }, "\(dead)")
            #expect(dead.allSatisfy { $0["attempts"] as? Int == 3 })
            #expect(dead.map { $0["job"] as? String } == [#"{"n":1}"#, #"{"n":2}"#])
            #expect(dead.allSatisfy { $0["destination"] as? String == "jobs:bad" })
            #expect(capture.records("event sent to the dead-letter list").count == 2)
            #expect(
                !capture.records.contains { $0.level >= .info && $0.metadata.values.contains { $0.contains(#"{"n":1}"#) } },
                "no payload above debug")

            // Fixed, and replayed: each refused job is written once, and the list is empty.
            try await reader.command("DEL", "jobs:bad")
            let replayed = try await DeadLetterQueue(name: "pgevents:dead").replay(limit: 10, redis: .server(reader), postgres: nil)
            #expect(replayed == .init(jobsWritten: 2, eventsEmitted: 0, skipped: 0))
            #expect(try await payloads(reader, "jobs:bad") == [#"{"n":1}"#, #"{"n":2}"#])
            #expect(try await deadLetters(reader).isEmpty)
            await reader.close()
        }
        await writer.close()
    }

    @Test("a job larger than Redis takes is dead-lettered at once (with an excerpt of its payload); the rest goes on")
    func oversizedJob() async throws {
        let database = try await keyedDatabase(keyType: "int", keys: ["1"])
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            try await reader.command("CONFIG", "SET", "proto-max-bulk-len", "1mb")
            let processor = EventProcessor(
                configuration: try processorConfiguration(consumer: "big"), postgres: database.configuration,
                redis: redis.configuration, logger: Logger(label: "test"))
            try await withRunningProcessor(processor) {
                try await writer.execute(
                    """
                    INSERT INTO events (body) VALUES ('small 1'), (repeat('x', 1500000)), ('small 2');
                    """)
                try await waitForJobs(reader, count: 2)
                try await waitForJobs(reader, count: 1, queue: "pgevents:dead")
            }
            #expect(try await jobs(reader) == ["small 1", "small 2"])
            let dead = try #require(try await deadLetters(reader).first)
            #expect((dead["redis_error"] as? String)?.contains("proto-max-bulk-len") == true, "\(dead)")
            #expect(dead["attempts"] as? Int == 1)
            #expect((dead["payload_bytes"] as? Int ?? 0) > 1_500_000)
            #expect((dead["payload"] as? String)?.utf8.count ?? .max < 2_000)
            await reader.close()
        }
        await writer.close()
    }

    @Test("an undecodable payload is replayed into the journal once fixed at its source")
    func replayIntoJournal() async throws {
        let database = try await keyedDatabase(keyType: "int", keys: ["1"])
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            try await withRunningProcessor(try fetchingProcessor(database, redis)) {
                try await writer.query("SELECT pgevents.emit('ev', 'not json')")
                try await waitForJobs(reader, count: 1, queue: "pgevents:dead")
            }
            let letters = try await DeadLetterQueue(name: "pgevents:dead").list(limit: 5, on: .server(reader))
            #expect(letters.map(\.replay) == ["emit the payload into the journal on channel ev"])
            let admin = try await database.connect()
            #expect(
                try await DeadLetterQueue(name: "pgevents:dead").replay(limit: 5, redis: .server(reader), postgres: admin)
                    == .init(jobsWritten: 0, eventsEmitted: 1, skipped: 0))
            #expect(try await admin.query("SELECT count(*) FROM pgevents.journal WHERE payload = 'not json'").scalar(Int.self) == 2)
            await admin.close()
            await reader.close()
        }
        await writer.close()
    }
}

@Suite("Outages are held, not dead-lettered")
struct OutageTests {
    @Test(
        "Redis OOM (maxmemory, noeviction) and READONLY (a demoted primary): delivery waits, then goes on; no dead letter",
        arguments: ["OOM", "READONLY"])
    func holds(_ kind: String) async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let admin = try await redis.connect()
            let capture = LogCapture()
            let processor = EventProcessor(
                configuration: try processorConfiguration(consumer: "outage"), postgres: database.configuration,
                redis: redis.configuration, logger: capture.logger())
            try await withRunningProcessor(processor) {
                try await writer.query("INSERT INTO events (body) VALUES ('before')")
                try await waitForJobs(admin, count: 1)
                if kind == "OOM" {
                    try await admin.command("CONFIG", "SET", "maxmemory", "1")
                } else {
                    // A replica of a server that is not there: writes are refused with READONLY.
                    try await admin.command("REPLICAOF", "127.0.0.1", "1")
                }
                try await writer.query("INSERT INTO events (body) VALUES ('during')")
                try await withTimeout(20) {
                    while !capture.records("delivery failed; retrying").contains(where: { $0.metadata["error"]?.contains(kind) == true }) {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                if kind == "OOM" {
                    try await admin.command("CONFIG", "SET", "maxmemory", "0")
                } else {
                    try await admin.command("REPLICAOF", "NO", "ONE")
                }
                try await waitForJobs(admin, count: 2)
            }
            #expect(try await jobs(admin) == ["before", "during"])
            #expect(try await admin.command("EXISTS", "pgevents:dead").integer == 0)
            await admin.close()
        }
        await writer.close()
    }

    @Test("maxmemory-policy allkeys-lru is refused at start, naming the fix")
    func evictionRefused() async throws {
        let database = try await journalDatabase()
        try await withTemporaryRedis { redis in
            let admin = try await redis.connect()
            try await admin.command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
            let processor = EventProcessor(
                configuration: try processorConfiguration(consumer: "lru"), postgres: database.configuration,
                redis: redis.configuration, logger: Logger(label: "test"))
            let error = await #expect(throws: ProcessorError.self) { try await withTimeout(20) { try await processor.run() } }
            #expect(error?.code == .invalidConfiguration)
            #expect(
                error?.message.contains("allkeys-lru") == true && error?.message.contains("noeviction") == true, "\(error?.message ?? "")")
            // Allowed explicitly, it starts (and says so).
            var allowed = try processorConfiguration(consumer: "lru")
            allowed.allowRedisEviction = true
            let capture = LogCapture()
            try await withRunningProcessor(
                EventProcessor(
                    configuration: allowed, postgres: database.configuration, redis: redis.configuration, logger: capture.logger())
            ) {
                try await capture.waitFor(timeout: 20, "leader", count: 1)
            }
            #expect(capture.records.contains { $0.level == .warning && $0.message.contains("allkeys-lru") })
            await admin.close()
        }
    }
}

@Suite("Nothing grows without bound")
struct BoundedGrowthTests {
    @Test("pruning keeps pace with more than 10,000 events per prune interval: the journal is empty once delivery stops")
    func pruningKeepsPace() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            var configuration = try processorConfiguration(consumer: "pruner")
            configuration.pruneInterval = 1
            configuration.batchSize = 1_000
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            try await withRunningProcessor(processor) {
                for round in 0..<4 {
                    try await writer.query("INSERT INTO events (body) SELECT 'r\(round) ' || g FROM generate_series(1, 8000) g")
                    try await Task.sleep(for: .milliseconds(300))
                }
                try await waitForJobs(reader, count: 32_000, seconds: 60)
                try await withTimeout(30) {
                    while try await writer.query("SELECT count(*) FROM pgevents.journal").scalar(Int.self) > 0 {
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
            }
            #expect(try await writer.query("SELECT count(*) FROM pgevents.journal").scalar(Int.self) == 0)
            await reader.close()
        }
        await writer.close()
    }

    @Test("a chunk is bounded in bytes as well as in events")
    func chunkBytes() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await writer.query("INSERT INTO events (body) SELECT repeat('x', 100000) FROM generate_series(1, 20)")
        let connection = try await database.connect()
        let source = JournalSource(name: "bytes")
        try await source.register(on: connection)
        var sizes: [Int] = []
        var after: EventChunk?
        while true {
            let chunk = try await source.next(on: connection, limit: 1_000, maxBytes: 450_000, after: after)
            if chunk.events.isEmpty { break }
            sizes.append(chunk.events.count)
            #expect(!chunk.completesBatch || chunk.events.count < 5)
            after = chunk
        }
        // Each event is a little over 100 kB of JSON: five cross 450 kB, so a chunk holds five at most.
        #expect(sizes.reduce(0, +) == 20)
        #expect(sizes.allSatisfy { $0 <= 5 }, "\(sizes)")
        await connection.close()
        await writer.close()
    }
}
