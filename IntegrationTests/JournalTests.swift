import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

/// A path inside this repository (the tests run from a checkout).
func repositoryPath(_ relative: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(relative).path
}

/// A database with the journal installed and an `events` table whose trigger journals every change.
func journalDatabase(on server: TemporaryPostgres? = nil) async throws -> TemporaryDatabase {
    let host: TemporaryPostgres
    if let server { host = server } else { host = try await Shared.postgres() }
    let database = try await host.makeDatabase()
    let connection = try await database.connect()
    try await MigrationSet(directory: repositoryPath("sql/pgevents")).apply(to: connection)
    try await connection.execute(
        """
        CREATE TABLE events (id bigserial PRIMARY KEY, body text NOT NULL);
        CREATE TRIGGER events_journal AFTER INSERT OR UPDATE OR DELETE ON events
            FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('new_event');
        """)
    await connection.close()
    return database
}

/// The `body` of every job on `queue`, oldest first (LPUSH puts the newest at the head).
func jobs(_ redis: RedisConnection, _ queue: String = "jobs") async throws -> [String] {
    let reply = try await redis.command("LRANGE", RedisArgument(queue), 0, -1)
    return try (reply.array ?? []).reversed().map { item in
        let object = try JSONSerialization.jsonObject(with: Data(item.bytes ?? [])) as? [String: Any]
        return (object?["row"] as? [String: Any])?["body"] as? String ?? "?"
    }
}

func delivery(_ database: TemporaryDatabase, _ redis: TemporaryRedis, consumer: String = "test") -> EventDelivery {
    EventDelivery(
        configuration: .init(
            postgres: database.configuration, redis: redis.configuration, source: JournalSource(name: consumer),
            pipeline: EventPipeline(channels: [:], defaultQueue: "jobs"), batchSize: 100,
            retryDelay: { _ in .milliseconds(50) }),
        logger: Logger(label: "test"))
}

@Suite("The journal: exact catch-up and idempotent delivery")
struct JournalTests {
    @Test("events committed out of order are all delivered, each once")
    func outOfOrderCommits() async throws {
        let database = try await journalDatabase()
        try await withTemporaryRedis { redis in
            let early = try await database.connect()
            let late = try await database.connect()
            // The first transaction takes seq 1 but commits last; the second takes seq 2 and commits first.
            try await early.execute("BEGIN")
            try await early.query("INSERT INTO events (body) VALUES ('early, committed second')")
            try await late.query("INSERT INTO events (body) VALUES ('late, committed first')")

            let processor = delivery(database, redis)
            let first = try await processor.drain()
            let reader = try await redis.connect()
            #expect(try await jobs(reader) == ["late, committed first"])
            #expect(first.delivered == 1)

            try await early.execute("COMMIT")
            // "seq > last delivered seq" would skip seq 1 here; the snapshot technique does not.
            let second = try await processor.drain()
            #expect(second.delivered == 1)
            #expect(try await jobs(reader) == ["late, committed first", "early, committed second"])
            #expect(try await processor.drain().delivered == 0)
            await processor.close()
            await reader.close()
            await early.close()
            await late.close()
        }
    }

