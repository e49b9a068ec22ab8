import Foundation
public import Logging
public import PGEventsHarness
import PGEventsPostgres

/// `pgevents bench [SCENARIO]`: the reference processor (`EventProcessor` on the journal,
/// `sql/pgevents/001_journal.sql`) measured under named loads, on throwaway servers or on given ones.
///
/// Every scenario gets a fresh database with the journal and a bench table `public.events (id bigserial,
/// body text)` whose row trigger journals each INSERT on channel `new_event`; the processor delivers to a
/// Redis list of the run's own, and a consumer takes the jobs with `BRPOP`. Each event is followed by its
/// row id through four timestamps on the wall clock (`CLOCK_REALTIME`, nanoseconds):
///
/// - **commit**: the writer's INSERT returned (commit acknowledged, client clock);
/// - **notified**: a separate LISTEN connection received the transaction's notification. The journal's
///   notification carries no payload (one per transaction), so it is matched to its row by the sending
///   backend's PID: every writer has a connection of its own and commits one row at a time, so the k-th
///   notification from a backend belongs to that writer's k-th commit;
/// - **queued**: Redis has taken the event's chunk (`EventProcessor.onDelivered`, called when the sink's
///   pipeline has been answered, before the acknowledgement; the job itself carries nothing about time);
/// - **consumed**: the consumer's `BRPOP` (or the `RPOP` that follows it to take what else is queued) returned it.
///
/// The notification and the commit's acknowledgement leave the server at the same time, so `commit→notified`
/// can be negative; such intervals are recorded as 0 and counted (`extra["clamped_intervals"]`). Lost and
/// duplicated jobs are counted with an `EventLedger` by row id, against every acknowledged commit.
public struct ScenarioBench: Sendable {
    /// The named scenarios.
    public enum Scenario: String, Sendable, CaseIterable, Codable {
        case load1000 = "load-1000"
        case throughput
        case burst
        case latency
        case writers
        case replication
        case soak

        /// What `all` runs: every scenario but `replication`, which starts a publisher/subscriber pair of
        /// throwaway clusters of its own (and so ignores `--database-url`), and `soak`, which takes 10 minutes
        /// by default; run them by name.
        public static var all: [Scenario] { [.load1000, .throughput, .burst, .latency, .writers] }

        /// One line on what it measures.
        public var summary: String {
            switch self {
            case .load1000:
                "1,000 single-row INSERT transactions as fast as the writers commit → processor → BRPOP: total time, events/s, latency per stage"
            case .throughput: "N writers for S seconds: commits/s, notifications/s, processor events/s, backlog at the end, drain time"
            case .burst: "100,000 events committed in one transaction, then drained: drain rate and processor CPU per event"
            case .latency: "a fixed arrival rate on an open-loop schedule: percentiles per stage"
            case .writers: "1…16 writers: commits/s with no trigger, a row-level notify trigger, a statement-level trigger, the journal"
            case .replication: "publisher INSERT → subscriber trigger → notification, on a throwaway publisher/subscriber pair"
            case .soak:
                "a constant rate with poison events for 10 minutes: journal, Redis memory and RSS sampled; lost, duplicated, dead-lettered"
            }
        }
    }

    /// What the scenarios run with; nil picks each scenario's default.
    public struct Options: Sendable {
        /// Events of `load-1000` (default 1,000).
        public var events: Int = 1_000
        /// Arrival rate of `latency` and `replication`, events per second (default 1,000).
        public var rate: Double = 1_000
        /// Seconds of `throughput` (10), `latency` (10), `replication` (5), and of each `writers` cell (2).
        public var duration: Double?
        /// Writer connections: `load-1000`, `throughput` and `latency` use the first (default 4; 8 for `latency`); `writers` runs each (default 1, 2, 4, 8, 16).
        public var writers: [Int]?
        /// Events of `burst` (default 100,000).
        public var burstSize: Int = 100_000
        /// A PostgreSQL server to run on instead of a throwaway one (a scratch database is made on it per scenario).
        public var databaseURL: String?
        /// A Redis server to run on instead of a throwaway one (keys under `pgevents-bench:<run id>:`, deleted afterwards).
        public var redisURL: String?
        /// Also run a minimal LISTEN loop that only counts, on the same load in the same run: reported as
        /// `raw_events_per_s` and `fraction_of_raw` in `extra`.
        public var compareRaw = false
        /// The journal migrations (`sql/pgevents`).
        public var sqlDirectory: String
        /// The processor's chunk size (its `batch_size`).
        public var batchSize = 1_000
        /// What the processor does with each event (`load-1000`, `throughput`, `latency`, `burst`).
        public var pipeline: PipelineMode = .passThrough
        /// `soak`'s rate, sampling, poison events and stall timeout (its duration is `duration`, default 10 minutes).
        public var soak = SoakOptions()
        /// The user's migrations, transaction and processor configuration: `writers` and `latency` run them
        /// instead of the bench's table (`UserPipeline.scenarios`).
        public var userPipeline: UserPipeline?
        /// Where `burst` reads its events: the journal, or the WAL (`source: wal`, a table in a publication).
        public var source: SourceMode = .journal

