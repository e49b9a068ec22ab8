import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

@testable import PGEvents

/// A database with the journal and a `changes` table journaled on `change` (op, tbl, key columns).
private func batchingDatabase() async throws -> TemporaryDatabase {
    let database = try await Shared.postgres().makeDatabase()
    let connection = try await database.connect()
    try await MigrationSet(directory: repositoryPath("sql/pgevents")).apply(to: connection)
    try await connection.execute(
        """
        CREATE TABLE changes (id serial PRIMARY KEY, op text NOT NULL, tbl text NOT NULL);
        CREATE TRIGGER changes_journal AFTER INSERT ON changes
            FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('change');
        """)
    await connection.close()
    return database
}

/// The delivery of `yaml`'s processor configuration, as the processor would build it.
private func delivery(_ yaml: String, _ database: TemporaryDatabase, _ redis: TemporaryRedis) throws -> EventDelivery {
    let configuration = try ProcessorConfiguration(yaml: yaml)
    return EventProcessor(
        configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test")
    )
    .makeDelivery()
}

/// The batch messages on a list, oldest first, as JSON objects.
private func batches(_ redis: RedisConnection, _ queue: String) async throws -> [[String: Any]] {
    let items = try await redis.command("LRANGE", RedisArgument(queue), 0, -1).array ?? []
    return try items.reversed().map { item in
        try #require(try JSONSerialization.jsonObject(with: Data(item.bytes ?? [])) as? [String: Any])
    }
}

private func ids(_ batch: [String: Any]) -> [Int] {
    (batch["items"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? NSNumber)?.intValue }
}

private let groupedByOp = """
    consumer: batcher
    channels:
      change:
        decode: json
        rules:
          - enqueue: {queue: out, job: {id: "{{event.row.id}}", op: "{{event.row.op}}"}}
        batch: {max_items: 3, max_seconds: 60, group_by: [event.row.op]}
    """

