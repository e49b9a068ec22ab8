public import Logging
public import PGEventsPostgres
public import PGEventsRedis

/// `pgevents process --check-config`: a configuration file and the servers it names, checked without changing
/// anything (no consumer registered, no slot created), for CI and deploy pipelines.
public enum ConfigurationCheck {
    /// One thing checked.
    public struct Finding: Sendable, Equatable, CustomStringConvertible {
        public var passed: Bool
        public var subject: String
        public var message: String

        public var description: String { "\(passed ? "ok  " : "FAIL") \(subject): \(message)" }
    }

    /// Every check, in order; a check that cannot run because an earlier one failed is left out.
    public static func run(
        _ configuration: ProcessorConfiguration, postgres: PostgresConfiguration, redis: RedisConfiguration, logger: Logger
    ) async -> [Finding] {
        var findings: [Finding] = []
        func record(_ subject: String, _ body: () async throws -> String) async { findings.append(await finding(subject, body)) }
        await record("file") {
            "source \(configuration.source.rawValue), consumer \(configuration.consumer), \(configuration.channels.count) channel(s)"
        }
        if configuration.databases != nil {
            // Each database of `databases:` is checked as one processor would use it, its name before each subject.
            var databases: [String] = []
            await record("databases") {
                databases = try await MultiDatabaseProcessor(configuration: configuration, postgres: postgres, redis: redis, logger: logger)
                    .currentDatabases()
                guard !databases.isEmpty else {
                    throw ProcessorError(code: .invalidConfiguration, message: "no database of the server matches 'databases'")
                }
                return databases.joined(separator: ", ")
            }
            for database in databases {
                var server = postgres
                server["dbname"] = database
                findings += await checkDatabase(
                    configuration, postgres: server, redis: redis, subjectPrefix: "\(database): ", logger: logger)
            }
        } else {
            findings += await checkDatabase(configuration, postgres: postgres, redis: redis, subjectPrefix: "", logger: logger)
        }
        var redisReachable = false
        await record("redis") {
            let servers = try await RedisSink.connect(redis.withProcessorTimeout, logger: logger).closeAfter { sink in
                let servers = try await sink.servers()
                for server in servers { try await server.command("PING") }
                return servers.count
            }
            redisReachable = true
            return "connected to \(redis)" + (redis.isCluster ? " (a cluster of \(servers) primaries)" : "")
        }
        if redisReachable {
            await record("redis eviction") {
                try await RedisEvictionPolicy.check(
                    redis, allowEviction: configuration.allowRedisEviction, backoff: Backoff(configuration.backoff), logger: logger)
                return "maxmemory-policy keeps the processor's keys"
                    + (configuration.allowRedisEviction ? " (or allow_redis_eviction is set)" : "")
            }
        }
        return findings
    }

    /// What `body` found (its message), or why it failed.
    private static func finding(_ subject: String, _ body: () async throws -> String) async -> Finding {
        do {
            return Finding(passed: true, subject: subject, message: try await body())
        } catch {
            return Finding(passed: false, subject: subject, message: "\(error)")
        }
    }

    /// The connection, sessions, source and pipeline of one database.
    private static func checkDatabase(
        _ configuration: ProcessorConfiguration, postgres: PostgresConfiguration, redis: RedisConfiguration, subjectPrefix: String,
        logger: Logger
    ) async -> [Finding] {
        var findings: [Finding] = []
        func record(_ subject: String, _ body: () async throws -> String) async {
            findings.append(await finding(subjectPrefix + subject, body))
        }
        let worker = configuration.workerConnection(postgres: postgres)
        var connection: PostgresConnection?
        await record("postgres") {
            let opened = try await PostgresConnection.connect(worker, logger: logger)
            connection = opened
            return "connected to \(worker) (server \(await opened.serverVersion))"
        }
        guard let connection else { return findings }
        await record("sessions") {
            try await SessionCheck.requireSessions(worker, logger: logger)
            return "each connection has a server session of its own (no transaction pooler)"
        }
        await record("source") { try await checkSource(configuration, on: connection, logger: logger) }
        await record("pipeline") {
            _ = try await EventProcessor(configuration: configuration, postgres: postgres, redis: redis, logger: logger)
                .makePipeline().prepare(on: connection)
            let fetches = configuration.channels.filter { $0.pipeline.fetch != nil }.count
            return fetches == 0 ? "no row lookups" : "\(fetches) row lookup(s): tables and key columns exist"
        }
        await connection.close()
        return findings
    }

    private static func checkSource(_ configuration: ProcessorConfiguration, on connection: PostgresConnection, logger: Logger) async throws
        -> String
    {
        switch configuration.source {
        case .journal:
            try await JournalSource.checkInstalled(on: connection)
            return "the journal is installed"
        case .table:
            guard let table = configuration.table else { return "no table" }
            guard try await connection.query("SELECT to_regproc('pgevents.register_table_consumer') IS NOT NULL").scalar(Bool.self) else {
                throw ProcessorError(
                    code: .journalMissing,
                    message: "the pgevents table source is not installed: apply sql/pgevents/ (001_journal.sql, 002_table_source.sql)")
            }
            let qualified = PostgresIdentifier.quote(schema: table.schema, name: table.name)
            guard
                try await connection.query(
                    "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped",
                    [qualified, table.key]
                ).scalar(Int.self) == 1
            else {
                throw ProcessorError(
                    code: .invalidConfiguration,
                    message: "table \(table.schema).\(table.name) has no column \(table.key) (or does not exist)")
            }
            return "table \(table.schema).\(table.name) and its key \(table.key) exist"
        case .wal:
            guard let wal = configuration.wal else { return "no slot" }
            let state = try await WalSetup.check(
                on: connection, slot: wal.slot, publication: wal.publication, channels: Set(configuration.channels.map(\.name)),
                logger: logger)
            var replication = connection.configuration
            replication["replication"] = "database"
            _ = try await WalSetup.identifySystem(replication, logger: logger)
            return "slot \(wal.slot) (confirmed \(state.confirmed)) and publication \(wal.publication) exist; the role may stream"
        case .notify:
            return "notify-only: nothing to check beyond the connection"
        }
    }
}