    @Test("1,000 events committed before the consumer ever ran are all delivered, in chunks")
    func backlog() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        for index in 0..<10 {  // ten transactions of a hundred rows
            try await writer.query("INSERT INTO events (body) SELECT $1 || '-' || g FROM generate_series(1, 100) g", ["t\(index)"])
        }
        try await withTemporaryRedis { redis in
            let processor = delivery(database, redis)
            let progress = try await processor.drain()
            #expect(progress.delivered == 1_000)
            #expect(progress.duplicates == 0)
            #expect(progress.chunks >= 10)
            let reader = try await redis.connect()
            let delivered = try await jobs(reader)
            #expect(delivered.count == 1_000)
            #expect(Set(delivered).count == 1_000)
            await reader.close()
            await processor.close()
        }
        await writer.close()
    }

    @Test("a replay of events already pushed enqueues no duplicate")
    func idempotentReplay() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await writer.query("INSERT INTO events (body) SELECT 'row ' || g FROM generate_series(1, 5) g")
        try await withTemporaryRedis { redis in
            // A crash between the push and the acknowledgement: push the chunk without acking it.
            let connection = try await database.connect()
            let consumer = JournalSource(name: "test")
            let instance = try await consumer.register(on: connection)
            let chunk = try await consumer.next(on: connection, limit: 3)
            let reader = try await redis.connect()
            let sink = listWriter("jobs")
            #expect(try await sink.deliver(chunk.events, consumer: "test:\(instance)", on: reader) == Counts(pushed: 3, duplicates: 0))
            await connection.close()

            let processor = delivery(database, redis)
            let progress = try await processor.drain()
            #expect(progress.duplicates == 3)
            #expect(progress.delivered == 2)
            #expect(try await jobs(reader) == (1...5).map { "row \($0)" })
            await processor.close()
            await reader.close()
        }
        await writer.close()
    }

    @Test("two databases with the same consumer name share one Redis without their keys colliding")
    func separateKeySpaces() async throws {
        let first = try await journalDatabase()
        let second = try await journalDatabase()
        for database in [first, second] {
            let writer = try await database.connect()
            try await writer.query("INSERT INTO events (body) SELECT 'row ' || g FROM generate_series(1, 5) g")
            await writer.close()
        }
        try await withTemporaryRedis { redis in
            let a = delivery(first, redis)
            let b = delivery(second, redis)
            #expect(try await a.drain().delivered == 5)
            // Same consumer name, same seq numbers 1…5: still new events, not duplicates.
            let progress = try await b.drain()
            #expect(progress.delivered == 5)
            #expect(progress.duplicates == 0)
            await a.close()
            await b.close()
        }
    }

    @Test("two processors on one consumer: one leads, the other stands by and takes over")
    func leadership() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await writer.query("INSERT INTO events (body) VALUES ('one')")
        try await withTemporaryRedis { redis in
            let leader = delivery(database, redis)
            let standby = delivery(database, redis)
            #expect(try await leader.drain().isLeader)
            try await writer.query("INSERT INTO events (body) VALUES ('two')")
            let stoodBy = try await standby.drain()
            #expect(!stoodBy.isLeader)
            #expect(stoodBy.delivered == 0)
            await leader.close()  // the leader goes away: its lock goes with its backend, a moment later
            // The standby tries at every wake-up; here, until the old backend has gone.
            var takeover = try await standby.drain()
            for _ in 0..<500 where !takeover.isLeader {  // at most ~5 s
                try await Task.sleep(for: .milliseconds(10))
                takeover = try await standby.drain()
            }
            #expect(takeover.isLeader)
            #expect(takeover.delivered == 1)
            let reader = try await redis.connect()
            #expect(try await jobs(reader) == ["one", "two"])
            await reader.close()
            await standby.close()
        }
        await writer.close()
    }

    @Test("prune deletes only what every consumer has delivered")
    func prune() async throws {
        // A server of its own: a transaction left open anywhere in a cluster holds back what may be pruned
        // (snapshots are cluster-wide), and other tests keep transactions open on the shared server.
        try await withTemporaryPostgres { (server: TemporaryPostgres) async throws -> Void in
            let database = try await journalDatabase(on: server)
            let writer = try await database.connect()
            try await writer.query("INSERT INTO events (body) SELECT 'row ' || g FROM generate_series(1, 10) g")
            try await withTemporaryRedis { (redis: TemporaryRedis) async throws -> Void in
                let fast = delivery(database, redis, consumer: "fast")
                let slow = delivery(database, redis, consumer: "slow")
                #expect(try await slow.prune().deleted == 0)  // registers "slow" (from the start) and prunes nothing
                #expect(try await fast.drain().delivered == 10)
                #expect(try await fast.prune().deleted == 0)  // "slow" has delivered nothing yet
                #expect(try await slow.drain().delivered == 10)
                #expect(try await fast.prune().deleted == 10)
                #expect(try await writer.query("SELECT count(*) FROM pgevents.journal").scalar(Int.self) == 0)
                await fast.close()
                await slow.close()
            }
            await writer.close()
        }
    }

    @Test("ack_and_next acknowledges and reads in one statement, and closes a new batch it finds empty")
    func acknowledgeAndRead() async throws {
        let database = try await journalDatabase()
        try await database.connect().closeAfter { connection in
            try await connection.query("SELECT pgevents.register_consumer('one', true)")
            try await connection.query("INSERT INTO events (body) SELECT 'row ' || g FROM generate_series(1, 3) g")
            let first = try await connection.query("SELECT seq, batch_id FROM pgevents.next_events('one', 10)")
            #expect(first.count == 3)
            let last = try #require(first.last).decode(Int64.self, at: 0)
            let batch = try #require(first.last).decode(Int64.self, at: 1)
            // The whole batch acknowledged; nothing committed since: the next batch is opened, found empty and closed.
            let empty = try await connection.query("SELECT seq FROM pgevents.ack_and_next('one', $1, true, 10)", [last])
            #expect(empty.count == 0)
            let open = try await connection.query("SELECT batch_snapshot IS NULL, batch_id FROM pgevents.consumers WHERE name = 'one'")
            #expect(try open.first?.decode(Bool.self, at: 0) == true, "an empty batch is not left open")
            #expect(try open.first?.decode(Int64.self, at: 1) == batch + 1)
            // Committed after that: the next call opens a batch with them (acknowledging nothing new).
            try await connection.query("INSERT INTO events (body) VALUES ('late')")
            let late = try await connection.query("SELECT seq, payload FROM pgevents.ack_and_next('one', 0, true, 10)")
            #expect(late.count == 1)
            #expect(try late.first?.decode(String.self, at: 1).contains("late") == true)
            // Mid-batch (p_after given, a chunk still in flight): an empty read leaves the batch open.
            let seq = try #require(late.first).decode(Int64.self, at: 0)
            let rest = try await connection.query("SELECT seq FROM pgevents.ack_and_next('one', $1, false, 10, $1)", [seq])
            #expect(rest.count == 0)
            #expect(
                try await connection.query("SELECT batch_snapshot IS NOT NULL FROM pgevents.consumers WHERE name = 'one'").scalar(Bool.self)
            )
        }
        // The delivery drains through it: every event once.
        try await withTemporaryRedis { redis in
            let events = delivery(database, redis, consumer: "one")  // "late" is acknowledged: only the new rows remain
            let writer = try await database.connect()
            try await writer.query("INSERT INTO events (body) SELECT 'again ' || g FROM generate_series(1, 250) g")
            // Every row once, over as many drains as it takes.
            var delivered = 0
            for _ in 0..<5 where delivered < 250 { delivered += try await events.drain().delivered }
            #expect(delivered == 250)
            #expect(try await events.drain().delivered == 0)
            let connection = try await RedisConnection.connect(redis.configuration)
            #expect(try await jobs(connection).count == 250)
            await connection.close()
            await writer.close()
            await events.close()
        }
    }

    @Test("a journal installed by an older version is reported with how to update it")
    func journalOutdated() async throws {
        let database = try await journalDatabase()
        try await database.connect().closeAfter { connection in
            try await connection.execute("DROP FUNCTION pgevents.ack_and_next")
        }
        try await withTemporaryRedis { redis in
            let processor = delivery(database, redis)
            let error = await #expect(throws: ProcessorError.self) { try await processor.drain() }
            #expect(error?.code == .journalMissing)
            #expect(error?.message.contains("older than this processor") == true)
            #expect(error?.message.contains("sql/pgevents/001_journal.sql again") == true)
            await processor.close()
        }
    }

    @Test("a database without the journal is reported with how to install it")
    func journalMissing() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            let processor = delivery(database, redis)
            let error = await #expect(throws: ProcessorError.self) { try await processor.drain() }
            #expect(error?.code == .journalMissing)
            #expect(error?.message.contains("sql/pgevents/001_journal.sql") == true)
            await processor.close()
        }
    }
}

