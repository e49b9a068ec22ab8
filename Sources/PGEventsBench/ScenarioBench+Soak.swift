import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Synchronization

/// `soak`: a constant rate of journaled INSERTs for a long time through a processor that decodes, fetches and
/// applies rules, with poison events mixed in; sampled every few seconds for what must not grow (the journal,
/// Redis' memory, the process's resident size) and checked for what must not happen (a lost or duplicated
/// job, a poison event that is not dead-lettered, a processor that stops or stalls).
///
/// The table is `public.soak_events (id bigserial, day text, kind text)`, journaled on channel `soak_event`;
/// the processor fetches the event's row of `public.soak_days`, whose key `day` is a `date` (every day of 2026).
/// Good events carry a day that exists. Every `poisonEvery`-th event is **poison**: its day is `not-a-date`,
/// which cannot be cast to the key's type; the event half-way between two poison ones is routed by a rule to a
/// key that holds a string (**WRONGTYPE**: created before the processor starts). Both must end in the
/// dead-letter list; good events must each reach the job list once.
///
/// The processor runs in the bench's process (`EventProcessor`, default settings but its names); the
/// consumer takes jobs and dead letters with `BRPOP`, an `EventLedger` (reserved up front, so that the
/// process's resident size does not grow with it) checks them off by row id.
extension ScenarioBench {
    /// What `soak` runs with.
    public struct SoakOptions: Sendable {
        /// Events committed per second (default 2,000).
        public var rate = 2_000.0
        /// Seconds between samples (default 10).
        public var sampleInterval = 10.0
        /// Every N-th event is poison, and one event per N is routed to the WRONGTYPE key; 0: neither (and no WRONGTYPE rule).
        public var poisonEvery = 1_000
        /// A run stops as failed when events wait and nothing reaches the consumer for this long (default 30 s);
        /// the drain after the load ends after this long without progress too.
        public var stallTimeout = 30.0

        public init() {}
    }

    /// The most events the soak's ledger reserves room for up front.
    static let soakLedgerReservationLimit = 5_000_000.0

    /// The duration of `soak` unless `--duration` says otherwise: 10 minutes.
    public static let defaultSoakDuration = 600.0

    /// A soak run: its result (the bench's format, with the samples as `series`) and its report (the verdict).
    public struct SoakOutcome: Sendable {
        public var result: BenchResult
        public var report: SoakReport
        /// The settings it ran with.
        public var rate: Double
        public var duration: Double
        public var sampleInterval: Double
        public var poisonEvery: Int

        /// The samples, the growth of each judged figure, what became of the events, and the verdict.
        public var table: String { report.table(rate: rate, duration: duration, sampleInterval: sampleInterval, poisonEvery: poisonEvery) }
        /// Whether every check passed (what `pgevents bench soak`'s exit status says).
        public var passed: Bool { report.passed }
    }

    /// What an event of the soak is, by its index (1, 2, …) in the run.
    enum SoakEventKind: String, Sendable {
        /// A valid day, routed to the job list.
        case good
        /// A day that is not a date: its fetch cannot cast it.
        case poison
        /// Routed by a rule to the key that holds a string.
        case wrongType = "wrongtype"

        static func of(index: Int, poisonEvery: Int) -> SoakEventKind {
            guard poisonEvery > 0 else { return .good }
            if index % poisonEvery == 0 { return .poison }
            if poisonEvery >= 2, index % poisonEvery == poisonEvery / 2 { return .wrongType }
            return .good
        }
    }

