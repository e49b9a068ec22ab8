import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Testing

/// A database of the shared server with `sql/pgevents/` applied and the tables the WAL tests change.
func walDatabase() async throws -> TemporaryDatabase {
    let database = try await Shared.postgres().makeDatabase()
    try await PostgresConnection.withConnection(database.configuration) { connection in
        try await MigrationSet(directory: repositoryPath("sql/pgevents")).apply(to: connection)
        try await connection.execute(
            """
            CREATE TABLE tasks (id bigserial PRIMARY KEY, state text NOT NULL, amount numeric, done boolean, meta jsonb, body text);
            CREATE TABLE audit (note text, at int);
            ALTER TABLE audit REPLICA IDENTITY FULL;
            """)
    }
    return database
}

/// The processor's file for the WAL tests: tasks, audit and the emit_wal channel `task_event`.
func walConfiguration(consumer: String, batchSize: Int = 100, extra: String = "") throws -> ProcessorConfiguration {
    try ProcessorConfiguration(
        yaml: """
            source: wal
            consumer: \(consumer)
            channels:
              public.tasks: {queue: tasks}
              public.audit: {queue: audit}
              task_event: {queue: messages}
            batch_size: \(batchSize)
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
        _ = try await WalSetup.create(
            on: connection, slot: wal.slot, publication: wal.publication, tables: tables, logger: Logger(label: "test"))
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
            while try await connection.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active", [slot]).scalar(
                Int.self) > 0
            {
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
                try await writer.execute(
                    """
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
                let processor = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal")
                )
                let reader = try await redis.connect()
                try await withRunningProcessor(processor) {
                    try await waitForJobs(reader, count: 1, queue: "messages")
                }
                let tasks = try await walJobs(reader, "tasks")
                #expect(tasks.count == 5)
                #expect(
                    tasks.first
                        == #"{"op":"INSERT","schema":"public","table":"tasks","key":{"id":1},"row":{"id":1,"state":"new","amount":115792089237316195423570985008687907853269984665640564039457.584007913129639935,"done":true,"meta":{"a": [1, "x"]},"body":"short"},"old":null}"#
                )
                #expect(tasks.dropFirst().first?.contains(#""amount":"NaN""#) == true)
                #expect(
                    tasks.dropFirst(2).first
                        == #"{"op":"UPDATE","schema":"public","table":"tasks","key":{"id":1},"row":{"id":1,"state":"done \"quoted\"","amount":115792089237316195423570985008687907853269984665640564039457.584007913129639935,"done":true,"meta":{"a": [1, "x"]},"body":"short"},"old":null}"#
                )
                // The TOASTed body was not touched: the server does not send it, and the event says so.
                #expect(
                    tasks.dropFirst(3).first
                        == #"{"op":"UPDATE","schema":"public","table":"tasks","key":{"id":2},"row":{"id":2,"state":"still big","amount":"NaN","done":null,"meta":null},"old":null,"unchanged":["body"]}"#
                )
                #expect(tasks.last == #"{"op":"DELETE","schema":"public","table":"tasks","key":{"id":1},"row":{"id":1},"old":{"id":1}}"#)
                let audit = try await walJobs(reader, "audit")
                #expect(
                    audit == [
                        #"{"op":"INSERT","schema":"public","table":"audit","key":{"note":"a","at":1},"row":{"note":"a","at":1},"old":null}"#,
                        #"{"op":"UPDATE","schema":"public","table":"audit","key":{"note":"a","at":2},"row":{"note":"a","at":2},"old":{"note":"a","at":1}}"#,
                        #"{"op":"DELETE","schema":"public","table":"audit","key":{"note":"a","at":2},"row":{"note":"a","at":2},"old":{"note":"a","at":2}}"#,
                        #"{"op":"TRUNCATE","schema":"public","table":"audit","key":null,"row":null,"old":null,"cascade":false,"restart_identity":false}"#,
                    ])
                #expect(try await walJobs(reader, "messages") == ["line one\nline two"])
                #expect(try await reader.command("LLEN", "pgevents:dead").integer == 0)
                await reader.close()
                await writer.close()
            }
        }
    }
}

