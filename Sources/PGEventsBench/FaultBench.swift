import Foundation
public import Logging
import PGEvents
public import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Synchronization

/// `pgevents bench faults`: each fault injected under load against the reference processor, with a ledger.
///
/// For every fault: a fresh database with the journal and an `events` table, the processor delivering to a
/// Redis list of its own, a writer committing single-row INSERTs at `rate`, and a consumer taking jobs with
/// `BRPOP` and checking them off. After a second of steady load the fault is injected; load goes on until
/// delivery has resumed, then stops, and the run waits for the backlog to drain. The ledger is then
/// compared with the table: sent, delivered, lost (with keys), duplicated (with keys).
///
/// Recovery time: from the end of the fault (the server back, the backend killed, the process restarted)
/// until the first job for a row committed after it reaches the consumer. Detection (freeze only): from
/// the freeze until the processor's listener declares the connection lost (its heartbeat timeout).
public struct FaultBench: Sendable {
    public enum Fault: String, Sendable, CaseIterable, Codable {
        case terminateListener = "terminate-listener"
        case postgresRestartFast = "postgres-restart-fast"
        case postgresRestartImmediate = "postgres-restart-immediate"
        case postgresFreeze = "postgres-freeze"
        case notifyQueueFull = "notify-queue-full"
        case redisRestart = "redis-restart"
        case processorKill = "processor-sigkill"
        case restartDuringLargeTransaction = "restart-during-large-transaction"

        public var summary: String {
            switch self {
            case .terminateListener: "pg_terminate_backend on the processor's backends"
            case .postgresRestartFast: "PostgreSQL fast shutdown, 0.5 s down, start"
            case .postgresRestartImmediate: "PostgreSQL immediate shutdown (crash recovery), 0.5 s down"
            case .postgresFreeze:
                "PostgreSQL frozen (SIGSTOP) past the heartbeat timeout, until the processor notices (at most 10 s more): a half-open connection"
            case .notifyQueueFull: "a listener stops reading inside an open transaction while 8 MB of NOTIFYs pile up"
            case .redisRestart: "Redis restarted (append-only file on), 0.5 s down"
            case .processorKill: "pgevents process killed with SIGKILL, restarted 0.2 s later"
            case .restartDuringLargeTransaction:
                "PostgreSQL immediate shutdown 50 ms after a 50,000-row transaction commits (while it is delivered, or decoded), 0.5 s down"
            }
        }
    }

    public struct Options: Sendable {
        public var faults: [Fault] = Fault.allCases
        /// Committed events per second from the writer.
        public var rate: Double = 500
        /// The journal migrations (`sql/pgevents`).
        public var sqlDirectory: String
        /// The `pgevents` executable, for the SIGKILL fault (which needs a process of its own).
        public var processorExecutable: String?
        /// The processor's heartbeat timeout (seconds); the freeze lasts this plus 1.5 s, and until the processor notices (at most 10 s more).
        public var heartbeatTimeout: Double = 1
        /// The processor's source: the journal (`events` has the journal trigger), or the WAL (`events` is in a
        /// publication, with no trigger; each fault's database gets a slot of its own).
        public var source: ScenarioBench.SourceMode = .journal

        public init(sqlDirectory: String, processorExecutable: String? = nil) {
            self.sqlDirectory = sqlDirectory
            self.processorExecutable = processorExecutable
        }
    }

    /// One fault's outcome.
    public struct Row: Sendable, Codable {
        public var fault: Fault
        public var sent: Int
        public var delivered: Int
        public var lost: Int
        public var duplicated: Int
        /// The first lost and duplicated keys (at most 20 each).
        public var lostKeys: [Int64]
        public var duplicatedKeys: [Int64]
        public var recoverySeconds: Double?
        public var detectionSeconds: Double?
        /// Writes that failed while the fault lasted (the writer retried them).
        public var writeErrors: Int
        public var note: String
        public var durationSeconds: Double