    /// Runs `soak` on throwaway servers of its own (its figures — Redis' memory and keys, the journal — are only
    /// meaningful on servers nothing else uses).
    public func runSoak(progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> SoakOutcome {
        try validate(.soak)
        let migrations = try MigrationSet(directory: options.sqlDirectory)
        let servers = try await BenchServers.start(
            databaseURL: nil, redisURL: nil, migrations: migrations, setupSQL: Self.setupSQL, logger: logger)
        do {
            let outcome = try await runSoak(on: servers, progress: progress)
            await servers.shutdown()
            return outcome
        } catch {
            await servers.shutdown()
            throw error
        }
    }

    static let soakSetupSQL = """
        CREATE TABLE public.soak_days (day date PRIMARY KEY, label text NOT NULL);
        INSERT INTO public.soak_days SELECT d::date, 'day ' || to_char(d, 'YYYY-MM-DD')
            FROM generate_series(date '2026-01-01', date '2026-12-31', interval '1 day') AS d;
        CREATE TABLE public.soak_events (id bigserial PRIMARY KEY, day text NOT NULL, kind text NOT NULL);
        CREATE TRIGGER soak_events_journal AFTER INSERT ON public.soak_events
            FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('soak_event');
        """

    /// The processor's configuration: its defaults (pruning, attempts, batch size) with the run's names.
    static func soakProcessorYAML(keyPrefix: String, poisonEvery: Int) -> (yaml: String, jobs: String, dead: String, wrongType: String) {
        let jobs = "\(keyPrefix):soak:jobs"
        let dead = "\(keyPrefix):soak:dead"
        let wrongType = "\(keyPrefix):soak:wrongtype"
        let misrouted =
            poisonEvery > 0
            ? """
                  - {name: misrouted, when: {field: event.row.kind, eq: wrongtype}, enqueue: {queue: "\(wrongType)", job: {id: "{{event.row.id}}", kind: "{{event.row.kind}}"}}}

            """
            : ""
        let yaml = """
            consumer: bench
            channels:
              soak_event:
                queue: "\(jobs)"
                decode: json
                fetch: {table: public.soak_days, key: day, from: event.row.day}
                rule_mode: first_match
                unmatched: drop
                rules:
            \(misrouted)      - {name: job, when: {all: [{field: event.op, eq: INSERT}, {field: row.day, exists: true}]}, enqueue: {queue: "\(jobs)", job: {id: "{{event.row.id}}", day: "{{row.day}}", label: "{{row.label}}"}}}
            dead_letter_queue: "\(dead)"
            key_prefix: "\(keyPrefix):seen"
            """
        return (yaml, jobs, dead, wrongType)
    }

    func runSoak(on servers: BenchServers, progress: @escaping @Sendable (Progress) -> Void) async throws -> SoakOutcome {
        let started = Date()
        let soak = options.soak
        let duration = options.duration ?? Self.defaultSoakDuration
        let database = try await servers.makeDatabase()
        let run = SoakRun()
        // The ledger's tables for the whole run, up front (70–130 bytes an event), so that their growth does not show
        // in the resident size; beyond 5 million events (a longer or faster run than the default's 1.2 million) they grow.
        run.ledger.reserveCapacity(Int(min(soak.rate * duration * 1.05 + 1_000, Self.soakLedgerReservationLimit)))
        let logs = BenchLogs()
        let (yaml, jobs, dead, wrongType) = Self.soakProcessorYAML(keyPrefix: servers.keyPrefix, poisonEvery: soak.poisonEvery)
        var loadSeconds = 0.0
        do {
            let setup = try await database.connect()
            do {
                try await setup.execute(Self.soakSetupSQL)
                await setup.close()
            } catch {
                await setup.close()
                throw error
            }
            if soak.poisonEvery > 0 {
                let redis = try await RedisConnection.connect(servers.redis)
                do {
                    _ = try await redis.command(
                        "SET", RedisArgument(wrongType), "this key holds a string, not a list: pushes to it fail with WRONGTYPE")
                    await redis.close()
                } catch {
                    await redis.close()
                    throw error
                }
            }
            let configuration = try ProcessorConfiguration(yaml: yaml, file: "soak.yml")
            let processorLogger = logs.logger(label: "pgevents.bench.soak", level: .warning)
            let processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: servers.redis, logger: processorLogger)

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await processor.run()
                        if !run.stopping.load(ordering: .acquiring) {
                            run.fail(
                                "the processor returned while the load ran\(logs.lastWarning.map { "; its last warning: \($0)" } ?? "")")
                        }
                    } catch {
                        if !run.stopping.load(ordering: .acquiring) && !(error is CancellationError) {
                            run.fail("the processor stopped with an error: \(error)")
                        }
                    }
                }
                group.addTask { await Self.soakConsume(jobs: jobs, dead: dead, redis: servers.redis, run: run) }
                do {
                    try await Self.waitForProcessor(database)
                } catch {
                    // A processor that could not start says why better than the wait's time-out does.
                    guard let failure = run.failure else { throw error }
                    throw HarnessError(code: .startupFailed, message: "pgevents bench soak: \(failure)")
                }

