import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

/// A database with the journal, an example's migrations and its processor/ migrations, and the example's
/// processor configuration. With `source: "wal"`: no processor/ migrations (no journal trigger); the example's
/// processor-wal.yml, with a slot named for the database, and its publication and slot set up.
func exampleSetup(_ name: String, source: String = "journal") async throws -> (TemporaryDatabase, ProcessorConfiguration) {
    let database = try await Shared.postgres().makeDatabase()
    let connection = try await database.connect()
    for directory in ["sql/pgevents", "sql/examples/\(name)"] + (source == "wal" ? [] : ["sql/examples/\(name)/processor"]) {
        try await MigrationSet(directory: repositoryPath(directory)).apply(to: connection)
    }
    var configuration = try ProcessorConfiguration(
        contentsOf: repositoryPath("sql/examples/\(name)/\(source == "wal" ? "processor-wal.yml" : "processor.yml")"))
    configuration.catchUpInterval = 0.5
    if var wal = configuration.wal {
        // Slots are named server-wide: one per test database.
        wal.slot = "example_\(database.name)"
        configuration.wal = wal
        let tables = try await WalSetup.tables(named: configuration.channels.map(\.name), on: connection)
        _ = try await WalSetup.create(
            on: connection, slot: wal.slot, publication: wal.publication, tables: tables, logger: Logger(label: "test"))
    }
    await connection.close()
    return (database, configuration)
}