        public var passed: Bool { lost == 0 && duplicated == 0 }
    }

    public var options: Options
    public var logger: Logger

    public init(options: Options, logger: Logger = TemporaryPostgres.defaultLogger) {
        self.options = options
        self.logger = logger
    }

    /// Every fault's row, and the servers they ran on.
    public struct Outcome: Sendable {
        public var rows: [Row]
        public var postgresVersion: String
        public var redisVersion: String
    }

    /// Runs every fault in turn; `progress` hears about each one as it starts.
    public func run(progress: @Sendable (String) -> Void = { _ in }) async throws -> Outcome {
        let journal = try MigrationSet(directory: options.sqlDirectory)
        return try await withTemporaryPostgres(logger: logger) { postgres in
            try await withTemporaryRedis(.init(settings: ["appendonly": "yes", "appendfsync": "always"]), logger: logger) { redis in
                try await run(journal: journal, postgres: postgres, redis: redis, progress: progress)
            }
        }
    }

    /// Every fault on `postgres` and `redis`, which the caller shuts down.
    private func run(journal: MigrationSet, postgres: TemporaryPostgres, redis: TemporaryRedis, progress: @Sendable (String) -> Void)
        async throws -> Outcome
    {
        try await postgres.makeTemplate(named: "pgevents_bench") { connection in
            try await journal.apply(to: connection)
            try await connection.execute("CREATE TABLE events (id bigserial PRIMARY KEY, sent_ns bigint NOT NULL)")
            if options.source == .journal {
                try await connection.execute(
                    "CREATE TRIGGER events_journal AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('new_event')"
                )
            }
        }
        var rows: [Row] = []
        for fault in options.faults {
            progress("\(fault.rawValue): \(fault.summary)")
            rows.append(try await run(fault, postgres: postgres, redis: redis))
        }
        return Outcome(rows: rows, postgresVersion: postgres.binaries.version, redisVersion: redis.version)
    }

    // MARK: One fault

    private func run(_ fault: Fault, postgres: TemporaryPostgres, redis: TemporaryRedis) async throws -> Row {
        let started = ContinuousClock.now
        let database = try await postgres.makeDatabase()
        let queue = "jobs:\(fault.rawValue)"
        let slot = "pgevents_fault_" + fault.rawValue.replacingOccurrences(of: "-", with: "_")
        let wal = options.source == .wal
        if wal {
            try await database.withConnection { connection in
                _ = try await WalSetup.create(on: connection, slot: slot, publication: slot, tables: ["public.events"], logger: logger)
            }
        }
        let yaml = """
            consumer: bench
            \(wal ? "source: wal\n" + "wal: {slot: \(slot), publication: \(slot)}" : "")
            channels: {\(wal ? "public.events" : "new_event"): {queue: "\(queue)"}}
            batch_size: 500
            catch_up_interval: 0.5
            listener: {heartbeat_interval: \(options.heartbeatTimeout / 4), heartbeat_timeout: \(options.heartbeatTimeout), queue_usage_warning: 0.0001, queue_usage_check_interval: 0.2}
            retry: {initial: 0.05, maximum: 0.5}
            """
        let configuration = try ProcessorConfiguration(yaml: yaml, file: "bench.yml")
        let ledger = EventLedger()
        let logs = BenchLogs()
        let run = RunState()
        var note = ""
        var detection: Double?

        let writer = startWriter(on: database, ledger: ledger, run: run)
        let consumer = startConsumer(queue, redis: redis, ledger: ledger, run: run)

        // The processor: in this process (its logs give the detection time), or — for SIGKILL — a child.
        let processorTask: Task<Void, any Error>?
        var child: ChildProcess?
        var childConfigPath: String?
        if fault == .processorKill {
            guard let executable = options.processorExecutable else {
                writer.cancel()
                consumer.cancel()
                throw HarnessError(code: .invalidInput, message: "the processor-sigkill fault needs the pgevents executable")
            }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("pgevents-bench-\(UUID().uuidString.prefix(8)).yml")
                .path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            childConfigPath = path
            child = try startProcessor(executable, config: path, database: database, redis: redis)
            processorTask = nil
        } else {
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: logs.logger())
            processorTask = Task { try await processor.run() }
        }