                let loadStart = ContinuousClock.now
                run.noteProgress()
                group.addTask {
                    await Self.soakWrite(database: database, rate: soak.rate, poisonEvery: soak.poisonEvery, start: loadStart, run: run)
                }
                group.addTask {
                    await Self.soakSample(
                        database: database, redis: servers.redis, interval: soak.sampleInterval, start: loadStart, run: run)
                }

                // The load: until its duration is over, or the processor (or a part of the bench) fails or stalls.
                var lastReport = ContinuousClock.now
                while true {
                    let elapsed = (ContinuousClock.now - loadStart).inSeconds
                    if elapsed >= duration || run.failure != nil { break }
                    if let stall = run.stalled(timeout: soak.stallTimeout) {
                        run.fail(Self.stallMessage(stall, timeout: soak.stallTimeout, loadStart: loadStart, logs: logs))
                        break
                    }
                    if ContinuousClock.now - lastReport > .milliseconds(250) {
                        lastReport = .now
                        progress(
                            Progress(
                                scenario: "soak", fraction: min(1, elapsed / duration),
                                message: String(
                                    format: "%.0f s, %d committed, %d delivered, %d dead-lettered", elapsed,
                                    run.committed.load(ordering: .relaxed),
                                    run.ledger.deliveredCount, run.deadCount.load(ordering: .relaxed))))
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                run.stopWriting.store(true, ordering: .releasing)
                loadSeconds = (ContinuousClock.now - loadStart).inSeconds

                // The drain: until everything arrived, or nothing did for the stall timeout (bounded in any case).
                if run.failure == nil {
                    let cap = ContinuousClock.now + .seconds(max(60, duration))
                    while !run.isComplete, run.failure == nil, ContinuousClock.now < cap {
                        if let stall = run.stalled(timeout: soak.stallTimeout) {
                            run.fail(Self.stallMessage(stall, timeout: soak.stallTimeout, loadStart: loadStart, logs: logs))
                            break
                        }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    try await Task.sleep(for: .milliseconds(300))  // late duplicates, if any, show up here
                }
                run.stopping.store(true, ordering: .releasing)
                group.cancelAll()
            }
        } catch {
            try? await database.drop()
            throw error
        }
        try? await database.drop()

        let report = run.report(logs: logs, poisonEnabled: soak.poisonEvery > 0)
        let committed = run.committed.load(ordering: .relaxed)
        var extra: [String: Double] = [
            "rate": soak.rate,
            "rate_achieved": Double(committed) / max(loadSeconds, 1e-9),
            "load_s": loadSeconds,
            "poison_sent": Double(report.events.poison), "poison_dead_lettered": Double(report.events.poisonDeadLettered),
            "wrongtype_sent": Double(report.events.wrongType), "wrongtype_dead_lettered": Double(report.events.wrongTypeDeadLettered),
            "bad_delivered": Double(report.events.badDelivered), "good_dead_lettered": Double(report.events.goodDeadLettered),
            "samples": Double(report.samples.count), "failures": Double(report.failures.count),
        ]
        for growth in report.growth {
            extra["growth_" + growth.metric.lowercased().replacingOccurrences(of: " ", with: "_") + "_pct"] = growth.fraction * 100
        }
        let failures = report.failures
        var note = failures.isEmpty ? "passed" : "FAILED: " + failures.joined(separator: "; ")
        note += "; rss_mb is the bench process's (the processor runs in it)"
        var result = result(
            "soak", servers: (servers.postgresVersion, servers.redisVersion), started: started, events: committed, duration: loadSeconds,
            eventsPerSecond: Double(report.events.delivered) / max(loadSeconds, 1e-9), lost: report.events.lost,
            duplicated: report.events.duplicated,
            errors: run.writeErrors.load(ordering: .relaxed) + run.unreadableJobs.load(ordering: .relaxed)
                + report.events.unidentifiedDeadLetters,
            extra: extra, note: note,
            settings: [
                "rate": String(soak.rate), "duration_s": String(duration), "sample_interval_s": String(soak.sampleInterval),
                "poison_every": String(soak.poisonEvery), "stall_timeout_s": String(soak.stallTimeout),
                "rss": "bench process (processor in-process)",
            ])
        result.settings["pipeline"] = "soak (json, fetch by date, rules)"
        result.series = report.samples.map(\.seriesPoint)
        return SoakOutcome(
            result: result, report: report, rate: soak.rate, duration: duration, sampleInterval: soak.sampleInterval,
            poisonEvery: soak.poisonEvery)
    }
}
