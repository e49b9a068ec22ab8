import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

/// A database with `sql/pgevents/` applied and an `events` table with no journal: its trigger only sends a
/// wake-up (an empty NOTIFY on `new_event`), the table source reads the rows.
func tableSourceDatabase() async throws -> TemporaryDatabase {
    let database = try await Shared.postgres().makeDatabase()
    let connection = try await database.connect()
    try await MigrationSet(directory: repositoryPath("sql/pgevents")).apply(to: connection)
    try await connection.execute(
        """
        CREATE TABLE events (id bigserial PRIMARY KEY, body text NOT NULL);
        CREATE FUNCTION wake_up() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('new_event', ''); RETURN NULL; END $$;
        CREATE TRIGGER events_wake_up AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION wake_up();
        """)
    await connection.close()
    return database
}

func tableDelivery(
    _ database: TemporaryDatabase, _ redis: TemporaryRedis, consumer: String = "rows", table: String = "events", key: String = "id"
) -> EventDelivery {
    EventDelivery(
        configuration: .init(
            postgres: database.configuration, redis: redis.configuration,
            source: TableSource(name: consumer, table: table, keyColumn: key, channel: "new_event"),
            pipeline: EventPipeline(channels: [:], defaultQueue: "jobs"), batchSize: 100,
            retryDelay: { _ in .milliseconds(50) }),
        logger: Logger(label: "test"))
}

@Suite("The table source: rows of the user's table by key, exact under out-of-order commits")
struct TableSourceTests {
    @Test("a smaller key that commits after a larger one is delivered: the read waits for the older transaction")
    func outOfOrderCommit() async throws {
        let database = try await tableSourceDatabase()
        try await withTemporaryRedis { redis in
            let early = try await database.connect()
            let late = try await database.connect()
            try await early.execute("BEGIN")
            try await early.query("INSERT INTO events (body) VALUES ('early')")  // id 1, open
            try await late.query("INSERT INTO events (body) VALUES ('late')")  // id 2, committed
            // "id > last" would deliver 2 now and pass 1 for ever; the fence holds the read until 1 is decided.
            let first = tableDelivery(database, redis)
            let drain = Task { () async throws -> Int in
                let delivered = try await first.drain().delivered
                await first.close()
                return delivered
            }
            try await Task.sleep(for: .milliseconds(200))
            try await early.execute("COMMIT")
            #expect(try await drain.value == 2)
            let reader = try await redis.connect()
            #expect(try await jobs(reader) == ["early", "late"])
            let second = tableDelivery(database, redis)
            #expect(try await second.drain().delivered == 0)
            await second.close()
            await reader.close()
            await early.close()
            await late.close()
        }
    }

    @Test("a key taken with nextval early and inserted late, and a rolled-back key, are both handled")
    func explicitKeysAndRollback() async throws {
        let database = try await tableSourceDatabase()
        try await withTemporaryRedis { redis in
            let holder = try await database.connect()
            let rolledBack = try await database.connect()
            let writer = try await database.connect()
            try await holder.execute("BEGIN")
            let held = try await holder.query("SELECT nextval('events_id_seq')").scalar(Int.self)  // no row yet
            try await rolledBack.execute("BEGIN")
            try await rolledBack.query("INSERT INTO events (body) VALUES ('rolled back')")
            try await writer.query("INSERT INTO events (body) VALUES ('committed')")
            let first = tableDelivery(database, redis)
            let drain = Task { () async throws -> Int in
                let delivered = try await first.drain().delivered
                await first.close()
                return delivered
            }
            try await rolledBack.execute("ROLLBACK")
            try await Task.sleep(for: .milliseconds(100))
            try await holder.query("INSERT INTO events (id, body) VALUES ($1, 'held key')", [held])
            try await holder.execute("COMMIT")
            #expect(try await drain.value == 2)
            try await writer.query("INSERT INTO events (body) VALUES ('after')")
            let delivery = tableDelivery(database, redis)
            #expect(try await delivery.drain().delivered == 1)
            let reader = try await redis.connect()
            #expect(try await jobs(reader) == ["held key", "committed", "after"])
            await delivery.close()
            await reader.close()
            for connection in [holder, rolledBack, writer] { await connection.close() }
        }
    }

