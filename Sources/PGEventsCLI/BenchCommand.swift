import ArgumentParser
import Foundation
import PGEventsBench
import PGEventsOps
import PGEventsServe
import Synchronization

/// `pgevents bench`: measurements on throwaway servers (or given ones).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the pipeline on throwaway servers (or given ones).",
        discussion: """
            `pgevents bench [SCENARIO]` runs a scenario (default: all); `pgevents bench faults` injects faults under load; \
            `pgevents bench fanout` measures `pgevents serve` with up to 10,000 WebSocket clients. \
            See Benchmarks/README.md for what each scenario measures and how.
            """,
        subcommands: [ScenariosCommand.self, FaultsCommand.self, FanoutCommand.self, BenchBaselineCommand.self],
        defaultSubcommand: ScenariosCommand.self
    )
}

/// `pgevents bench [SCENARIO]`: the named scenarios, a table on stdout, JSON on request.
struct ScenariosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a benchmark scenario (the default subcommand: `pgevents bench load-1000`).",
        discussion: """
            Scenarios: \(ScenarioBench.Scenario.allCases.map(\.rawValue).joined(separator: ", ")), all \
            (every one but replication, which starts a publisher/subscriber pair of its own, and soak, which runs 10 minutes). \
            Exit status 1 when a scenario lost or duplicated a job (or the output options report a regression; for soak, \
            also a poison event not dead-lettered, a processor that stopped or stalled, or growth of the journal, Redis' \
            memory or the resident size beyond 10% from the first third of the samples to the last), 2 on bad input or setup.
            """
    )

    @Argument(help: "The scenario: load-1000, throughput, burst, latency, writers, replication, soak or all.")
    var scenario: String = "all"

    @Option(help: "Events of load-1000.")
    var events: Int = 1_000

    @Option(help: "Arrival rate of latency and replication (events/s; default 1,000), and of soak (default 2,000).")
    var rate: Double?

    @Option(help: "Seconds of throughput (default 10), latency (10), replication (5), soak (600), and of each writers cell (2).")
    var duration: Double?

    @Option(name: .customLong("sample-interval"), help: "soak: seconds between samples of the journal, Redis and the resident size.")
    var sampleInterval: Double = 10

    @Option(
        name: .customLong("poison-every"),
        help:
            "soak: every N-th event is poison (its fetch key is not a date) and one per N is routed to a key holding a string (WRONGTYPE); 0: neither."
    )
    var poisonEvery: Int = 1_000

    @Option(
        name: .customLong("stall-timeout"),
        help: "soak: end the run as failed when events wait and nothing reaches the consumer for this many seconds.")
    var stallTimeout: Double = 30

    @Option(
        help:
            "Writer connections, comma-separated: load-1000, throughput and latency use the first (default 4; latency 8); writers runs each (default 1,2,4,8,16)."
    )
    var writers: String?

    @Option(help: "Events committed in one transaction by burst.")
    var burst: Int = 100_000

    @Option(
        name: .customLong("database-url"),
        help: "Run on this PostgreSQL server (in a scratch database of the bench's own, dropped afterwards; needs CREATEDB).")
    var databaseURL: String?

    @Option(name: .customLong("redis-url"), help: "Run on this Redis server (keys under pgevents-bench:<run id>:, deleted afterwards).")
    var redisURL: String?

    @Flag(
        name: .customLong("compare-raw"),
        help: "Also run a minimal LISTEN loop that only counts, on the same load, and report the processor's rate as a fraction of it.")
    var compareRaw = false

    @Option(
        help:
            "What the processor does with each event: none (payloads passed through), rules (JSON decoded, row fetched, rules, a job template), batch (rules, then 10 jobs a message; burst only)."
    )
    var pipeline: String = "none"

    @Option(
        help:
            "The processor's source in load-1000, throughput, latency and burst: journal, or wal (a table in a publication, streamed from a replication slot; results named e.g. latency/wal). writers always runs both."
    )
    var source: String = "journal"

    @Option(help: "The journal migrations (default: sql/pgevents of this checkout).")
    var sql: String?

    @OptionGroup var user: UserPipelineOptions

    @OptionGroup var output: BenchOutputOptions

    func run() async throws {
        // The processor's metrics backend, bootstrapped as `pgevents process --http/--metrics` does, to measure its cost
        // (without it the scenarios' metrics go nowhere).
        if ProcessInfo.processInfo.environment["PGEVENTS_BENCH_METRICS"] == "prometheus" { _ = ProcessMetrics.shared }
        try output.checkBaseline()
        guard let mode = ScenarioBench.PipelineMode(rawValue: pipeline) else {
            throw ValidationError(
                "unknown --pipeline '\(pipeline)'; expected one of: \(ScenarioBench.PipelineMode.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        let userPipeline = try user.pipeline()
        let scenarios: [ScenarioBench.Scenario]
        if scenario == "all", userPipeline != nil {
            scenarios = ScenarioBench.UserPipeline.scenarios
        } else if scenario == "all" {
            scenarios = ScenarioBench.Scenario.all
        } else if let one = ScenarioBench.Scenario(rawValue: scenario) {
            scenarios = [one]
        } else {
            throw ValidationError(
                "unknown scenario '\(scenario)'; the scenarios are: \(ScenarioBench.Scenario.allCases.map(\.rawValue).joined(separator: ", ")), all"
            )
        }
        guard let directory = sql ?? ScenarioBench.findSQLDirectory(executable: FaultsCommand.executablePath()) else {
            throw CommandExit(command: "bench").badInput("cannot find sql/pgevents; give it with --sql DIR")
        }
        var options = ScenarioBench.Options(sqlDirectory: directory)
        options.events = events
        if let rate {
            options.rate = rate
            options.soak.rate = rate
        }
        options.soak.sampleInterval = sampleInterval
        options.soak.poisonEvery = poisonEvery
        options.soak.stallTimeout = stallTimeout
        options.duration = duration
        options.burstSize = burst
        options.databaseURL = databaseURL
        options.redisURL = redisURL
        options.compareRaw = compareRaw
        options.pipeline = mode
        options.userPipeline = userPipeline
        guard let sourceMode = ScenarioBench.SourceMode(rawValue: source) else {
            throw ValidationError("unknown --source '\(source)'; expected journal or wal")
        }
        if sourceMode == .wal, userPipeline != nil || scenarios.contains(where: { [.soak, .replication].contains($0) }) {
            throw ValidationError(
                "--source wal applies to load-1000, throughput, latency and burst on the bench's table (writers measures the wal and emit_wal patterns on its own; soak, replication and --migrations run the journal or the user's configuration)"
            )
        }
        options.source = sourceMode
        if let writers {
            options.writers = try writers.split(separator: ",").map { part in
                guard let count = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--writers takes counts separated by commas, e.g. 1,2,4 (got '\(writers)')")
                }
                return count
            }
        }
        let bar = ProgressBar()
        if scenarios == [.soak] {
            try await runSoak(options, bar: bar)
            return
        }
        let results = try await CommandExit(command: "bench").mappingInputErrors(cleanup: bar.clear) {
            try await ScenarioBench(options: options).run(scenarios) { bar.show($0) }
        }
        bar.clear()
        print(BenchResult.table(results))
        let status = try output.emit(results)
        try CommandExit.failed(if: status != 0 || results.contains(where: { $0.lost > 0 || $0.duplicated > 0 }))
    }
}