/// Every row of `tasks` has exactly one insert job in `tasks`; what is lost or duplicated is named by id.
func expectEveryTaskOnce(
    _ reader: RedisConnection, rows count: Int, in database: TemporaryDatabase, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let rows = try await PostgresConnection.withConnection(database.configuration) { connection in
        try await connection.query("SELECT id FROM tasks").map { try $0.decode(Int.self, at: 0) }
    }
    let ids = try await deliveredIDs(reader, "tasks")
    let lost = Set(rows).subtracting(ids).sorted()
    var seen = Set<Int>()
    let duplicated = ids.filter { !seen.insert($0).inserted }
    #expect(rows.count == count, "the table holds \(rows.count) rows, the test wrote \(count)", sourceLocation: sourceLocation)
    #expect(lost.isEmpty, "\(lost.count) lost, e.g. rows \(lost.prefix(20))", sourceLocation: sourceLocation)
    #expect(duplicated.isEmpty, "\(duplicated.count) duplicated, e.g. rows \(duplicated.prefix(20))", sourceLocation: sourceLocation)
    #expect(ids.count == rows.count, sourceLocation: sourceLocation)
}

@Suite("The WAL source: order, exactly once, takeover")
struct WalDeliveryTests {
    @Test("transactions arrive in commit order, not in the order they wrote")
    func commitOrder() async throws {
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_order")
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis { redis in
                let early = try await database.connect()
                let late = try await database.connect()
                try await early.execute("BEGIN")
                try await early.query("INSERT INTO tasks (state) VALUES ('written first, committed last')")
                try await late.query("INSERT INTO tasks (state) VALUES ('written last, committed first')")
                try await early.execute("COMMIT")
                let processor = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal")
                )
                let reader = try await redis.connect()
                try await withRunningProcessor(processor) {
                    try await waitForJobs(reader, count: 2, queue: "tasks")
                }
                let states = try await walJobs(reader, "tasks").map { job in
                    ((try JSONSerialization.jsonObject(with: Data(job.utf8)) as? [String: Any])?["row"] as? [String: Any])?["state"]
                        as? String
                }
                #expect(states == ["written last, committed first", "written first, committed last"])
                await reader.close()
                await early.close()
                await late.close()
            }
        }
    }

    @Test("a 100,000-row transaction arrives whole, once")
    func largeTransaction() async throws {
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_large", batchSize: 5_000)
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis { redis in
                try await PostgresConnection.withConnection(database.configuration) { writer in
                    try await writer.query("INSERT INTO tasks (state) SELECT 'bulk ' || g FROM generate_series(1, 100000) g")
                }
                let processor = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal")
                )
                let reader = try await redis.connect()
                try await withRunningProcessor(processor) {
                    try await waitForJobs(reader, count: 100_000, queue: "tasks", seconds: 120)
                }
                try await expectEveryTaskOnce(reader, rows: 100_000, in: database)
                await reader.close()
            }
        }
    }

    @Test("the WAL sender and the worker terminated mid-stream, again and again: nothing lost, nothing duplicated")
    func terminatedMidStream() async throws {
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_terminated")
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis { redis in
                let writer = try await database.connect()
                let admin = try await database.connect()
                let processor = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal")
                )
                let reader = try await redis.connect()
                var terminated = 0
                try await withRunningProcessor(processor) {
                    for round in 0..<6 {
                        // Several transactions per round, so that a termination falls between two of them or inside one.
                        for part in 0..<4 {
                            try await writer.query(
                                "INSERT INTO tasks (state) SELECT 'r\(round)p\(part) ' || g FROM generate_series(1, 50) g")
                        }
                        try await Task.sleep(for: .milliseconds(20))
                        // Each round hits a processor that is streaming again (not one still backing off).
                        try await withTimeout(20) {
                            while try await !admin.query(
                                "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = 'pgevents_wal_terminated'"
                            ).scalar(Bool.self) {
                                try await Task.sleep(for: .milliseconds(10))
                            }
                        }
                        terminated += try await admin.query(
                            """
                            SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity
                             WHERE datname = current_database() AND application_name IN ('pgevents-wal', 'pgevents-worker')
                               AND pid <> pg_backend_pid()
                            """
                        ).scalar(Int.self)
                    }
                    try await waitForJobs(reader, count: 1_200, queue: "tasks", seconds: 60)
                }
                #expect(terminated >= 6, "the test terminated only \(terminated) processor backends")
                try await expectEveryTaskOnce(reader, rows: 1_200, in: database)
                await reader.close()
                await writer.close()
                await admin.close()
            }
        }
    }

    @Test("only the WAL sender terminated (the worker connection stays): the processor streams again and delivers the rest once")
    func walSenderTerminatedAlone() async throws {
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_sender_only")
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis { redis in
                let writer = try await database.connect()
                let admin = try await database.connect()
                let processor = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal")
                )
                let reader = try await redis.connect()
                var terminated: [Int] = []
                try await withRunningProcessor(processor) {
                    for round in 0..<3 {
                        try await writer.query("INSERT INTO tasks (state) SELECT 'alone\(round) ' || g FROM generate_series(1, 100) g")
                        // A WAL sender other than the one terminated last (a dying one can still show as active).
                        let seen = terminated
                        let sender = try await withTimeout(20) {
                            while true {
                                let pid = try await admin.query(
                                    "SELECT coalesce(max(active_pid), 0)::int FROM pg_replication_slots WHERE slot_name = 'pgevents_wal_sender_only'"
                                ).scalar(Int.self)
                                if pid != 0, !seen.contains(pid) { return pid }
                                try await Task.sleep(for: .milliseconds(10))
                            }
                        }
                        // The WAL sender only: the worker connection (leader lock) is not touched, so nothing but the
                        // stream's own lost connection tells the processor to stream again.
                        #expect(try await admin.query("SELECT pg_terminate_backend($1)", [sender]).scalar(Bool.self))
                        terminated.append(sender)
                    }
                    try await writer.query("INSERT INTO tasks (state) SELECT 'after ' || g FROM generate_series(1, 100) g")
                    try await waitForJobs(reader, count: 400, queue: "tasks", seconds: 60)
                }
                #expect(terminated.count == 3)
                try await expectEveryTaskOnce(reader, rows: 400, in: database)
                await reader.close()
                await writer.close()
                await admin.close()
            }
        }
    }

    @Test("confirmations held back by status_interval reach the slot while the processor idles; a stop sends the last one")
    func statusIntervalConfirmsWhenIdle() async throws {
        let database = try await walDatabase()
        // A long interval, so that the second transaction's confirmation (within it of the first's) is held back.
        let configuration = try walConfiguration(consumer: "wal_status", extra: "wal: {status_interval: 2}")
        #expect(configuration.wal?.statusInterval == .seconds(2))
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis { redis in
                let writer = try await database.connect()
                let admin = try await database.connect()
                let reader = try await redis.connect()
                let processor = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal")
                )
                // The WAL written before each commit record: the slot is confirmed past it once the transaction is.
                func insert(_ label: String) async throws -> LogSequenceNumber {
                    let text = try await writer.query(
                        """
                        WITH rows AS (INSERT INTO tasks (state) SELECT '\(label) ' || g FROM generate_series(1, 50) g RETURNING 1)
                        SELECT pg_current_wal_insert_lsn()::text FROM rows LIMIT 1
                        """
                    ).scalar(String.self)
                    return try #require(LogSequenceNumber(text))
                }
                @Sendable func confirmed() async throws -> LogSequenceNumber {
                    let text = try await admin.query(
                        "SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = 'pgevents_wal_status'"
                    ).scalar(String.self)
                    return try #require(LogSequenceNumber(text))
                }
                var last = LogSequenceNumber.zero
                try await withRunningProcessor(processor) {
                    _ = try await insert("first")
                    try await waitForJobs(reader, count: 50, queue: "tasks", seconds: 60)
                    let second = try await insert("second")
                    try await waitForJobs(reader, count: 100, queue: "tasks", seconds: 60)
                    // Nothing more is written: only the held-back confirmation can move the slot past the second.
                    try await withTimeout(30) {
                        while try await confirmed() <= second { try await Task.sleep(for: .milliseconds(50)) }
                    }
                    last = try await insert("third")
                    try await waitForJobs(reader, count: 150, queue: "tasks", seconds: 60)
                    // The jobs are in Redis a moment before the chunk is acknowledged: a stop between the two
                    // replays the chunk (without duplicates) instead of confirming it, which is not what this asks.
                    try await Task.sleep(for: .milliseconds(300))
                }
                // Stopped soon after the third was delivered, within the interval: the stop leaves it confirmed.
                #expect(try await confirmed() > last)
                try await expectEveryTaskOnce(reader, rows: 150, in: database)
                await reader.close()
                await writer.close()
                await admin.close()
            }
        }
    }

    @Test("pgevents process on source: wal killed with SIGKILL mid-stream and started again: nothing lost, nothing duplicated")
    func killedAndRestarted() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_killed")
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis { redis in
                let writer = try await database.connect()
                let directory = try migrationDirectory([
                    "processor.yml": """
                    source: wal
                    consumer: wal_killed
                    channels: {public.tasks: {queue: tasks}}
                    batch_size: 50
                    catch_up_interval: 0.5
                    """
                ])
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let environment = ProcessInfo.processInfo.environment.merging(["DATABASE_URL": database.url, "REDIS_URL": redis.url]) { $1 }
                let log = directory + "/process.log"
                func start() throws -> ChildProcess {
                    try ChildProcess.spawn(
                        executable, ["process", "--config", directory + "/processor.yml"], outputPath: log, environment: environment)
                }
                let reader = try await redis.connect()
                var child = try start()
                var written = 0
                for round in 0..<4 {
                    for part in 0..<5 {
                        try await writer.query("INSERT INTO tasks (state) SELECT 'k\(round)p\(part) ' || g FROM generate_series(1, 100) g")
                    }
                    written += 500
                    try await Task.sleep(for: .milliseconds(20 + 40 * round))
                    child.kill(SIGKILL)  // between any two steps: Redis taken, position not yet confirmed, or the reverse
                    _ = await child.waitOffPool()
                    child = try start()
                }
                do {
                    try await waitForJobs(reader, count: written, queue: "tasks", seconds: 60)
                } catch {
                    Issue.record("processor log:\n\(tailOfFile(log, maxLines: 40))")
                    child.kill(SIGKILL)
                    _ = await child.waitOffPool()
                    throw error
                }
                child.kill(SIGTERM)
                #expect(await child.waitOffPool() == .exited(0), "pgevents process did not exit cleanly on SIGTERM:\n\(tailOfFile(log))")
                try await expectEveryTaskOnce(reader, rows: written, in: database)
                await reader.close()
                await writer.close()
            }
        }
    }

    @Test("Redis restarted mid-stream (append-only file on): nothing lost, nothing duplicated")
    func redisRestart() async throws {
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_redis_restart")
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis(.init(settings: ["appendonly": "yes", "appendfsync": "always"])) { redis in
                let writer = try await database.connect()
                let processor = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal")
                )
                try await withRunningProcessor(processor) {
                    for round in 0..<8 {
                        for part in 0..<5 {
                            try await writer.query(
                                "INSERT INTO tasks (state) SELECT 'r\(round)p\(part) ' || g FROM generate_series(1, 25) g")
                        }
                        if round == 2 || round == 5 { try await redis.restart(downtime: .milliseconds(300)) }
                    }
                    let reader = try await redis.connect()
                    try await waitForJobs(reader, count: 1_000, queue: "tasks")
                    await reader.close()
                }
                let reader = try await redis.connect()
                try await expectEveryTaskOnce(reader, rows: 1_000, in: database)
                await reader.close()
                await writer.close()
            }
        }
    }

    @Test("two processors on one slot: one streams, the other waits; when the first stops the second takes over; every row once")
    func standbyTakesOver() async throws {
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_pair")
        try await withWalSetup(database, configuration) {
            try await withTemporaryRedis { redis in
                let writer = try await database.connect()
                let first = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration,
                    logger: Logger(label: "first"))
                let second = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration,
                    logger: Logger(label: "second"))
                let reader = try await redis.connect()
                try await withRunningProcessor(second) {
                    try await withRunningProcessor(first) {
                        try await writer.query("INSERT INTO tasks (state) SELECT 'a ' || g FROM generate_series(1, 300) g")
                        try await waitForJobs(reader, count: 300, queue: "tasks")
                    }
                    // Whichever was leader may be gone now; the one left delivers the rest.
                    try await writer.query("INSERT INTO tasks (state) SELECT 'b ' || g FROM generate_series(1, 300) g")
                    try await waitForJobs(reader, count: 600, queue: "tasks")
                }
                try await expectEveryTaskOnce(reader, rows: 600, in: database)
                await reader.close()
                await writer.close()
            }
        }
    }
}