        do {
            try await Task.sleep(for: .seconds(1))
            try await waitUntilDelivering(database: database, wal: wal, run: run)
            try await inject(
                fault, postgres: postgres, redis: redis, database: database, wal: wal, logs: logs, run: run,
                child: &child, childConfigPath: childConfigPath, note: &note, detection: &detection)
            // Load goes on until delivery has resumed (or 15 s), then one more second.
            let deadline = ContinuousClock.now + .seconds(15)
            while run.firstAfterFault.withLock({ $0 }) == nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            try await Task.sleep(for: .seconds(1))
            run.stop.store(true, ordering: .relaxed)
            await writer.value
            // The truth about what was committed: the table.
            let ids = try await database.withConnection { check in
                try await check.query("SELECT id FROM events").map { try $0.decode(Int64.self, at: 0) }
            }
            ledger.setCommitted(ids)
            let drainDeadline = ContinuousClock.now + .seconds(20)
            while !ledger.allDelivered(ids), ContinuousClock.now < drainDeadline { try await Task.sleep(for: .milliseconds(20)) }
            try await Task.sleep(for: .milliseconds(300))  // late duplicates, if any, show up here
            // Jobs Redis moved to the taken list whose BLMOVE reply never reached the consumer (lost in a restart).
            let reader = try await redis.connect()
            let taken = try await reader.command("LRANGE", RedisArgument(queue + ":taken"), 0, -1).array ?? []
            await reader.close()
            var unseen = 0
            for item in taken {
                guard let bytes = item.bytes, let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                    let id = ((object["row"] as? [String: Any])?["id"] as? NSNumber)?.int64Value,
                    run.received.withLock({ $0.insert(id).inserted })
                else { continue }
                ledger.delivered(id, at: .now)
                unseen += 1
            }
            if unseen > 0 {
                note += (note.isEmpty ? "" : "; ") + "\(unseen) job(s) taken whose reply was lost in the restart (found in the taken list)"
            }
        } catch {
            run.stop.store(true, ordering: .relaxed)
            try? await postgres.resume()
            note += (note.isEmpty ? "" : "; ") + "the run failed: \(error)"
        }
        consumer.cancel()
        await consumer.value
        processorTask?.cancel()
        _ = try? await processorTask?.value
        if let child {
            kill(child.pid, SIGTERM)
            _ = child.wait()
        }
        if let childConfigPath { try? FileManager.default.removeItem(atPath: childConfigPath) }
        if wal {
            // A database with a slot cannot be dropped.
            try? await database.withConnection { connection in try await ScenarioBench.dropSlot(slot, on: connection) }
        }
        try? await database.drop()

