import ArgumentParser
import Foundation
import Logging
import PGEvents
import PGEventsPostgres
import PGEventsRedis
import PGEventsServe
import ServiceLifecycle

/// `pgevents serve`: the gateway to browsers (WebSocket and SSE, with JWT), until SIGINT/SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "Send the processor's stream entries to browsers over WebSocket (/broadcast) and SSE (/events), with JWT, until SIGINT or SIGTERM.",
        discussion: """
            The database URL may hold {database}, replaced by each token's database claim (relations are checked \
            there, and SQL runs there). With --process, the processor runs in the same process (one binary, as \
            GC2 deploys it); its database is then the URL as given.
            """
    )

    @Option(name: .customLong("config"), help: "The gateway's YAML file (serve.yml).")
    var config: String

    @Option(
        name: .customLong("database-url"), help: "PostgreSQL URL, {database} standing for the token's database (default: $DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("redis-url"), help: "Redis URL (default: $REDIS_URL).")
    var redisURL: String?

    @Option(name: .customLong("process"), help: "Also run the processor with this YAML file, in this process.")
    var process: String?

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
        var logger = Logger(label: "pgevents.serve")
        logger.logLevel = level
        let configuration: ServeConfiguration
        let redis: RedisConfiguration
        var services: [any Service] = []
        do {
            configuration = try ServeConfiguration(contentsOf: config)
            redis = try RedisConfiguration(redisURL)
            _ = try PostgresConfiguration(databaseURL.replacingOccurrences(of: "{database}", with: "postgres"))
            if let process {
                guard !databaseURL.contains("{database}") else {
                    throw ValidationError("--process needs one database: the URL cannot hold {database}")
                }
                let processor = try ProcessorConfiguration(contentsOf: process)
                services.append(
                    EventProcessor(configuration: processor, postgres: try PostgresConfiguration(databaseURL), redis: redis, logger: logger)
                )
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
        let serve: ServeService
        let announcer = logger
        do {
            serve = try await ServeService(configuration: configuration, databaseURL: databaseURL, redis: redis, logger: logger) { port in
                announcer.notice("listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
            }
        } catch {
            throw ValidationError("\(error)")
        }
        services.append(serve)
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
