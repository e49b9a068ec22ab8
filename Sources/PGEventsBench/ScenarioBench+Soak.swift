import PGEventsHarness
import PGEventsSystem
import Foundation
import Logging
import PGEvents
import PGEventsPostgres
import PGEventsRedis
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
        let servers = try await BenchServers.start(databaseURL: nil, redisURL: nil, migrations: migrations, setupSQL: Self.setupSQL, logger: logger)
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
        let jobs = "\(keyPrefix):soak:jobs", dead = "\(keyPrefix):soak:dead", wrongType = "\(keyPrefix):soak:wrongtype"
        let misrouted = poisonEvery > 0
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
                    _ = try await redis.command("SET", RedisArgument(wrongType), "this key holds a string, not a list: pushes to it fail with WRONGTYPE")
                    await redis.close()
                } catch {
                    await redis.close()
                    throw error
                }
            }
            let configuration = try ProcessorConfiguration(yaml: yaml, file: "soak.yml")
            let processorLogger = logs.logger(label: "pgevents.bench.soak", level: .warning)
            let processor = EventProcessor(configuration: configuration, postgres: database.configuration, redis: servers.redis, logger: processorLogger)

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await processor.run()
                        if !run.stopping.load(ordering: .acquiring) { run.fail("the processor returned while the load ran\(logs.lastWarning.map { "; its last warning: \($0)" } ?? "")") }
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
                group.addTask { await Self.soakWrite(database: database, rate: soak.rate, poisonEvery: soak.poisonEvery, start: loadStart, run: run) }
                group.addTask { await Self.soakSample(database: database, redis: servers.redis, interval: soak.sampleInterval, start: loadStart, run: run) }

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
                        progress(Progress(scenario: "soak", fraction: min(1, elapsed / duration),
                                          message: String(format: "%.0f s, %d committed, %d delivered, %d dead-lettered", elapsed, run.committed.load(ordering: .relaxed),
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
            eventsPerSecond: Double(report.events.delivered) / max(loadSeconds, 1e-9), lost: report.events.lost, duplicated: report.events.duplicated,
            errors: run.writeErrors.load(ordering: .relaxed) + run.unreadableJobs.load(ordering: .relaxed) + report.events.unidentifiedDeadLetters,
            extra: extra, note: note,
            settings: ["rate": String(soak.rate), "duration_s": String(duration), "sample_interval_s": String(soak.sampleInterval),
                       "poison_every": String(soak.poisonEvery), "stall_timeout_s": String(soak.stallTimeout),
                       "rss": "bench process (processor in-process)"])
        result.settings["pipeline"] = "soak (json, fetch by date, rules)"
        result.series = report.samples.map(\.seriesPoint)
        return SoakOutcome(result: result, report: report, rate: soak.rate, duration: duration, sampleInterval: soak.sampleInterval, poisonEvery: soak.poisonEvery)
    }

    // MARK: The parts

    /// `the processor stalled: nothing reached the consumer for 30 s (the last job 0.4 s into the load) while 9,000
    /// events waited; its last warning: …`
    static func stallMessage(_ stall: (waiting: Int, since: ContinuousClock.Instant), timeout: Double, loadStart: ContinuousClock.Instant, logs: BenchLogs) -> String {
        let since = (stall.since - loadStart).inSeconds
        return "the processor stalled: nothing reached the consumer for \(Int(timeout)) s or more"
            + (since > 0 ? String(format: " (the last job or dead letter %.1f s into the load)", since) : " (none since the load started)")
            + " while \(stall.waiting) events waited"
            + (logs.lastWarning.map { "; its last warning: \($0)" } ?? "; it logged no warning")
    }

    /// Days of 2026 as `YYYY-MM-DD`, the keys of `soak_days`.
    static let soakDays: [String] = {
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return lengths.enumerated().flatMap { month, days in
            (1...days).map { "2026-" + String(month + 1).leftPadded(to: 2) + "-" + String($0).leftPadded(to: 2) }
        }
    }()

    /// Commits the due events every 10 ms in one INSERT (rate × elapsed − sent, at most a second's worth), until stopped.
    static func soakWrite(database: BenchDatabase, rate: Double, poisonEvery: Int, start: ContinuousClock.Instant, run: SoakRun) async {
        let connection: PostgresConnection
        do {
            connection = try await database.connect()
        } catch {
            run.fail("the bench's writer cannot connect: \(error)")
            return
        }
        var sent = 0
        while !run.stopWriting.load(ordering: .acquiring), !Task.isCancelled {
            let due = min(Int((ContinuousClock.now - start).inSeconds * rate) - sent, max(1, Int(rate)))
            if due <= 0 {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            var days: [String] = [], kinds: [String] = []
            days.reserveCapacity(due)
            kinds.reserveCapacity(due)
            for index in (sent + 1)...(sent + due) {
                let kind = SoakEventKind.of(index: index, poisonEvery: poisonEvery)
                kinds.append(kind.rawValue)
                days.append(kind == .poison ? "not-a-date" : soakDays[index % soakDays.count])
            }
            do {
                let rows = try await connection.query(
                    "INSERT INTO public.soak_events (day, kind) SELECT * FROM unnest($1::text[], $2::text[]) RETURNING id, kind",
                    [textArray(days), textArray(kinds)])
                for row in rows {
                    let id = try row.decode(Int64.self, at: 0)
                    switch SoakEventKind(rawValue: try row.decode(String.self, at: 1)) {
                    case .good: run.ledger.committed(id)
                    case .poison: run.bad.withLock { _ = $0.poison.insert(id) }
                    case .wrongType: run.bad.withLock { _ = $0.wrongType.insert(id) }
                    case nil: run.writeErrors.add(1, ordering: .relaxed)
                    }
                }
            } catch {
                run.writeErrors.add(1, ordering: .relaxed)
                run.fail("the bench's writer failed: \(error)")
                break
            }
            sent += due
            run.committed.store(sent, ordering: .relaxed)
            try? await Task.sleep(for: .milliseconds(10))
        }
        await connection.close()
    }

    /// `{"a","b"}`: a text[] literal, every element quoted.
    static func textArray(_ values: [String]) -> String {
        "{" + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
    }

    /// Takes jobs and dead letters (`BRPOP` on both lists, then `RPOP … 1000` on each while they hold more) until the run stops.
    static func soakConsume(jobs: String, dead: String, redis: RedisConfiguration, run: SoakRun) async {
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(redis)
        } catch {
            run.fail("the bench's consumer cannot connect to Redis: \(error)")
            return
        }
        do {
            while !run.stopping.load(ordering: .acquiring), !Task.isCancelled {
                let reply = try await connection.command("BRPOP", RedisArgument(jobs), RedisArgument(dead), "0.1")
                guard let pair = reply.array, pair.count == 2, let key = pair[0].string, let first = pair[1].bytes else { continue }
                take(key == dead, [first])
                for (list, isDead) in [(jobs, false), (dead, true)] {
                    while true {
                        let more = try await connection.command("RPOP", RedisArgument(list), "1000")
                        guard let elements = more.array, !elements.isEmpty else { break }
                        take(isDead, elements.compactMap(\.bytes))
                        if elements.count < 1000 { break }
                    }
                }
            }
        } catch {
            if !run.stopping.load(ordering: .acquiring) { run.fail("the bench's consumer failed: \(error)") }
        }
        await connection.close()

        func take(_ isDead: Bool, _ items: [[UInt8]]) {
            for item in items {
                if isDead {
                    run.deadCount.add(1, ordering: .relaxed)
                    if let id = deadLetterRowID(item) {
                        run.dead.withLock { $0[id, default: 0] += 1 }
                    } else {
                        run.unidentifiedDead.add(1, ordering: .relaxed)
                    }
                } else if let id = rowID(in: item), id > 0 {
                    run.ledger.delivered(id)
                } else {
                    run.unreadableJobs.add(1, ordering: .relaxed)
                }
            }
            run.noteProgress()
        }
    }

    /// The row id a dead letter is about: the `"id":` in its `payload` (the journal event's JSON, as the processor
    /// writes dead letters: `{"reason", "channel", "seq", "created_at", "dead_at", "payload"}`), else in any of its
    /// string values (a job), else anywhere in it; nil when there is none.
    static func deadLetterRowID(_ bytes: [UInt8]) -> Int64? {
        if let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] {
            if let payload = object["payload"] as? String, let id = rowID(in: Array(payload.utf8)) { return id }
            for key in object.keys.sorted() {
                if let text = object[key] as? String, let id = rowID(in: Array(text.utf8)) { return id }
                if let nested = object[key] as? [String: Any], let number = nested["id"] as? NSNumber { return number.int64Value }
            }
        }
        return rowID(in: bytes)
    }

    /// Samples every `interval` seconds from `start` until the load is over.
    static func soakSample(database: BenchDatabase, redis: RedisConfiguration, interval: Double, start: ContinuousClock.Instant, run: SoakRun) async {
        let postgres: PostgresConnection, cache: RedisConnection
        do {
            postgres = try await database.connect()
        } catch {
            run.fail("the bench's sampler cannot connect to PostgreSQL: \(error)")
            return
        }
        do {
            cache = try await RedisConnection.connect(redis)
        } catch {
            await postgres.close()
            run.fail("the bench's sampler cannot connect to Redis: \(error)")
            return
        }
        var number = 1
        sampling: while !run.stopWriting.load(ordering: .acquiring), !Task.isCancelled {
            let due = start + .milliseconds(Int64(Double(number) * interval * 1000))
            while ContinuousClock.now < due {
                if run.stopWriting.load(ordering: .acquiring) || Task.isCancelled { break sampling }
                try? await Task.sleep(for: min(.milliseconds(100), due - ContinuousClock.now))
            }
            do {
                // The resident size first, before the bench itself allocates anything for the sample.
                let resident = residentMegabytes() ?? 0
                let journal = try await postgres.query("SELECT count(*), pg_total_relation_size('pgevents.journal') FROM pgevents.journal")
                let row = try journal.first.unwrapOrThrow("no row from count(*)")
                let journalRows = Int(try row.decode(Int64.self, at: 0)), journalBytes = Int(try row.decode(Int64.self, at: 1))
                let info = try await cache.command("INFO", "memory").string ?? ""
                let usedMemory = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
                    .flatMap { Int($0.dropFirst("used_memory:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                let keys = Int(try await cache.command("DBSIZE").integer ?? 0)
                let good = run.ledger.committedCount, delivered = run.ledger.deliveredCount
                run.samples.withLock {
                    $0.append(SoakReport.Sample(
                        elapsedSeconds: (ContinuousClock.now - start).inSeconds, journalRows: journalRows,
                        journalBytes: journalBytes, redisUsedMemory: usedMemory, redisKeys: keys, residentMegabytes: resident,
                        committed: run.committed.load(ordering: .relaxed), delivered: delivered, deadLettered: run.deadCount.load(ordering: .relaxed),
                        backlog: max(0, good - delivered), duplicated: run.ledger.duplicatedCount))
                }
            } catch {
                run.fail("the bench's sampler failed: \(error)")
                break
            }
            number += 1
        }
        await postgres.close()
        await cache.close()
    }
}

/// What the parts of a soak run share.
final class SoakRun: Sendable {
    struct BadEvents {
        var poison: Set<Int64> = []
        var wrongType: Set<Int64> = []
    }

    let ledger = EventLedger()
    let bad = Mutex(BadEvents())
    /// Dead letters per row id.
    let dead = Mutex<[Int64: Int]>([:])
    let deadCount = Atomic<Int>(0)
    let unidentifiedDead = Atomic<Int>(0)
    let unreadableJobs = Atomic<Int>(0)
    let writeErrors = Atomic<Int>(0)
    /// Events committed (good and bad).
    let committed = Atomic<Int>(0)
    let samples = Mutex<[SoakReport.Sample]>([])
    /// The writer and the sampler stop.
    let stopWriting = Atomic<Bool>(false)
    /// Everything stops (the processor's end is then no failure).
    let stopping = Atomic<Bool>(false)
    private let lastProgress = Mutex(ContinuousClock.now)
    private let failureText = Mutex<String?>(nil)

    /// The first failure, in words that say whose: the processor's, or a part of the bench's.
    var failure: String? { failureText.withLock { $0 } }

    func fail(_ message: String) {
        failureText.withLock { if $0 == nil { $0 = message } }
    }

    func noteProgress() {
        lastProgress.withLock { $0 = .now }
    }

    /// How many events wait and since when nothing reached the consumer, when that is `timeout` seconds or more; else nil.
    func stalled(timeout: Double) -> (waiting: Int, since: ContinuousClock.Instant)? {
        let waiting = self.waiting
        let since = lastProgress.withLock { $0 }
        guard waiting > 0, ContinuousClock.now - since > .milliseconds(Int64(timeout * 1000)) else { return nil }
        return (waiting, since)
    }

    /// Events committed and not yet taken (as a job or a dead letter).
    var waiting: Int {
        let bad = bad.withLock { $0.poison.count + $0.wrongType.count }
        let deadTaken = dead.withLock { $0.count }
        return max(0, ledger.committedCount - ledger.deliveredCount) + max(0, bad - deadTaken)
    }

    /// Whether every good event was delivered and every bad one dead-lettered.
    var isComplete: Bool {
        guard ledger.committedCount <= ledger.deliveredCount else { return false }
        let bad = bad.withLock { $0 }
        return dead.withLock { dead in bad.poison.allSatisfy { dead[$0] != nil } && bad.wrongType.allSatisfy { dead[$0] != nil } }
    }

    func report(logs: BenchLogs, poisonEnabled: Bool) -> SoakReport {
        let summary = ledger.summary
        let bad = bad.withLock { $0 }
        let dead = dead.withLock { $0 }
        let good = ledger.committedKeys
        var events = SoakReport.Events()
        events.good = summary.sent
        events.delivered = summary.delivered
        events.lost = summary.lost.count
        events.duplicated = summary.duplicated.count
        events.poison = bad.poison.count
        events.poisonDeadLettered = bad.poison.filter { dead[$0] != nil }.count
        events.wrongType = bad.wrongType.count
        events.wrongTypeDeadLettered = bad.wrongType.filter { dead[$0] != nil }.count
        events.badDelivered = summary.unexpected.filter { bad.poison.contains($0) || bad.wrongType.contains($0) }.count
        events.goodDeadLettered = dead.keys.filter { good.contains($0) }.count
        events.unidentifiedDeadLetters = unidentifiedDead.load(ordering: .relaxed)
            + dead.keys.filter { !good.contains($0) && !bad.poison.contains($0) && !bad.wrongType.contains($0) }.count
        return SoakReport(samples: samples.withLock { $0 }, events: events, runFailure: failure, poisonEnabled: poisonEnabled)
    }
}


extension Optional {
    fileprivate func unwrapOrThrow(_ message: String) throws -> Wrapped {
        guard let self else { throw HarnessError(code: .commandFailed, message: "pgevents bench soak: \(message)") }
        return self
    }
}