        let summary = ledger.summary
        let recovery: Double? =
            if let end = run.faultEnd.withLock({ $0 }), let first = run.firstAfterFault.withLock({ $0 }) {
                (first - end.instant).inSeconds
            } else { nil }
        return Row(
            fault: fault, sent: summary.sent, delivered: summary.delivered, lost: summary.lost.count, duplicated: summary.duplicated.count,
            lostKeys: Array(summary.lost.prefix(20)), duplicatedKeys: Array(summary.duplicated.prefix(20)),
            recoverySeconds: recovery, detectionSeconds: detection, writeErrors: run.writeErrors.load(ordering: .relaxed),
            note: note, durationSeconds: (ContinuousClock.now - started).inSeconds)
    }

    // MARK: The phases of one fault

    /// The load: single-row INSERTs at `options.rate` until `run.stop`, each committed id in the ledger; a failed
    /// write is counted and the connection opened again.
    private func startWriter(on database: TemporaryDatabase, ledger: EventLedger, run: RunState) -> Task<Void, Never> {
        Task {
            var connection: PostgresConnection?
            let interval = 1 / options.rate
            var next = ContinuousClock.now
            while !run.stop.load(ordering: .relaxed) {
                next += .milliseconds(Int(interval * 1000))
                if next > .now { try? await Task.sleep(until: next, clock: .continuous) } else { next = .now }
                do {
                    if connection == nil { connection = try await database.connect() }
                    let id = try await connection!.query(
                        "INSERT INTO events (sent_ns) VALUES ($1) RETURNING id", [Int(benchWallNanoseconds())]
                    ).scalar(Int64.self)
                    ledger.committed(id)
                } catch {
                    run.writeErrors.add(1, ordering: .relaxed)
                    await connection?.close()
                    connection = nil
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            await connection?.close()
        }
    }

    /// The consumer: takes jobs from `queue` until cancelled, each delivered id in the ledger, and the first job sent
    /// after the fault ended in `run.firstAfterFault`. `BLMOVE` into `<queue>:taken`, not `BRPOP`: a pop whose reply a
    /// Redis restart lost leaves the job in the taken list (counted after the run) instead of losing it on the
    /// consumer's side, which no processor could help.
    private func startConsumer(_ queue: String, redis: TemporaryRedis, ledger: EventLedger, run: RunState) -> Task<Void, Never> {
        Task {
            var connection: RedisConnection?
            while !Task.isCancelled {
                do {
                    if connection == nil { connection = try await redis.connect() }
                    let reply = try await connection!.command(
                        "BLMOVE", RedisArgument(queue), RedisArgument(queue + ":taken"), "RIGHT", "LEFT", "0.2")
                    guard let bytes = reply.bytes,
                        let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                        let row = object["row"] as? [String: Any],
                        let id = (row["id"] as? NSNumber)?.int64Value
                    else { continue }
                    let now = ContinuousClock.now
                    run.received.withLock { _ = $0.insert(id) }
                    ledger.delivered(id, at: now)
                    if let sent = (row["sent_ns"] as? NSNumber)?.int64Value, let end = run.faultEnd.withLock({ $0 }), sent > end.wall {
                        run.firstAfterFault.withLock { if $0 == nil { $0 = now } }
                    }
                } catch {
                    await connection?.close()
                    connection = nil
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            await connection?.close()
        }
    }

    /// Waits (at most 30 s) until the processor delivers and, for the journal, its listener has run LISTEN: on a busy
    /// machine its start can take longer than the second of load before the fault, and a fault that hits a processor
    /// still starting (a freeze before its first heartbeat) tests nothing.
    private func waitUntilDelivering(database: TemporaryDatabase, wal: Bool, run: RunState) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while run.received.withLock({ $0.isEmpty }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        guard !wal else { return }
        try await database.withConnection { connection in
            while try await connection.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgevents-listener' AND query LIKE 'LISTEN%' AND state = 'idle'"
            ).scalar(Int.self) == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    /// Injects `fault` a second into the load and marks when it ended; `note` and `detection` say what was seen.
    private func inject(
        _ fault: Fault, postgres: TemporaryPostgres, redis: TemporaryRedis, database: TemporaryDatabase, wal: Bool, logs: BenchLogs,
        run: RunState,
        child: inout ChildProcess?, childConfigPath: String?, note: inout String, detection: inout Double?
    ) async throws {
        func markFaultEnd() {
            run.faultEnd.withLock { $0 = (benchWallNanoseconds(), ContinuousClock.now) }
        }

        switch fault {
        case .terminateListener:
            // The WAL source has no listener: its WAL sender and worker are what a network cut would break.
            var killed = 0
            for name in wal ? ["pgevents-wal", "pgevents-worker"] : ["pgevents-listener"] {
                killed += try await postgres.terminateBackends(applicationName: name)
            }
            note = "\(killed) backend(s) terminated\(wal ? " (WAL sender and worker)" : "")"
            markFaultEnd()
        case .postgresRestartFast, .postgresRestartImmediate:
            try await postgres.restart(mode: fault == .postgresRestartFast ? .fast : .immediate, downtime: .milliseconds(500))
            markFaultEnd()
        case .postgresFreeze:
            let frozen = ContinuousClock.now
            try await postgres.pause()
            // Frozen for the heartbeat timeout and 1.5 s, and on until the processor has noticed (at most 10 s past
            // the timeout): on a busy machine its heartbeat may fire late, and a freeze it never saw tests nothing.
            let minimum = frozen + .milliseconds(Int((options.heartbeatTimeout + 1.5) * 1000))
            let maximum = frozen + .milliseconds(Int((options.heartbeatTimeout + 10) * 1000))
            while ContinuousClock.now < maximum {
                if detection == nil, let at = logs.first("heartbeat timed out") { detection = (at - frozen).inSeconds }
                if detection != nil, ContinuousClock.now >= minimum { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            try await postgres.resume()
            if detection == nil, let at = logs.first("heartbeat timed out") { detection = (at - frozen).inSeconds }
            markFaultEnd()
            note =
                detection.map {
                    String(format: "half-open connection detected after %.2f s (heartbeat timeout %.1f s)", $0, options.heartbeatTimeout)
                } ?? "the heartbeat did not time out"
        case .notifyQueueFull:
            // A listener on the same channel that stops reading inside an open transaction.
            let stalled = try await StalledListener.start(on: database, channels: ["new_event"])
            let usage = try await stalled.fill(bytes: 8 << 20)
            try await Task.sleep(for: .milliseconds(600))  // the processor checks usage every 0.2 s
            await stalled.release()
            markFaultEnd()
            let warned = logs.first("notification queue usage above threshold") != nil
            note = String(
                format: "queue usage reached %.6f%% of the server's queue; processor warning %@", usage * 100,
                warned ? "logged" : "NOT logged")
        case .restartDuringLargeTransaction:
            try await database.withConnection { connection in
                try await connection.query(
                    "INSERT INTO events (sent_ns) SELECT $1 FROM generate_series(1, 50000)", [Int(benchWallNanoseconds())])
            }
            try await Task.sleep(for: .milliseconds(50))
            try await postgres.restart(mode: .immediate, downtime: .milliseconds(500))
            markFaultEnd()
        case .redisRestart:
            try await redis.restart(downtime: .milliseconds(500))
            markFaultEnd()
        case .processorKill:
            if let pid = child?.pid { kill(pid, SIGKILL) }
            _ = child?.wait()
            try await Task.sleep(for: .milliseconds(200))
            if let executable = options.processorExecutable, let childConfigPath {
                child = try startProcessor(executable, config: childConfigPath, database: database, redis: redis)
            }
            markFaultEnd()
        }
    }

    private func startProcessor(_ executable: String, config: String, database: TemporaryDatabase, redis: TemporaryRedis) throws
        -> ChildProcess
    {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("pgevents-bench-processor.log").path
        // The URLs carry passwords: in the environment, which only this user can read, not on the command line.
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = database.url
        environment["REDIS_URL"] = redis.url
        return try ChildProcess.spawn(
            executable, ["process", "--config", config, "--log-level", "warning"],
            outputPath: log, outputMode: 0o600, environment: environment)
    }
}

/// What the writer, the consumer and the fault share during one run.
final class RunState: Sendable {
    let stop = Atomic<Bool>(false)
    let writeErrors = Atomic<Int>(0)
    /// When the fault ended: wall clock (compared with the rows' sent_ns) and monotonic.
    let faultEnd = Mutex<(wall: Int64, instant: ContinuousClock.Instant)?>(nil)
    /// When the first job for a row written after the fault reached the consumer.
    let firstAfterFault = Mutex<ContinuousClock.Instant?>(nil)
    /// The rows whose job the consumer received.
    let received = Mutex<Set<Int64>>([])
}
