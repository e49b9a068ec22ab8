import ArgumentParser
import Foundation
import Logging
import PGEvents
import PGEventsPostgres
import PGEventsRedis
import ServiceLifecycle

/// `pgevents process`: the reference processor, until SIGINT/SIGTERM.
struct ProcessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Deliver journal events to Redis lists, without losing any, until SIGINT or SIGTERM.",
        discussion: """
            Install the journal first (psql -f sql/pgevents/001_journal.sql) and attach its trigger to your \
            tables. On SIGINT/SIGTERM the processor finishes and acknowledges the chunk in flight, then exits 0.
            """
    )

    @Option(name: .customLong("config"), help: "The processor's YAML file.")
    var config: String

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL or conninfo (default: $DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("redis-url"), help: "Redis URL (default: $REDIS_URL).")
    var redisURL: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let environment = ProcessInfo.processInfo.environment
        guard let databaseURL = databaseURL ?? environment["DATABASE_URL"] else {
            throw ValidationError("no database: give --database-url or set DATABASE_URL")
        }
        guard let redisURL = redisURL ?? environment["REDIS_URL"] else {
            throw ValidationError("no Redis: give --redis-url or set REDIS_URL")
        }
        let configuration: ProcessorConfiguration
        let postgres: PostgresConfiguration
        let redis: RedisConfiguration
        do {
            configuration = try ProcessorConfiguration(contentsOf: config)
            postgres = try PostgresConfiguration(databaseURL)
            redis = try RedisConfiguration(redisURL)
        } catch {
            throw ValidationError("\(error)")
        }
        var logger = Logger(label: "pgevents.process")
        logger.logLevel = level
        let processor: any Service = switch configuration.source {
        case .journal, .table: JournalProcessor(configuration: configuration, postgres: postgres, redis: redis, logger: logger)
        case .notify: NotifyProcessor(configuration: configuration, postgres: postgres, redis: redis, logger: logger)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: processor)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}