@Suite("Batching: one message per group, on size or time, staged in Redis")
struct BatchingTests {
    @Test("a group is sent when it has max_items jobs, in order, one message per group; the rest waits")
    func fullBatches() async throws {
        let database = try await batchingDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            let delivery = try delivery(groupedByOp, database, redis)
            // 4 INSERTs and 3 UPDATEs, interleaved: one full batch of each op is sent, one INSERT waits.
            try await writer.execute(
                """
                INSERT INTO changes (op, tbl) VALUES ('INSERT','a'),('UPDATE','a'),('INSERT','b'),('INSERT','c'),('UPDATE','b'),('UPDATE','c'),('INSERT','d')
                """)
            let progress = try await delivery.drain()
            #expect(progress.delivered == 7)
            let sent = try await batches(reader, "out")
            #expect(sent.count == 2)
            #expect(sent.map { ($0["group"] as? [String: Any])?["event.row.op"] as? String } == ["INSERT", "UPDATE"])
            #expect(sent.map(ids) == [[1, 3, 4], [2, 5, 6]])
            #expect(
                sent.allSatisfy {
                    $0["reason"] as? String == "full" && ($0["count"] as? NSNumber)?.intValue == 3 && $0["channel"] as? String == "change"
                })
            // The fourth INSERT is staged: due in about a minute, sent by flushBatches(all:) at once.
            let deadline = try #require(delivery.nextBatchDeadline)
            #expect(deadline > .now + .seconds(50))
            #expect(try await delivery.flushBatches() == 0)
            #expect(try await delivery.flushBatches(all: true) == 1)
            let last = try #require(try await batches(reader, "out").last)
            #expect(ids(last) == [7])
            #expect(last["reason"] as? String == "drained")
            #expect(delivery.nextBatchDeadline == nil)
            await delivery.close()
            await reader.close()
        }
        await writer.close()
    }

    @Test("a batch is sent when its first job has waited max_seconds, by the processor's timer")
    func dueBatches() async throws {
        let database = try await batchingDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            let configuration = try ProcessorConfiguration(
                yaml: groupedByOp.replacing("max_seconds: 60", with: "max_seconds: 0.3") + "\ncatch_up_interval: 0.5")
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            let started = ContinuousClock.now
            var waited = Duration.zero
            try await withRunningProcessor(processor) {
                try await writer.execute("INSERT INTO changes (op, tbl) VALUES ('DELETE', 'x')")
                try await withTimeout(20) {
                    while try await reader.command("LLEN", "out").integer ?? 0 < 1 { try await Task.sleep(for: .milliseconds(10)) }
                }
                waited = ContinuousClock.now - started
            }
            let sent = try await batches(reader, "out")
            #expect(sent.count == 1)
            #expect(sent.first?["reason"] as? String == "due")
            #expect(sent.first.map(ids) == [1])
            // Not sent before it was due (a lower bound only: no timing upper bound in tests).
            #expect(waited >= .milliseconds(300))
            await reader.close()
        }
        await writer.close()
    }

    @Test("staged jobs survive the processor: a replay stages nothing twice, and another delivery sends the batch")
    func durableAndIdempotent() async throws {
        let database = try await batchingDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            let first = try delivery(groupedByOp, database, redis)
            try await writer.execute("INSERT INTO changes (op, tbl) VALUES ('INSERT','a'),('INSERT','b')")
            #expect(try await first.drain().delivered == 2)
            await first.close()  // goes away with two jobs staged (acknowledged in the journal: they are in Redis)
            let second = try delivery(groupedByOp, database, redis)
            try await writer.execute("INSERT INTO changes (op, tbl) VALUES ('INSERT','c')")
            let progress = try await second.drain()
            #expect(progress.delivered == 1)
            let sent = try await batches(reader, "out")
            #expect(sent.map(ids) == [[1, 2, 3]], "the batch staged by the first delivery was completed by the second")
            // Staging the same jobs again (a replay after a crash before the ack) adds nothing.
            let sink = RedisJobWriter()
            let event = SourceEvent(seq: 99, channel: "change", payload: "{}", createdAt: Date())
            let job = Job(
                event: event,
                destination: .batch(
                    BatchDestination(
                        queue: "out2", sink: .list, streamMaxLength: nil, channel: "change", group: "{}",
                        spec: BatchSpec(maxItems: 5, maxAge: .seconds(60)))), body: #"{"id":99}"#)
            let connection = try await redis.connect()
            #expect(try await sink.write([job], consumer: "c:1", on: connection).written == 1)
            let again = try await sink.write([job], consumer: "c:1", on: connection)
            #expect(again.written == 0 && again.duplicates == 1)
            #expect(try await sink.flushBatches(all: true, consumer: "c:1", on: connection).batchItemsSent == 1)
            await connection.close()
            await second.close()
            await reader.close()
        }
        await writer.close()
    }

    @Test("batches go to streams too (channel, count, payload), trimmed with the channel's maxlen")
    func streamBatches() async throws {
        let database = try await batchingDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            let delivery = try delivery(
                """
                consumer: streamer
                channels:
                  change:
                    queue: "changes:stream"
                    decode: json
                    sink: stream
                    stream: {maxlen: 1000}
                    batch: {max_items: 2}
                """, database, redis)
            try await writer.execute("INSERT INTO changes (op, tbl) VALUES ('INSERT','a'),('INSERT','b')")
            #expect(try await delivery.drain().delivered == 2)
            let entries = try await reader.command("XRANGE", "changes:stream", "-", "+").array ?? []
            #expect(entries.count == 1)
            let fields = entries.first?.array?.last?.array?.compactMap(\.string) ?? []
            #expect(Array(fields.prefix(4)) == ["channel", "change", "count", "2"])
            let payload = try #require(fields.last)
            let message = try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
            // No rules: each item is the decoded event.
            let items = message["items"] as? [[String: Any]] ?? []
            #expect(items.compactMap { ($0["row"] as? [String: Any])?["tbl"] as? String } == ["a", "b"])
            await delivery.close()
            await reader.close()
        }
        await writer.close()
    }

    @Test(
        "a batch Redis refuses (its list's key holds a string) goes whole to the dead-letter list with the reason; later batches are not held back"
    )
    func refusedBatch() async throws {
        let database = try await batchingDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            _ = try await reader.command("SET", "out", "not a list")
            let delivery = try delivery(groupedByOp, database, redis)
            try await writer.execute("INSERT INTO changes (op, tbl) VALUES ('INSERT','a')")
            #expect(try await delivery.drain().delivered == 1)
            #expect(try await delivery.flushBatches(all: true, retrying: false) == 1)
            let dead = try await reader.command("LRANGE", "pgevents:dead", 0, -1).array ?? []
            #expect(dead.count == 1)
            let letter = try #require(try JSONSerialization.jsonObject(with: Data(dead.first?.bytes ?? [])) as? [String: Any])
            #expect((letter["redis_error"] as? String)?.hasPrefix("WRONGTYPE") == true, "\(letter)")
            #expect((letter["reason"] as? String)?.contains("batch of 1 for out") == true)
            #expect(letter["destination"] as? String == "out")
            let batch = try #require(
                try JSONSerialization.jsonObject(with: Data(((letter["job"] as? String) ?? "").utf8)) as? [String: Any])
            #expect(batch["count"] as? Int == 1)
            // Once the key is fixed, the next batches go out.
            _ = try await reader.command("DEL", "out")
            try await writer.execute("INSERT INTO changes (op, tbl) VALUES ('INSERT','b')")
            #expect(try await delivery.drain().delivered == 1)
            #expect(try await delivery.flushBatches(all: true, retrying: false) == 1)
            #expect(try await batches(reader, "out").map(ids) == [[2]])
            await delivery.close()
            await reader.close()
        }
        await writer.close()
    }
}
