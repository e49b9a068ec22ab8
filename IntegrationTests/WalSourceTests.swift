import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

/// A database of the shared server with `sql/pgevents/` applied and the tables the WAL tests change.
func walDatabase() async throws -> TemporaryDatabase {
    let database = try await Shared.postgres().makeDatabase()
    try await PostgresConnection.withConnection(database.configuration) { connection in
        try await MigrationSet(directory: repositoryPath("sql/pgevents")).apply(to: connection)
        try await connection.execute("""
            CREATE TABLE tasks (id bigserial PRIMARY KEY, state text NOT NULL, amount numeric, done boolean, meta jsonb, body text);
            CREATE TABLE audit (note text, at int);
            ALTER TABLE audit REPLICA IDENTITY FULL;
            """)
    }
    return database
}

/// The processor's file for the WAL tests: tasks, audit and the emit_wal channel `task_event`.
func walConfiguration(consumer: String, extra: String = "") throws -> ProcessorConfiguration {
    try ProcessorConfiguration(yaml: """
        source: wal
        consumer: \(consumer)
        channels:
          public.tasks: {queue: tasks}
          public.audit: {queue: audit}
          task_event: {queue: messages}
        batch_size: 100
        catch_up_interval: 0.5
        retry: {initial: 0.05, maximum: 0.5}
        \(extra)
        """)
}

/// Creates the publication and slot of `configuration` (as `pgevents wal setup` does), runs `body`, and drops the slot
/// (a database with a slot cannot be dropped).
func withWalSetup(_ database: TemporaryDatabase, _ configuration: ProcessorConfiguration, _ body: () async throws -> Void) async throws {
    let wal = try #require(configuration.wal)
    try await PostgresConnection.withConnection(database.configuration) { connection in
        let tables = try await WalSetup.tables(named: configuration.channels.map(\.name), on: connection)
        _ = try await WalSetup.create(on: connection, slot: wal.slot, publication: wal.publication, tables: tables, logger: Logger(label: "test"))
    }
    do {
        try await body()
    } catch {
        try await dropSlot(wal.slot, in: database)
        throw error
    }
    try await dropSlot(wal.slot, in: database)
}

func dropSlot(_ slot: String, in database: TemporaryDatabase) async throws {
    try await PostgresConnection.withConnection(database.configuration) { connection in
        // The processor's WAL sender ends with its connection; wait until the slot is free.
        try await withTimeout(20) {
            while try await connection.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active", [slot]).scalar(Int.self) > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        try await connection.query("SELECT pg_drop_replication_slot($1)", [slot])
    }
}

func walJobs(_ redis: RedisConnection, _ queue: String) async throws -> [String] {
    (try await redis.command("LRANGE", RedisArgument(queue), 0, -1).array ?? []).reversed().compactMap(\.string)
}

@Suite("The WAL source: table changes and emit_wal messages from a logical replication slot")
struct WalSourceTests {
    @Test("inserts, updates, deletes (identity default and full), TOASTed unchanged columns, truncate and messages, typed")
    func changesAndMessages() async throws {
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_changes")
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis { redis in
                let writer = try await database.connect()
                let big = try await writer.query("SELECT string_agg(md5(g::text), '') FROM generate_series(1, 1000) g").scalar(String.self)
                try await writer.execute("""
                    INSERT INTO tasks (state, amount, done, meta, body) VALUES ('new', 115792089237316195423570985008687907853269984665640564039457.584007913129639935, true, '{"a": [1, "x"]}', 'short');
                    INSERT INTO tasks (state, amount, body) VALUES ('big', 'NaN', '\(big)');
                    UPDATE tasks SET state = 'done "quoted"' WHERE id = 1;
                    UPDATE tasks SET state = 'still big' WHERE id = 2;
                    DELETE FROM tasks WHERE id = 1;
                    INSERT INTO audit VALUES ('a', 1);
                    UPDATE audit SET at = 2;
                    DELETE FROM audit;
                    TRUNCATE audit;
                    SELECT pgevents.emit_wal('task_event', 'line one
                    line two');
                    SELECT pgevents.emit_wal('not_configured', 'skipped');
                    """)
                let processor = EventProcessor(configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal"))
                let reader = try await redis.connect()
                try await withRunningProcessor(processor) {
                    try await waitForJobs(reader, count: 1, queue: "messages")
                }
                let tasks = try await walJobs(reader, "tasks")
                #expect(tasks.count == 5)
                #expect(tasks.first == #"{"op":"insert","schema":"public","table":"tasks","key":{"id":1},"row":{"id":1,"state":"new","amount":115792089237316195423570985008687907853269984665640564039457.584007913129639935,"done":true,"meta":{"a": [1, "x"]},"body":"short"},"old":null}"#)
                #expect(tasks.dropFirst().first?.contains(#""amount":"NaN""#) == true)
                #expect(tasks.dropFirst(2).first == #"{"op":"update","schema":"public","table":"tasks","key":{"id":1},"row":{"id":1,"state":"done \"quoted\"","amount":115792089237316195423570985008687907853269984665640564039457.584007913129639935,"done":true,"meta":{"a": [1, "x"]},"body":"short"},"old":null}"#)
                // The TOASTed body was not touched: the server does not send it, and the event says so.
                #expect(tasks.dropFirst(3).first == #"{"op":"update","schema":"public","table":"tasks","key":{"id":2},"row":{"id":2,"state":"still big","amount":"NaN","done":null,"meta":null},"old":null,"unchanged":["body"]}"#)
                #expect(tasks.last == #"{"op":"delete","schema":"public","table":"tasks","key":{"id":1},"row":null,"old":{"id":1}}"#)
                let audit = try await walJobs(reader, "audit")
                #expect(audit == [
                    #"{"op":"insert","schema":"public","table":"audit","key":{"note":"a","at":1},"row":{"note":"a","at":1},"old":null}"#,
                    #"{"op":"update","schema":"public","table":"audit","key":{"note":"a","at":2},"row":{"note":"a","at":2},"old":{"note":"a","at":1}}"#,
                    #"{"op":"delete","schema":"public","table":"audit","key":{"note":"a","at":2},"row":null,"old":{"note":"a","at":2}}"#,
                    #"{"op":"truncate","schema":"public","table":"audit","key":null,"row":null,"old":null,"cascade":false,"restart_identity":false}"#,
                ])
                #expect(try await walJobs(reader, "messages") == ["line one\nline two"])
                #expect(try await reader.command("LLEN", "pgevents:dead").integer == 0)
                await reader.close()
                await writer.close()
            }
        }
    }
}