        public init(sqlDirectory: String) {
            self.sqlDirectory = sqlDirectory
        }
    }

    /// The processor's source in `load-1000`, `throughput`, `latency` and `burst`.
    public enum SourceMode: String, Sendable, CaseIterable {
        /// `public.events`, whose row trigger journals each INSERT on channel `new_event`.
        case journal
        /// `public.events_wal`, a table with no trigger in a publication, streamed from a replication slot of the
        /// scenario's own; its changes arrive on channel `public.events_wal`.
        case wal

        /// The table the writers insert into.
        var table: String { self == .wal ? "public.events_wal" : "public.events" }

        /// The channel the processor delivers.
        var channel: String { self == .wal ? "public.events_wal" : "new_event" }

        /// The lines of a processor configuration that select this source, with `slot` (also the publication).
        func processorYAML(slot: String) -> String {
            self == .wal ? "source: wal\nwal: {slot: \(slot), publication: \(slot)}" : ""
        }

        /// The scenario's name with this source and `pipeline`: `burst`, `burst/wal`, `latency/wal/rules`.
        func name(_ scenario: String, pipeline: PipelineMode) -> String {
            pipeline.name(self == .wal ? "\(scenario)/wal" : scenario)
        }
    }

    /// What the processor does with each event between the journal and Redis.
    public enum PipelineMode: String, Sendable, CaseIterable {
        /// The payload goes to the list as it is.
        case passThrough = "none"
        /// Decoded as JSON, its row fetched (the source's table by `event.row.id`), two rules evaluated (one matches),
        /// a job rendered from a template with fields of the event and the row.
        case rules
        /// `rules`, and the jobs batched 10 to a message (`burst` only: its ledger reads every id of a message).
        case batch

        /// The channel's configuration for the processor: `queue` is its list, `table` the one rows are fetched from.
        func channelYAML(queue: String, table: String) -> String {
            let rules = """
                {decode: json, queue: "\(queue)", unmatched: drop,
                 fetch: {table: \(table), key: id, from: event.row.id}, rule_mode: all_matches,
                 rules: [{name: job, when: {all: [{field: event.op, eq: INSERT}, {field: row.id, gte: 0}]},
                          enqueue: {queue: "\(queue)", job: {id: "{{event.row.id}}", op: "{{event.op}}", body: "{{row.body}}", table: "{{event.table}}"}}},
                         {name: never, when: {field: event.row.id, lt: 0}, enqueue: {queue: "\(queue):never", job: {id: "{{event.row.id}}"}}}]
                """
            return switch self {
            case .passThrough: "{queue: \"\(queue)\"}"
            case .rules: rules + "}"
            case .batch: rules + ", batch: {max_items: 10, max_seconds: 1}}"
            }
        }

        /// The scenario's name with this mode: `burst`, `burst/rules`.
        func name(_ scenario: String) -> String {
            self == .passThrough ? scenario : "\(scenario)/\(rawValue)"
        }
    }

    /// Where a run is: for a progress bar.
    public struct Progress: Sendable {
        /// The scenario (or cell, `writers/journal/4`) running.
        public var scenario: String
        /// How far it is, 0…1; nil when unknown.
        public var fraction: Double?
        /// What it is doing.
        public var message: String
    }

    public var options: Options
    public var logger: Logger

    public init(options: Options, logger: Logger = TemporaryPostgres.defaultLogger) {
        self.options = options
        self.logger = logger
    }

