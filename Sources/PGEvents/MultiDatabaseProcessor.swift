public import Logging
public import PGEventsPostgres
public import PGEventsRedis
public import ServiceLifecycle
import Synchronization

/// One ``EventProcessor`` per database of a server, in one process (`databases:` in `processor.yml`), the way GC2
/// listens on every database of its server: each database has its own cursor (the consumer's row in its journal)
/// and its own key space in Redis, `meta.database` names it in rules and templates, and its delivery's metrics carry a
/// `database` label.
///
/// A database that is down, refuses connections or lacks the journal does not stop the others: its processor is
/// started again with backoff, and each failure is logged with the database's name. With discovery
/// (``ProcessorConfiguration/Databases/discovered(include:exclude:refresh:)``), the server's list of databases is
/// read again every `refresh` seconds: a new database that matches is served, and a dropped one stops.
///
/// A `Service`: on graceful shutdown every database's processor finishes and acknowledges its chunk in flight.
public struct MultiDatabaseProcessor: Service {
    public let configuration: ProcessorConfiguration
    /// The server: its database is where discovery asks; each processor connects to its own database on it.
    public let postgres: PostgresConfiguration
    public let redis: RedisConfiguration
    /// Each database's processor status while it is served, for `pgevents process --http`.
    public let statuses = DatabaseStatuses()
    private let databases: ProcessorConfiguration.Databases
    private let logger: Logger

    public init(configuration: ProcessorConfiguration, postgres: PostgresConfiguration, redis: RedisConfiguration, logger: Logger)
        throws
    {
        guard let databases = configuration.databases else {
            throw ProcessorError(code: .invalidConfiguration, message: "MultiDatabaseProcessor needs 'databases' in the configuration")
        }
        self.configuration = configuration
        self.postgres = postgres
        self.redis = redis
        self.databases = databases
        self.logger = logger
    }

    /// The databases to serve now: the named ones, or those of the server that match the patterns (templates and
    /// databases that allow no connections left out), in name order.
    public func currentDatabases() async throws -> [String] {
        switch databases {
        case .named(let names):
            return names
        case .discovered:
            let names = try await PostgresConnection.withConnection(postgres, logger: logger) { connection in
                try await connection.query(
                    "SELECT datname::text FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"
                ).map { try $0.decode(String.self, at: 0) }
            }
            return names.filter(databases.selects)
        }
    }

    public func run() async throws {
        statuses.setState(.running)
        do {
            try await serveDatabases()
            statuses.setState(.stopped)
        } catch {
            statuses.setState(.failed)
            throw error
        }
    }

    private func serveDatabases() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The databases served, each with the signal that stops its processor.
            var running: [String: StopSignal] = [:]
            var discoveryFailures = 0
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                do {
                    let wanted = try await currentDatabases()
                    discoveryFailures = 0
                    for name in running.keys.sorted() where !wanted.contains(name) {
                        running.removeValue(forKey: name)?.stop()
                        statuses.remove(name)
                        logger.info("database no longer served", metadata: ["database": "\(name)"])
                    }
                    for name in wanted where running[name] == nil {
                        let signal = StopSignal()
                        running[name] = signal
                        group.addTask { await serve(name, until: signal) }
                    }
                    if wanted.isEmpty { logger.warning("no database matches 'databases'", metadata: ["databases": "\(databases)"]) }
                } catch let error where !(error is CancellationError) {
                    discoveryFailures += 1
                    logger.warning(
                        "cannot list the server's databases; the ones served go on",
                        metadata: ["error": "\(error)", "attempt": "\(discoveryFailures)"])
                }
                guard case .discovered(_, _, let refresh) = databases else { break }
                let pause =
                    discoveryFailures > 0
                    ? min(ProcessorConfiguration.duration(refresh), .seconds(5)) : ProcessorConfiguration.duration(refresh)
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
                } catch {
                    break
                }
            }
            // The processors stop on the graceful shutdown (or cancellation) themselves.
            try await group.waitForAll()
        }
    }

    /// Runs the processor of `database` until `signal` stops it or the service stops, starting it again after each
    /// failure (with backoff), so that one database that is down does not stop the others.
    private func serve(_ database: String, until signal: StopSignal) async {
        var logger = logger
        logger[metadataKey: "database"] = "\(database)"
        var server = postgres
        server["dbname"] = database
        let backoff = Backoff(configuration.backoff)
        var attempt = 0
        var lastStatus: ProcessorStatus?
        defer {
            // A database no longer served leaves no status behind (one set after the list dropped it included).
            if signal.isStopped, let lastStatus { statuses.remove(database, ifStill: lastStatus) }
        }
        while !Task.isCancelled, !Task.isShuttingDownGracefully, !signal.isStopped {
            var configured = EventProcessor(configuration: configuration, postgres: server, redis: redis, logger: logger)
            configured.metricDimensions = [("database", database)]
            let processor = configured
            statuses.set(processor.status, for: database)
            lastStatus = processor.status
            let started = ContinuousClock.now
            do {
                logger.info("serving database")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await processor.run() }
                    group.addTask {
                        // A database dropped from the list: end its processor (what it delivered and did not
                        // acknowledge is replayed without duplicates if it comes back).
                        while !signal.isStopped { try await Task.sleep(for: .seconds(1)) }
                        throw CancellationError()
                    }
                    try await group.next()
                    group.cancelAll()
                }
                return
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully || signal.isStopped { return }
                // A processor that ran a while before it failed starts again from the first delay.
                attempt = ContinuousClock.now - started > .seconds(60) ? 1 : attempt + 1
                let delay = backoff.delay(forAttempt: attempt)
                logger.error(
                    "the processor of a database stopped; the other databases go on, and this one is started again",
                    metadata: ["error": "\(error)", "attempt": "\(attempt)", "retry_in": "\(delay)"])
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                } catch {
                    return
                }
            }
        }
    }

    /// Set once a database leaves the list.
    private final class StopSignal: Sendable {
        private let stopped = Atomic<Bool>(false)
        var isStopped: Bool { stopped.load(ordering: .acquiring) }
        func stop() { stopped.store(true, ordering: .releasing) }
    }
}