/// Runs `processor` until it stops on its own, and returns the error it stopped with (nil if it returned).
func stoppingError(of processor: EventProcessor) async -> (any Error)? {
    do {
        try await withTimeout(60) { try await processor.run() }
        return nil
    } catch {
        return error
    }
}

@Suite("The WAL source: what it needs, and clear errors when it is missing")
struct WalSetupTests {
    @Test("wal_level = replica: setup and the processor say that logical is needed, and how")
    func walLevelReplica() async throws {
        try await withTemporaryPostgres(.init(settings: ["wal_level": "replica"])) { server in
            let database = try await server.makeDatabase()
            let configuration = try walConfiguration(consumer: "wal_replica")
            let error = await #expect(throws: ProcessorError.self) {
                try await PostgresConnection.withConnection(database.configuration) { connection in
                    _ = try await WalSetup.create(on: connection, slot: "s", publication: "p", tables: [], logger: Logger(label: "test"))
                }
            }
            #expect(error?.code == .walNotReady)
            #expect(
                error?.message.contains("wal_level is replica") == true
                    && error?.message.contains("ALTER SYSTEM SET wal_level = logical") == true, "\(String(describing: error))")
            try await withTemporaryRedis { redis in
                let processor = EventProcessor(
                    configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal")
                )
                let stopped = await stoppingError(of: processor)
                #expect("\(String(describing: stopped))".contains("wal_level = logical"), "\(String(describing: stopped))")
            }
        }
    }

    @Test("a missing slot, a role without REPLICATION, a table without replica identity: each named with its fix")
    func missingPieces() async throws {
        let database = try await walDatabase()
        let configuration = try walConfiguration(consumer: "wal_missing")
        try await withTemporaryRedis { redis in
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "wal"))
            let stopped = await stoppingError(of: processor)
            #expect(
                "\(String(describing: stopped))".contains(
                    "replication slot pgevents_wal_missing does not exist: create it (and the publication) with pgevents wal setup"),
                "\(String(describing: stopped))")
        }
        try await PostgresConnection.withConnection(database.configuration) { connection in
            try await connection.execute("CREATE TABLE keyless (note text)")
            let error = await #expect(throws: ProcessorError.self) {
                _ = try await WalSetup.create(
                    on: connection, slot: "pgevents_wal_missing", publication: "pgevents_wal_missing", tables: ["public.keyless"],
                    logger: Logger(label: "test"))
            }
            #expect(error?.message.contains("table public.keyless has no replica identity") == true, "\(String(describing: error))")
            #expect(
                try await connection.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgevents_wal_missing'").scalar(
                    Int.self) == 0, "a refused setup creates nothing")
        }
        try await withWalSetup(database, configuration) {
            let role = "wal_no_replication_\(UInt32.random(in: 0...UInt32.max))"
            try await PostgresConnection.withConnection(database.configuration) { connection in
                try await connection.execute("CREATE ROLE \(role) LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(role)")
            }
            var postgres = database.configuration
            postgres["user"] = role
            try await withTemporaryRedis { redis in
                let processor = EventProcessor(
                    configuration: configuration, postgres: postgres, redis: redis.configuration, logger: Logger(label: "wal"))
                let stopped = await stoppingError(of: processor)
                #expect("\(String(describing: stopped))".contains("REPLICATION attribute"), "\(String(describing: stopped))")
            }
        }
    }

    @Test("a slot invalidated by max_slot_wal_keep_size stops the processor with the reason and the recovery; nothing is skipped")
    func invalidatedSlot() async throws {
        try await withTemporaryPostgres(.init(settings: ["max_slot_wal_keep_size": "1MB", "max_wal_size": "64MB", "min_wal_size": "32MB"]))
        { server in
            let database = try await server.makeDatabase()
            try await PostgresConnection.withConnection(database.configuration) { connection in
                try await MigrationSet(directory: repositoryPath("sql/pgevents")).apply(to: connection)
                try await connection.execute("CREATE TABLE tasks (id bigserial PRIMARY KEY, state text NOT NULL)")
            }
            let configuration = try walConfiguration(consumer: "wal_lost")
            try await withWalSetup(database, configuration) {
                try await PostgresConnection.withConnection(database.configuration) { connection in
                    // While no processor streams the slot, the WAL moves on by several segments and checkpoints recycle them.
                    for _ in 0..<4 {
                        try await connection.query(
                            "INSERT INTO tasks (state) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 20000) g")
                        try await connection.query("SELECT pg_switch_wal()")
                        try await connection.execute("CHECKPOINT")
                    }
                    #expect(
                        try await connection.query("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'pgevents_wal_lost'")
                            .scalar(String.self) == "lost")
                }
                try await withTemporaryRedis { redis in
                    let processor = EventProcessor(
                        configuration: configuration, postgres: database.configuration, redis: redis.configuration,
                        logger: Logger(label: "wal"))
                    let stopped = await stoppingError(of: processor)
                    let text = "\(String(describing: stopped))"
                    #expect(
                        text.contains("replication slot pgevents_wal_lost was invalidated") && text.contains("pg_drop_replication_slot"),
                        "\(text)")
                    let reader = try await redis.connect()
                    #expect(try await reader.command("LLEN", "tasks").integer == 0, "nothing is delivered from an invalidated slot")
                    await reader.close()
                }
            }
        }
    }
}