    /// Runs `scenarios` in turn on one set of servers (started here unless given); `progress` hears about
    /// each step, several times a second during timed phases.
    public func run(_ scenarios: [Scenario], progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> [BenchResult] {
        for scenario in scenarios { try validate(scenario) }
        let migrations = try MigrationSet(directory: options.sqlDirectory)
        let needsServers = scenarios.contains { $0 != .replication }
        var results: [BenchResult] = []
        let servers: BenchServers? =
            needsServers
            ? try await BenchServers.start(
                databaseURL: options.databaseURL, redisURL: options.redisURL, migrations: migrations,
                setupSQL: options.userPipeline == nil ? Self.setupSQL : "", userMigrations: options.userPipeline?.migrations, logger: logger
            )
            : nil
        do {
            for scenario in scenarios {
                progress(Progress(scenario: scenario.rawValue, fraction: 0, message: scenario.summary))
                switch scenario {
                case .replication:
                    results.append(try await runReplication(progress: progress))
                default:
                    guard let servers else { continue }
                    results += try await run(scenario, on: servers, progress: progress)
                }
            }
        } catch {
            await servers?.shutdown()
            throw error
        }
        await servers?.shutdown()
        return results
    }

    /// Runs one scenario (`writers` gives one result per pattern and writer count).
    public func run(_ scenario: Scenario, progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> [BenchResult] {
        try await run([scenario], progress: progress)
    }

    private func run(_ scenario: Scenario, on servers: BenchServers, progress: @escaping @Sendable (Progress) -> Void) async throws
        -> [BenchResult]
    {
        if let user = options.userPipeline {
            return scenario == .latency
                ? [try await runUserLatency(user, on: servers, progress: progress)]
                : try await runUserWriters(user, on: servers, progress: progress)
        }
        return switch scenario {
        case .load1000: [try await runLive(.load, on: servers, progress: progress)]
        case .throughput: [try await runLive(.throughput, on: servers, progress: progress)]
        case .latency: [try await runLive(.latency, on: servers, progress: progress)]
        case .burst: [try await runBurst(on: servers, progress: progress)]
        case .writers: try await runWriters(on: servers, progress: progress)
        case .replication: [try await runReplication(progress: progress)]
        case .soak: [try await runSoak(on: servers, progress: progress).result]
        }
    }

    func validate(_ scenario: Scenario) throws {
        func invalid(_ message: String) -> HarnessError {
            HarnessError(code: .invalidInput, message: "pgevents bench \(scenario.rawValue): \(message)")
        }
        if options.events < 1 { throw invalid("--events must be at least 1 (got \(options.events))") }
        if !(options.rate > 0 && options.rate <= 1_000_000) {
            throw invalid("--rate must be in 0…1,000,000 events/s (got \(options.rate))")
        }
        if let duration = options.duration, !(duration > 0 && duration <= 86_400) {
            throw invalid("--duration must be in 0…86,400 s (got \(duration))")
        }
        if let writers = options.writers, writers.isEmpty || writers.contains(where: { $0 < 1 || $0 > 256 }) {
            throw invalid("--writers must be counts in 1…256 (got \(writers.map(String.init).joined(separator: ",")))")
        }
        if options.burstSize < 1 || options.burstSize > 10_000_000 {
            throw invalid("--burst must be in 1…10,000,000 (got \(options.burstSize))")
        }
        if let user = options.userPipeline { try validateUserPipeline(user, for: scenario) }
        if options.pipeline == .batch, scenario != .burst {
            throw invalid("--pipeline batch applies to burst only (the other scenarios time each event, not messages)")
        }
        if scenario == .soak {
            if options.databaseURL != nil || options.redisURL != nil {
                throw invalid(
                    "soak runs on throwaway servers only: Redis' memory and keys and the journal's size are its figures, and other users of a server would change them"
                )
            }
            if options.pipeline != .passThrough {
                throw invalid("soak has a pipeline of its own (JSON, a fetch by date, rules); --pipeline does not apply")
            }
            let soak = options.soak
            if !(soak.rate > 0 && soak.rate <= 1_000_000) { throw invalid("--rate must be in 0…1,000,000 events/s (got \(soak.rate))") }
            if !(soak.sampleInterval >= 0.1 && soak.sampleInterval <= 3_600) {
                throw invalid("--sample-interval must be in 0.1…3,600 s (got \(soak.sampleInterval))")
            }
            if soak.poisonEvery < 0 { throw invalid("--poison-every must be 0 (none) or a positive count (got \(soak.poisonEvery))") }
            if !(soak.stallTimeout > 0 && soak.stallTimeout <= 3_600) {
                throw invalid("the stall timeout must be in 0…3,600 s (got \(soak.stallTimeout))")
            }
        }
    }

    // MARK: Shared

    /// The bench's tables, added to each scenario database after the journal migrations.
    static let setupSQL = """
        CREATE TABLE public.events (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE TRIGGER events_journal AFTER INSERT ON public.events FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('new_event');
        CREATE FUNCTION public.bench_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify(TG_ARGV[0], NEW.id::text); RETURN NULL; END $$;
        CREATE FUNCTION public.bench_notify_statement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify(TG_ARGV[0], ''); RETURN NULL; END $$;
        CREATE TABLE public.raw_events (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE TRIGGER raw_events_notify AFTER INSERT ON public.raw_events FOR EACH ROW EXECUTE FUNCTION public.bench_notify_row('raw_event');
        CREATE TABLE public.writes_none (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE TABLE public.writes_row (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE TRIGGER writes_row_notify AFTER INSERT ON public.writes_row FOR EACH ROW EXECUTE FUNCTION public.bench_notify_row('writes_row');
        CREATE TABLE public.writes_statement (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE TRIGGER writes_statement_notify AFTER INSERT ON public.writes_statement FOR EACH STATEMENT EXECUTE FUNCTION public.bench_notify_statement('writes_statement');
        CREATE TABLE public.writes_journal (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE TRIGGER writes_journal_journal AFTER INSERT ON public.writes_journal FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('writes_journal');
        CREATE TABLE public.writes_wal (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE TABLE public.events_wal (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE FUNCTION public.bench_emit_wal_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pgevents.emit_wal(TG_ARGV[0], NEW.id::text); RETURN NULL; END $$;
        CREATE TABLE public.writes_emit_wal (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '');
        CREATE TRIGGER writes_emit_wal_emit AFTER INSERT ON public.writes_emit_wal FOR EACH ROW EXECUTE FUNCTION public.bench_emit_wal_row('writes_emit_wal');
        """

    /// A result with the run's servers and this machine filled in.
    func result(
        _ scenario: String, servers: (postgres: String, redis: String), started: Date, events: Int, duration: Double,
        eventsPerSecond: Double,
        latency: BenchResult.Latency? = nil, stages: [String: BenchResult.Latency] = [:], lost: Int = 0, duplicated: Int = 0,
        errors: Int = 0,
        extra: [String: Double] = [:], note: String? = nil, settings: [String: String] = [:],
        distribution: [BenchResult.LatencyPoint]? = nil
    ) -> BenchResult {
        var settings = settings
        settings["compare_raw"] = options.compareRaw ? "true" : "false"
        if settings["pipeline"] == nil { settings["pipeline"] = options.pipeline.rawValue }
        if settings["servers"] == nil {
            settings["servers"] = options.databaseURL == nil && options.redisURL == nil ? "throwaway" : "given"
        }
        return BenchResult(
            scenario: scenario, events: events, durationSeconds: duration, eventsPerSecond: eventsPerSecond, latencyMicroseconds: latency,
            stages: stages, lost: lost, duplicated: duplicated, errors: errors, postgresVersion: servers.postgres,
            redisVersion: servers.redis,
            startedAt: started, extra: extra.filter { $0.value.isFinite }, note: note, settings: settings, distribution: distribution)
    }

    /// `sql/pgevents` of a checkout: from `PGEVENTS_SQL_DIR`, the working directory, or up to five levels
    /// above `executable` (a build directory inside the checkout).
    public static func findSQLDirectory(executable: String? = nil) -> String? {
        var candidates: [String] = []
        if let fromEnvironment = ProcessInfo.processInfo.environment["PGEVENTS_SQL_DIR"] { candidates.append(fromEnvironment) }
        candidates.append(FileManager.default.currentDirectoryPath + "/sql/pgevents")
        if let executable {
            var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
            for _ in 0..<5 {
                directory = directory.deletingLastPathComponent()
                candidates.append(directory.appendingPathComponent("sql/pgevents").path)
            }
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/001_journal.sql") }
    }
}