extension ScenariosCommand {
    /// `pgevents bench soak`: the samples' table, then the JSON/HTML output; exit 1 unless every check passed.
    func runSoak(_ options: ScenarioBench.Options, bar: ProgressBar) async throws {
        let outcome = try await CommandExit(command: "bench").mappingInputErrors(cleanup: bar.clear) {
            try await ScenarioBench(options: options).runSoak { bar.show($0) }
        }
        bar.clear()
        print(BenchResult.table([outcome.result]).split(separator: "\n").first.map(String.init) ?? "")
        print(outcome.table)
        let status = try output.emit([outcome.result])
        try CommandExit.failed(if: status != 0 || !outcome.passed)
    }
}

/// A progress bar on stderr, only when it is a terminal, and only once a step (a scenario; the whole run of
/// `check`) has run for 2 s: short runs, pipes and files (JSON, JUnit, TAP on stdout or redirected) never see it.
final class ProgressBar: Sendable {
    private struct State {
        var scenario = ""
        var since = ContinuousClock.now
        var shown = false
        var lastDraw = ContinuousClock.now
    }
    private let state = Mutex(State())
    private let enabled: Bool
    private let delay: Duration
    private let write: @Sendable (String) -> Void

    init(
        enabled: Bool = isatty(STDERR_FILENO) == 1, delay: Duration = .seconds(2),
        write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        self.enabled = enabled
        self.delay = delay
        self.write = write
    }