@Suite("The job writer's lists")
struct RedisListWriterTests {
    @Test("a push Redis refuses records nothing, so the retry delivers the event")
    func refusedPushIsRetried() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await writer.query("INSERT INTO events (body) SELECT 'row ' || g FROM generate_series(1, 3) g")
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            try await reader.command("SET", "jobs", "not a list")  // LPUSH on it fails with WRONGTYPE
            let connection = try await database.connect()
            let consumer = JournalSource(name: "sink")
            let instance = try await consumer.register(on: connection)
            let chunk = try await consumer.next(on: connection, limit: 10)
            let sink = listWriter("jobs")
            let refused = try await sink.write(chunk.events, consumer: "sink:\(instance)", on: reader)
            #expect(refused.written == 0)
            #expect(refused.failures.count == 3)
            #expect(refused.failures.first?.message.contains("WRONGTYPE") == true)
            #expect(try await reader.command("HLEN", RedisArgument("pgevents:seen:sink:\(instance):delivered")).integer == 0)

            try await reader.command("DEL", "jobs")
            #expect(try await sink.deliver(chunk.events, consumer: "sink:\(instance)", on: reader) == Counts(pushed: 3, duplicates: 0))
            #expect(try await sink.deliver(chunk.events, consumer: "sink:\(instance)", on: reader) == Counts(pushed: 0, duplicates: 3))
            #expect(try await jobs(reader) == ["row 1", "row 2", "row 3"])
            await connection.close()
            await reader.close()
        }
        await writer.close()
    }

    @Test("chunks larger than one script call are split, and every event is pushed once")
    func largeChunks() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await writer.query("INSERT INTO events (body) SELECT 'row ' || g FROM generate_series(1, 1234) g")
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            let connection = try await database.connect()
            let consumer = JournalSource(name: "sink")
            let instance = try await consumer.register(on: connection)
            let chunk = try await consumer.next(on: connection, limit: 5_000)
            let sink = listWriter("jobs")
            #expect(try await sink.deliver(chunk.events, consumer: "sink:\(instance)", on: reader) == Counts(pushed: 1234, duplicates: 0))
            #expect(try await jobs(reader) == (1...1234).map { "row \($0)" })
            await connection.close()
            await reader.close()
        }
        await writer.close()
    }
}

@Suite("JournalSchema.install")
struct JournalSchemaInstallTests {
    @Test("installs the journal in a database (twice: every file is safe to apply again), ready for emit and a consumer")
    func install() async throws {
        let database = try await Shared.database()
        let connection = try await database.connect()
        try await JournalSchema.install(on: connection)
        try await JournalSchema.install(on: connection)
        #expect(try await connection.query("SELECT pgevents.emit('c', 'p')").scalar(Int.self) == 1)
        try await JournalSource(name: "installed").register(on: connection)
        #expect(try await JournalSource(name: "installed").next(on: connection, limit: 10).events.map(\.payload) == ["p"])
        await connection.close()
    }
}