    @Test("the processor with source: table delivers rows written while stopped and by concurrent writers, each once")
    func processorEndToEnd() async throws {
        let database = try await tableSourceDatabase()
        let writer = try await database.connect()
        try await writer.query("INSERT INTO events (body) SELECT 'before ' || g FROM generate_series(1, 1000) g")
        try await withTemporaryRedis { redis in
            let configuration = try ProcessorConfiguration(
                yaml: """
                    source: table
                    consumer: rows
                    table: {name: events, key: id}
                    channels: {new_event: {queue: jobs}}
                    batch_size: 200
                    catch_up_interval: 0.5
                    listener: {heartbeat_interval: 1, heartbeat_timeout: 10}
                    retry: {initial: 0.05, maximum: 0.5}
                    """)
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            let reader = try await redis.connect()
            try await withRunningProcessor(processor) {
                try await waitForJobs(reader, count: 1000)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writerIndex in 0..<4 {
                        group.addTask {
                            let connection = try await database.connect()
                            for index in 0..<100 {
                                try await connection.query("INSERT INTO events (body) VALUES ($1)", ["w\(writerIndex) \(index)"])
                            }
                            await connection.close()
                        }
                    }
                    try await group.waitForAll()
                }
                try await waitForJobs(reader, count: 1400)
            }
            try await expectEveryRowOnce(reader, rows: 1400, in: database)
            await reader.close()
        }
        await writer.close()
    }

    @Test("registration errors name the table, the column, the type, and the fix")
    func registrationErrors() async throws {
        let database = try await tableSourceDatabase()
        let connection = try await database.connect()
        try await connection.execute(
            """
            CREATE TABLE notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text);
            CREATE TABLE other (id bigserial PRIMARY KEY);
            """)

        let wrongType = await #expect(throws: PostgresError.self) {
            try await TableSource(name: "a", table: "notes", keyColumn: "id", channel: "c").prepare(on: connection, fromStart: true)
        }
        #expect(wrongType?.sqlState == "42804")
        #expect(wrongType?.message.contains("\"notes\"") == true || wrongType?.message.contains("notes") == true)
        #expect(wrongType?.message.contains("uuid") == true)

        let missingColumn = await #expect(throws: PostgresError.self) {
            try await TableSource(name: "b", table: "events", keyColumn: "seq", channel: "c").prepare(on: connection, fromStart: true)
        }
        #expect(missingColumn?.sqlState == "42703")

        let missingTable = await #expect(throws: PostgresError.self) {
            try await TableSource(name: "c", table: "nowhere", keyColumn: "id", channel: "c").prepare(on: connection, fromStart: true)
        }
        #expect(missingTable?.sqlState == "42P01")

        _ = try await TableSource(name: "d", table: "events", keyColumn: "id", channel: "c").prepare(on: connection, fromStart: true)
        let rebound = await #expect(throws: PostgresError.self) {
            try await TableSource(name: "d", table: "other", keyColumn: "id", channel: "c").prepare(on: connection, fromStart: true)
        }
        #expect(rebound?.sqlState == "22023")

        // A role that cannot see other sessions' transactions could not wait for them: refused, with the GRANT.
        let role = "reader_\(UUID().uuidString.prefix(8).lowercased())"
        try await connection.execute(
            """
            CREATE ROLE \(role) LOGIN;
            GRANT USAGE ON SCHEMA pgevents TO \(role);
            GRANT SELECT, INSERT, UPDATE ON pgevents.table_consumers TO \(role);
            GRANT SELECT ON events TO \(role);
            """)
        var limited = database.configuration
        limited["user"] = role
        limited["password"] = nil
        let weak = try await PostgresConnection.connect(limited)
        let refused = await #expect(throws: PostgresError.self) {
            try await TableSource(name: "e", table: "events", keyColumn: "id", channel: "c").prepare(on: weak, fromStart: true)
        }
        #expect(refused?.sqlState == "42501")
        #expect(refused?.hint == "GRANT pg_read_all_stats TO \(role)")
        await weak.close()
        try await connection.execute("GRANT pg_read_all_stats TO \(role)")
        let allowed = try await PostgresConnection.connect(limited)
        _ = try await TableSource(name: "e", table: "events", keyColumn: "id", channel: "c").prepare(on: allowed, fromStart: true)
        await allowed.close()
        try await connection.execute("DROP OWNED BY \(role); DROP ROLE \(role)")
        await connection.close()
    }
}

@Suite("The table source's chunks")
struct TableSourceChunkTests {
    @Test("a chunk is bounded in bytes too; the rows after it come in the next chunks, each once")
    func chunkBytes() async throws {
        let database = try await tableSourceDatabase()
        let connection = try await database.connect()
        try await connection.query("INSERT INTO events (body) SELECT repeat('x', 100000) FROM generate_series(1, 12)")
        let source = TableSource(name: "bytes", table: "events", keyColumn: "id", channel: "new_event")
        _ = try await source.prepare(on: connection, fromStart: true)
        var keys: [Int64] = []
        var sizes: [Int] = []
        while true {
            let chunk = try await source.next(on: connection, limit: 1_000, maxBytes: 350_000, after: nil)
            if chunk.events.isEmpty { break }
            keys += chunk.events.map(\.seq)
            sizes.append(chunk.events.count)
            try await source.ack(chunk, on: connection)
        }
        #expect(keys == Array(1...12))
        #expect(sizes.allSatisfy { $0 <= 4 }, "\(sizes)")
        await connection.close()
    }
}