    func show(_ progress: ScenarioBench.Progress) {
        let name = progress.scenario.split(separator: "/").first.map(String.init) ?? progress.scenario
        show(step: name, fraction: progress.fraction, message: "\(progress.scenario): \(progress.message)")
    }

    /// Draws `fraction` and `message` (at most every 100 ms) once `step` has lasted `delay`.
    func show(step: String, fraction: Double?, message: String) {
        guard enabled else { return }
        let line: String? = state.withLock { state in
            let now = ContinuousClock.now
            if step != state.scenario {
                state.scenario = step
                state.since = now
            }
            guard now - state.since >= delay, !state.shown || now - state.lastDraw > .milliseconds(100) else { return nil }
            state.shown = true
            state.lastDraw = now
            let fraction = min(1, max(0, fraction ?? 0))
            let filled = Int(fraction * 30)
            return "\r\u{1B}[2K[" + String(repeating: "#", count: filled) + String(repeating: "-", count: 30 - filled)
                + String(format: "] %3.0f%% ", fraction * 100) + message
        }
        if let line { write(line) }
    }

    /// Erases the bar, if one was drawn.
    func clear() {
        guard enabled else { return }
        let shown = state.withLock { state in
            defer { state.shown = false }
            return state.shown
        }
        if shown { write("\r\u{1B}[2K") }
    }
}