@Suite("The seed systems, run on pgevents")
struct ExampleProcessorTests {
    @Test(
        "task-queue (003): new and retried pending tasks become jobs on tasks:pending, taken with BRPOP; others do not — from the journal, and from the WAL (source: wal, no trigger)",
        arguments: ["journal", "wal"])
    func taskQueue(source: String) async throws {
        let (database, configuration) = try await exampleSetup("task-queue", source: source)
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            let worker = try await redis.connect()
            var taken: [[String: Any]] = []
            try await withRunningProcessor(processor) {
                try await writer.execute(
                    """
                    INSERT INTO tasks (kind, queue, priority) VALUES ('render', 'default', 5), ('email', 'mail', 0);
                    INSERT INTO tasks (kind, status) VALUES ('report', 'running');
                    """)
                try await writer.execute("UPDATE tasks SET status = 'running' WHERE kind = 'render'")
                try await writer.execute("UPDATE tasks SET status = 'pending', attempts = attempts + 1 WHERE kind = 'render'")
                // Hang guards, not latency checks (here and below): in the full suite a processor's start has taken
                // 14 s, its connections to the shared server timing out once (connect_timeout 5 s) and retried.
                for _ in 0..<3 {
                    let reply = try await worker.command("BRPOP", "tasks:pending", 60)
                    let body = try #require(reply.array?.last?.bytes, "a job within 60 s")
                    taken.append(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] ?? [:])
                }
                #expect(try await worker.command("LLEN", "tasks:pending").integer == 0)
            }
            #expect(taken.map { $0["kind"] as? String } == ["render", "email", "render"])
            #expect(taken.map { ($0["attempt"] as? NSNumber)?.intValue } == [0, 0, 1])
            #expect((taken[0]["priority"] as? NSNumber)?.intValue == 5, "numbers stay numbers: \(taken[0])")
            #expect(taken[1]["queue"] as? String == "mail")
            await worker.close()
        }
        await writer.close()
    }

    @Test("chat-channels (002): message and reaction changes reach their streams, read with XREADGROUP, without the text")
    func chatChannels() async throws {
        let (database, configuration) = try await exampleSetup("chat-channels")
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            for stream in ["chat:messages", "chat:reactions"] {
                _ = try await reader.command("XGROUP", "CREATE", RedisArgument(stream), "sse", "$", "MKSTREAM")
            }
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            try await withRunningProcessor(processor) {
                try await writer.execute(
                    """
                    INSERT INTO users (username, password_hash) VALUES ('ann', 'secret-hash');
                    INSERT INTO channels (name) VALUES ('general');
                    INSERT INTO messages (channel_id, user_id, content) VALUES (1, 1, 'hello, world — a private text');
                    INSERT INTO reactions (message_id, user_id, emoji) VALUES (1, 1, '🎉');
                    DELETE FROM reactions;
                    """)
                try await withTimeout(60) {
                    while try await reader.command("XLEN", "chat:reactions").integer ?? 0 < 2 {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            func read(_ stream: String) async throws -> [String] {
                let reply = try await reader.command(
                    "XREADGROUP", "GROUP", "sse", "server-1", "COUNT", "10", "STREAMS", RedisArgument(stream), ">")
                let entries = reply.array?.first?.array?.last?.array ?? []
                return entries.compactMap { entry in
                    guard let fields = entry.array?.last?.array?.compactMap(\.string), let index = fields.firstIndex(of: "payload") else {
                        return nil
                    }
                    return fields[index + 1]
                }
            }
            let messages = try await read("chat:messages")
            #expect(messages == [#"{"op":"INSERT","id":1,"channel_id":1,"user_id":1}"#])
            #expect(
                try await read("chat:reactions") == [
                    #"{"op":"INSERT","id":1,"message_id":1,"emoji":"🎉"}"#, #"{"op":"DELETE","id":1,"message_id":1,"emoji":"🎉"}"#,
                ])
            #expect(!messages.joined().contains("private text"))
            await reader.close()
        }
        await writer.close()
    }

    @Test(
        "blockchain-events (001): each rule enqueues its job (conditions on the event's decoded data too); checkpoints go to a stream — from the journal, and from the WAL",
        arguments: ["journal", "wal"])
    func blockchainEvents(source: String) async throws {
        let (database, configuration) = try await exampleSetup("blockchain-events", source: source)
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            let worker = try await redis.connect()
            try await withRunningProcessor(processor) {
                try await writer.execute(
                    """
                    INSERT INTO events (id, chain_id, block_number, block_hash, transaction_hash, log_index, event_type, registry, agent_id, data, "timestamp", invalidated) VALUES
                      ('1-0xa-0', 1, 100, '0xb1', '0xa', 0, 'AgentRegistered', 'identity', 42, '{}', 1700000000, false),
                      ('1-0xa-1', 1, 100, '0xb1', '0xa', 1, 'AgentRegistered', 'identity', 43, '{}', 1700000000, true),
                      ('1-0xb-0', 1, 101, '0xb2', '0xb', 0, 'FeedbackGiven', 'reputation', 42, '{"score": 20, "tags": ["slow", "rude"]}', 1700000012, false),
                      ('1-0xb-1', 1, 101, '0xb2', '0xb', 1, 'FeedbackGiven', 'reputation', 42, '{"score": 90}', 1700000012, false),
                      ('137-0xc-0', 137, 5, '0xc1', '0xc', 0, 'ValidationRequested', 'validation', 42, NULL, 1700000020, false),
                      ('8453-0xd-0', 8453, 7, '0xd1', '0xd', 0, 'ValidationRequested', 'validation', 42, NULL, 1700000030, false);
                    INSERT INTO checkpoints VALUES (1, 101, '0xb2');
                    UPDATE checkpoints SET block_number = 102, block_hash = '0xb3' WHERE chain_id = 1;
                    """)
                try await withTimeout(60) {
                    while try await worker.command("XLEN", "chain:checkpoints").integer ?? 0 < 2 {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            func jobs(_ queue: String) async throws -> [String] {
                (try await worker.command("LRANGE", RedisArgument(queue), 0, -1).array ?? []).reversed().compactMap(\.string)
            }
            #expect(try await jobs("jobs:index-agent") == [#"{"event_id":"1-0xa-0","chain_id":1,"agent_id":42,"block":100}"#])
            #expect(try await jobs("jobs:review-feedback") == [#"{"event_id":"1-0xb-0","agent_id":42,"score":20,"tags":["slow","rude"]}"#])
            #expect(
                try await jobs("jobs:validation") == [#"{"event_id":"8453-0xd-0","chain":8453,"summary":"ValidationRequested at block 7"}"#]
            )
            #expect(try await worker.command("LLEN", "jobs:dead").integer == 0)
            await worker.close()
        }
        await writer.close()
    }

    /// The batch messages on GC2's stream, oldest first.
    static func gc2Batches(_ reader: RedisConnection) async throws -> [[String: Any]] {
        let entries = try await reader.command("XRANGE", "gc2:changes", "-", "+").array ?? []
        return try entries.map { entry in
            let fields = entry.array?.last?.array?.compactMap(\.string) ?? []
            let payload = try #require(fields.last, "an entry with fields: \(fields)")
            return try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any], "\(payload)")
        }
    }

    @Test(
        "gc2-csv (004): CSV records are decoded, enriched, batched per table and operation on the broadcast stream; a broken record is a dead letter"
    )
    func gc2() async throws {
        let (database, configuration) = try await exampleSetup("gc2-csv")
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            try await withRunningProcessor(processor) {
                try await writer.execute(
                    """
                    INSERT INTO parcels (parcel_no, owner_name, address) VALUES ('P-1', 'Ann', '1 Main St, "Old Town"');
                    UPDATE parcels SET owner_name = 'Bo' WHERE parcel_no = 'P-1';
                    DELETE FROM parcels WHERE parcel_no = 'P-1';
                    SELECT pgevents.emit('gc2_changes', 'INSERT,public,parcels,gid');
                    """)
                try await waitForJobs(reader, count: 1, queue: "gc2:dead")
                // Three groups of one change each: sent when due (2 s), not before.
                try await withTimeout(60) {
                    while try await reader.command("XLEN", "gc2:changes").integer ?? 0 < 3 { try await Task.sleep(for: .milliseconds(20)) }
                }
            }
            let batches = try await Self.gc2Batches(reader)
            #expect(batches.map { ($0["group"] as? [String: Any])?["event.op"] as? String } == ["INSERT", "UPDATE", "DELETE"])
            #expect(batches.allSatisfy { $0["reason"] as? String == "due" && ($0["count"] as? NSNumber)?.intValue == 1 })
            let jobs = batches.flatMap { $0["items"] as? [[String: Any]] ?? [] }
            #expect(jobs.map { $0["op"] as? String } == ["INSERT", "UPDATE", "DELETE"])
            #expect(jobs.allSatisfy { $0["table"] as? String == "public.parcels" && $0["key"] as? String == "1" })
            // Rows are fetched when the chunk is processed: by then this one is deleted, so no row (null).
            #expect(jobs.allSatisfy { $0["row"] is NSNull }, "\(jobs)")
            await reader.close()
        }
        await writer.close()
    }

    @Test("gc2-csv (004): ten changes to a table make one message at once, each enriched with its row; the rest follow when due")
    func gc2Enriched() async throws {
        let (database, configuration) = try await exampleSetup("gc2-csv")
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            try await withRunningProcessor(processor) {
                try await writer.execute(
                    """
                    INSERT INTO parcels (parcel_no, owner_name, address, area_m2)
                    SELECT 'P-' || i, 'Cy', 'Quay ' || i || ', "Harbour"', 512.25 FROM generate_series(1, 12) AS i
                    """)
                try await withTimeout(60) {
                    while try await reader.command("XLEN", "gc2:changes").integer ?? 0 < 2 { try await Task.sleep(for: .milliseconds(20)) }
                }
            }
            let batches = try await Self.gc2Batches(reader)
            #expect(batches.map { $0["reason"] as? String } == ["full", "due"])
            #expect(batches.map { ($0["count"] as? NSNumber)?.intValue } == [10, 2])
            let rows = batches.flatMap { $0["items"] as? [[String: Any]] ?? [] }.compactMap { $0["row"] as? [String: Any] }
            #expect(rows.map { $0["parcel_no"] as? String } == (1...12).map { "P-\($0)" })
            #expect(rows.first?["address"] as? String == "Quay 1, \"Harbour\"")
            #expect((rows.first?["area_m2"] as? NSNumber)?.doubleValue == 512.25)
            await reader.close()
        }
        await writer.close()
    }
}
