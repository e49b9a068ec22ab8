import ArgumentParser
import Dispatch
import Foundation
import Logging
import PGEvents
import PGEventsOps
import PGEventsPostgres
import PGEventsRedis
import ServiceLifecycle

/// `pgevents process`: the reference processor, until SIGINT/SIGTERM.
struct ProcessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Deliver journal (or table) events to Redis lists and streams, without losing any, until SIGINT or SIGTERM.",
        discussion: """
            Install the journal first (psql -f sql/pgevents/001_journal.sql) and attach its trigger to your \
            tables. On SIGINT/SIGTERM the processor finishes and acknowledges the chunk in flight, then exits 0.
            """
    )

    @Option(name: .customLong("config"), help: "The processor's YAML file (default: $PGEVENTS_CONFIG).")
    var config: String?

    @Option(
        name: .customLong("database-url"),
        help:
            "PostgreSQL URL or conninfo (default: $DATABASE_URL, which keeps a password out of `ps`; without either, libpq's PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSFILE… apply, as for psql)."
    )
    var databaseURL: String?

    @Option(name: .customLong("redis-url"), help: "Redis URL (default: $REDIS_URL, which keeps a password out of `ps`).")
    var redisURL: String?

    @Option(
        name: .customLong("log-level"),
        help: "trace, debug, info, notice, warning, error or critical (default: $PGEVENTS_LOG_LEVEL, else info).")
    var logLevel: String?

    @Option(
        name: .customLong("log-format"),
        help:
            "text, or json: one object per line with time, level, label, message and every metadata field (default: $PGEVENTS_LOG_FORMAT, else text)."
    )
    var logFormat: String?

    @Option(
        name: .customLong("metrics"),
        help:
            "Write the metrics in Prometheus text format to this file (- for standard output) at shutdown and on SIGUSR1 (default: $PGEVENTS_METRICS)."
    )
    var metrics: String?

    @Option(
        name: .customLong("http"),
        help:
            "Serve /metrics, /healthz, /readyz and /status on HOST:PORT, e.g. 127.0.0.1:9464 (port 0: any free port, logged) (default: $PGEVENTS_HTTP, else off)."
    )
    var http: String?

    @Option(
        name: .customLong("shutdown-timeout"),
        help:
            "Seconds SIGINT/SIGTERM waits for the chunk in flight; then the processor is cancelled, and 5 s later the process exits (1) whatever the servers do (default: $PGEVENTS_SHUTDOWN_TIMEOUT, else 30)."
    )
    var shutdownTimeout: Double?

    @Flag(
        name: .customLong("check-config"),
        help:
            "Check the file and the servers it names (the source's tables, slot or journal; row lookups; sessions; Redis and its eviction policy) without changing anything, print what was found, and exit (1 when anything failed)."
    )
    var checkConfig = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let settings = try Settings(self, environment: environment)
        if settings.logFormat == .json {
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        }
        // Bootstraps the metrics system before any metric is made (those made earlier would count nowhere); without
        // --metrics or --http nothing reads them, and they go nowhere.
        let backend = settings.metrics != nil || settings.http != nil ? ProcessMetrics.shared : nil
        let exporter = settings.metrics.flatMap { destination in backend.map { MetricsDump(destination: destination, metrics: $0) } }
        guard let redisURL = redisURL ?? environment["REDIS_URL"] else {
            throw ValidationError("no Redis: give --redis-url or set REDIS_URL")
        }
        let config = settings.config
        let shutdownTimeout = settings.shutdownTimeout
        let configuration: ProcessorConfiguration
        let postgres: PostgresConfiguration
        let redis: RedisConfiguration
        do {
            configuration = try ProcessorConfiguration(contentsOf: config)
            // No URL: an empty conninfo, to which libpq adds its PG* environment variables and defaults.
            postgres = try PostgresConfiguration(databaseURL ?? environment["DATABASE_URL"] ?? "")
            redis = try RedisConfiguration(redisURL)
        } catch {
            throw ValidationError("\(error)")
        }
        var logger = Logger(label: "pgevents.process")
        logger.logLevel = settings.logLevel
        if databaseURL == nil, environment["DATABASE_URL"] == nil {
            logger.info(
                "no --database-url and no DATABASE_URL: libpq's environment (PGHOST, PGUSER, PGDATABASE, PGPASSFILE…) and defaults apply",
                metadata: ["postgres": "\(postgres)"])
        }
        // `self.`: the options as given (the locals above fall back to the environment, which is the safe way).
        for warning in Self.passwordOnCommandLineWarnings(
            databaseURLOption: self.databaseURL == nil ? nil : postgres,
            redisURLOption: self.redisURL == nil ? nil : redis)
        {
            logger.warning("\(warning)")
        }
        if checkConfig {
            let findings = await ConfigurationCheck.run(configuration, postgres: postgres, redis: redis, logger: logger)
            for finding in findings { print(finding) }
            if findings.contains(where: { !$0.passed }) { throw ExitCode(1) }
            return
        }
        let processor: any Service
        // Whose state --http reports.
        let subject: ProcessHTTPService.Subject
        switch configuration.source {
        case .journal, .table, .wal:
            // `databases:` is read with journal and table only (the configuration refuses it for the others).
            if configuration.databases != nil {
                let multiple = try MultiDatabaseProcessor(configuration: configuration, postgres: postgres, redis: redis, logger: logger)
                processor = multiple
                subject = .databases(multiple.statuses)
            } else {
                let eventProcessor = EventProcessor(configuration: configuration, postgres: postgres, redis: redis, logger: logger)
                processor = eventProcessor
                subject = .processor(eventProcessor.status)
            }
        case .notify:
            let notifyProcessor = NotifyProcessor(configuration: configuration, postgres: postgres, redis: redis, logger: logger)
            processor = notifyProcessor
            subject = .processor(notifyProcessor.status)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let http = settings.http, let backend {
            // Before the processor: the group stops services in reverse order, so the endpoints answer (and
            // /readyz says "stopping") while the processor finishes its chunk.
            services.append(
                .init(
                    service: ProcessHTTPService(
                        host: http.host, port: http.port, subject: subject, metrics: backend, redis: redis, logger: logger)))
        }
        services.append(.init(service: processor))
        let dumper = exporter.map { exporter in
            // SIGUSR1: a snapshot now; the process goes on.
            signal(SIGUSR1, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
            source.setEventHandler { exporter.write() }
            source.resume()
            return source
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int(shutdownTimeout * 1_000))
        // No maximumCancellationDuration: service-lifecycle ends with fatalError then (a crash report, SIGILL); the
        // watchdog below exits 1 with a message instead.
        let watchdog = ShutdownWatchdog(seconds: shutdownTimeout + 5, logger: logger)
        defer {
            watchdog.cancel()
            dumper?.cancel()
            exporter?.write()
        }
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

/// Ends the process when a graceful shutdown takes longer than it may: a statement stuck in libpq on a frozen server
/// does not return to a cancelled task, so SIGINT/SIGTERM start this clock too, and when it runs out the process
/// exits 1 with a message (what was delivered and not acknowledged is replayed by the next run, without duplicates).
final class ShutdownWatchdog {
    private let sources: [any DispatchSourceSignal]

    init(seconds: Double, logger: Logger) {
        sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                    logger.error("the processor did not stop within \(seconds) s of the signal (a server that does not answer?); exiting")
                    FileHandle.standardError.write(Data("pgevents process: did not stop within \(seconds) s of the signal; exiting\n".utf8))
                    exit(1)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

extension ProcessCommand {
    enum LogFormat: String { case text, json }

    /// The options as they apply: each from its flag, else from its environment variable (`PGEVENTS_…`), else its
    /// default; checked once.
    struct Settings {
        var config: String
        var logLevel: Logger.Level
        var logFormat: LogFormat
        var metrics: String?
        /// `--http`'s address, if any.
        var http: (host: String, port: Int)?
        var shutdownTimeout: Double

        init(_ command: ProcessCommand, environment: [String: String]) throws {
            guard let config = command.config ?? environment["PGEVENTS_CONFIG"] else {
                throw ValidationError("no configuration file: give --config or set PGEVENTS_CONFIG")
            }
            self.config = config
            let levelName = command.logLevel ?? environment["PGEVENTS_LOG_LEVEL"] ?? "info"
            guard let level = Logger.Level(rawValue: levelName) else {
                throw ValidationError(
                    "\(command.logLevel == nil ? "PGEVENTS_LOG_LEVEL" : "--log-level") must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not '\(levelName)'"
                )
            }
            logLevel = level
            let formatName = command.logFormat ?? environment["PGEVENTS_LOG_FORMAT"] ?? "text"
            guard let format = LogFormat(rawValue: formatName) else {
                throw ValidationError(
                    "\(command.logFormat == nil ? "PGEVENTS_LOG_FORMAT" : "--log-format") must be text or json, not '\(formatName)'")
            }
            logFormat = format
            metrics = command.metrics ?? environment["PGEVENTS_METRICS"]
            if let address = command.http ?? environment["PGEVENTS_HTTP"], !address.isEmpty {
                guard let parsed = ProcessHTTPService.address(address) else {
                    throw ValidationError(
                        "\(command.http == nil ? "PGEVENTS_HTTP" : "--http") must be HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464; port 0 to 65535), not '\(address)'"
                    )
                }
                http = parsed
            }
            if let seconds = command.shutdownTimeout {
                shutdownTimeout = seconds
            } else if let text = environment["PGEVENTS_SHUTDOWN_TIMEOUT"] {
                guard let seconds = Double(text) else {
                    throw ValidationError("PGEVENTS_SHUTDOWN_TIMEOUT must be a number of seconds, not '\(text)'")
                }
                shutdownTimeout = seconds
            } else {
                shutdownTimeout = 30
            }
            guard shutdownTimeout > 0, shutdownTimeout <= 3_600 else {
                throw ValidationError("the shutdown timeout must be more than 0 and at most 3600 seconds")
            }
        }
    }

    /// A warning for each URL given as an option that carries a password: every user of the machine can read a
    /// process's arguments (`ps`, `/proc/<pid>/cmdline`), so in production the URLs belong in `DATABASE_URL` and
    /// `REDIS_URL`, which only the process's own user (and root) can read.
    static func passwordOnCommandLineWarnings(databaseURLOption postgres: PostgresConfiguration?, redisURLOption redis: RedisConfiguration?)
        -> [String]
    {
        var warnings: [String] = []
        if let postgres, let password = postgres["password"], !password.isEmpty {
            warnings.append(
                "--database-url carries a password, which every user of this machine can read in `ps`; set DATABASE_URL in the environment instead (or use a ~/.pgpass file)"
            )
        }
        if let redis, let password = redis.password, !password.isEmpty {
            warnings.append(
                "--redis-url carries a password, which every user of this machine can read in `ps`; set REDIS_URL in the environment instead"
            )
        }
        return warnings
    }
}

/// Writes the Prometheus text of every metric to a file (replaced atomically) or to standard output.
struct MetricsDump: Sendable {
    let destination: String
    let metrics: ProcessMetrics

    func write() {
        let text = metrics.render()
        if destination == "-" {
            FileHandle.standardOutput.write(Data(text.utf8))
        } else {
            do {
                try text.write(toFile: destination, atomically: true, encoding: .utf8)
            } catch {
                FileHandle.standardError.write(
                    Data("pgevents process: cannot write the metrics to \(destination): \(error.localizedDescription)\n".utf8))
            }
        }
    }
}