/// `pgevents bench faults`: every fault under load, with a ledger of what was lost or duplicated.
struct FaultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract: "Inject each fault under load against the reference processor and count what is lost or duplicated.",
        discussion: """
            Faults: \(FaultBench.Fault.allCases.map(\.rawValue).joined(separator: ", ")). \
            Exit status 1 when any fault lost or duplicated a job.
            """
    )

    @Option(help: "Only these faults (comma-separated).")
    var only: String?

    @Option(help: "Committed events per second during the run.")
    var rate: Double = 500

    @Option(
        name: .customLong("heartbeat-timeout"),
        help:
            "The processor's heartbeat timeout in seconds (the freeze lasts this plus 1.5 s, and on until the processor notices, at most 10 s more)."
    )
    var heartbeatTimeout: Double = 1

    @Option(
        help:
            "The processor's source: journal, or wal (the events table in a publication, streamed from a replication slot of each fault's own)."
    )
    var source: String = "journal"

    @Option(help: "The journal migrations (default: sql/pgevents of this checkout).")
    var sql: String?

    @OptionGroup var output: BenchOutputOptions

    func run() async throws {
        try output.checkBaseline()
        guard let directory = sql ?? ScenarioBench.findSQLDirectory(executable: Self.executablePath()) else {
            throw CommandExit(command: "bench").badInput("cannot find sql/pgevents; give it with --sql DIR")
        }
        var options = FaultBench.Options(sqlDirectory: directory, processorExecutable: Self.executablePath())
        options.rate = rate
        options.heartbeatTimeout = heartbeatTimeout
        guard let sourceMode = ScenarioBench.SourceMode(rawValue: source) else {
            throw ValidationError("unknown --source '\(source)'; expected journal or wal")
        }
        options.source = sourceMode
        if let only {
            options.faults = try only.split(separator: ",").map { name in
                guard let fault = FaultBench.Fault(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError(
                        "unknown fault '\(name)'; the faults are: \(FaultBench.Fault.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return fault
            }
        }
        let started = Date()
        let outcome = try await CommandExit(command: "bench").mappingInputErrors {
            try await FaultBench(options: options).run { line in
                FileHandle.standardError.write(Data("… \(line)\n".utf8))
            }
        }
        print(outcome.table(rate: rate))
        let status = try output.emit(outcome.results(rate: rate, heartbeatTimeout: heartbeatTimeout, startedAt: started))
        try CommandExit.failed(if: status != 0 || !outcome.passed)
    }

    /// This executable (for the fault that kills the processor's process and starts it again).
    static func executablePath() -> String? {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }
}

/// `pgevents bench fanout`: `pgevents serve` fanning one stream out to thousands of WebSocket clients.
struct FanoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "Measure pgevents serve: 1 to 10,000 WebSocket clients, events broadcast to all, commit → client latency and memory.",
        discussion: """
            The gateway runs as a child process (this executable's serve); the clients are in this process, on real \
            sockets. Results are named fanout/<clients>/<rate> (and …/slow: the same with one client that stops reading). \
            Exit status 1 when a client missed or got twice a message.
            """
    )

    @Option(help: "Connected clients per cell (comma-separated).")
    var clients: String = "1,100,1000,10000"

    @Option(help: "Events per second broadcast to all (comma-separated).")
    var rates: String = "10,100"

    @Option(help: "Seconds of events per cell.")
    var duration: Double = 5

    @Option(name: .customLong("slow-cell"), help: "CLIENTS@RATE: that cell again with one slow client ('none': skip).")
    var slowCell: String = "1000@100"

    @Option(help: "The journal migrations (default: sql/pgevents of this checkout).")
    var sql: String?

    @OptionGroup var output: BenchOutputOptions

    func run() async throws {
        try output.checkBaseline()
        guard let executable = FaultsCommand.executablePath() else {
            throw CommandExit(command: "bench").badInput("cannot find this executable to run pgevents serve from")
        }
        guard let directory = sql ?? ScenarioBench.findSQLDirectory(executable: executable) else {
            throw CommandExit(command: "bench").badInput("cannot find sql/pgevents; give it with --sql DIR")
        }
        func numbers(_ text: String, _ name: String) throws -> [Double] {
            try text.split(separator: ",").map { part in
                guard let value = Double(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--\(name) takes numbers separated by commas (got '\(text)')")
                }
                return value
            }
        }
        let secret = (0..<4).map { _ in UUID().uuidString }.joined()
        let token = try await GatewayToken.hs256(
            secret: secret, claims: ["database": .string("bench"), "uid": .string("bench"), "superUser": .bool(true)])
        var options = FanoutBench.Options(gatewayExecutable: executable, sqlDirectory: directory, secret: secret, token: token)
        options.clients = try numbers(clients, "clients").map { Int($0) }
        options.rates = try numbers(rates, "rates")
        options.duration = duration
        if slowCell == "none" {
            options.slowCell = nil
        } else {
            let parts = slowCell.split(separator: "@")
            guard parts.count == 2, let count = Int(parts[0]), let rate = Double(parts[1]) else {
                throw ValidationError("--slow-cell is CLIENTS@RATE, e.g. 1000@100, or none (got '\(slowCell)')")
            }
            options.slowCell = (count, rate)
        }
        let results = try await CommandExit(command: "bench").mappingInputErrors {
            try await FanoutBench(options: options).run { line in FileHandle.standardError.write(Data("… \(line)\n".utf8)) }
        }
        print(BenchResult.table(results))
        let status = try output.emit(results)
        try CommandExit.failed(if: status != 0 || results.contains(where: { $0.lost > 0 || $0.duplicated > 0 }))
    }
}
