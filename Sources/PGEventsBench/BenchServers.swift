import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis

/// A database a scenario runs in: made fresh for it (journal migrations and the bench's tables applied),
/// dropped afterwards.
struct BenchDatabase: Sendable {
    let configuration: PostgresConfiguration
    let drop: @Sendable () async throws -> Void

    func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(configuration)
    }
}

/// The servers scenarios run on: throwaway ones started here, or the user's (`--database-url`,
/// `--redis-url`), where the bench never touches existing data: every scenario gets a scratch database of
/// its own (`CREATE DATABASE pgevents_bench_<random>`, dropped afterwards; the role needs `CREATEDB`), and
/// every Redis key it writes is under `pgevents-bench:<run id>:` (deleted afterwards).
final class BenchServers: Sendable {
    let postgresVersion: String
    let redisVersion: String
    let redis: RedisConfiguration
    /// Prefix of every Redis key of this run.
    let keyPrefix: String
    let isThrowaway: Bool
    private let temporaryPostgres: TemporaryPostgres?
    private let temporaryRedis: TemporaryRedis?
    private let externalPostgres: PostgresConfiguration?
    private let setupSQL: String
    private let migrations: MigrationSet
    private let userMigrations: MigrationSet?

    private init(
        postgresVersion: String, redisVersion: String, redis: RedisConfiguration, temporaryPostgres: TemporaryPostgres?,
        temporaryRedis: TemporaryRedis?, externalPostgres: PostgresConfiguration?, setupSQL: String, migrations: MigrationSet,
        userMigrations: MigrationSet?
    ) {
        self.postgresVersion = postgresVersion
        self.redisVersion = redisVersion
        self.redis = redis
        self.temporaryPostgres = temporaryPostgres
        self.temporaryRedis = temporaryRedis
        self.externalPostgres = externalPostgres
        self.setupSQL = setupSQL
        self.migrations = migrations
        self.userMigrations = userMigrations
        self.isThrowaway = externalPostgres == nil
        keyPrefix = "pgevents-bench:\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Starts throwaway servers for what is not given; applies `migrations`, `setupSQL` and then `userMigrations`
    /// (the user's own, `--migrations`) to every scenario database.
    static func start(
        databaseURL: String?, redisURL: String?, migrations: MigrationSet, setupSQL: String, userMigrations: MigrationSet? = nil,
        logger: Logger
    ) async throws -> BenchServers {
        var temporaryPostgres: TemporaryPostgres?
        var temporaryRedis: TemporaryRedis?
        do {
            let externalPostgres = try databaseURL.map { url in try PostgresConfiguration(url) }
            let postgresVersion: String
            if let externalPostgres {
                postgresVersion =
                    try await PostgresConnection.withConnection(externalPostgres) { connection in
                        try await connection.query("SHOW server_version").scalar(String.self)
                    }.split(separator: " ").first.map(String.init) ?? "?"
            } else {
                let server = try await TemporaryPostgres.start(logger: logger)
                temporaryPostgres = server
                try await server.makeTemplate(named: "pgevents_scenarios") { connection in
                    try await prepare(connection, migrations: migrations, setupSQL: setupSQL, userMigrations: userMigrations)
                }
                postgresVersion = server.binaries.version
            }
            let redis: RedisConfiguration
            let redisVersion: String
            if let redisURL {
                redis = try RedisConfiguration(redisURL)
                let connection = try await RedisConnection.connect(redis)
                let info = try await connection.command("INFO", "server").string ?? ""
                await connection.close()
                redisVersion =
                    info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }
                    .map { String($0.dropFirst("redis_version:".count)) } ?? "?"
            } else {
                let server = try await TemporaryRedis.start(logger: logger)
                temporaryRedis = server
                redis = server.configuration
                redisVersion = server.version
            }
            return BenchServers(
                postgresVersion: postgresVersion, redisVersion: redisVersion, redis: redis, temporaryPostgres: temporaryPostgres,
                temporaryRedis: temporaryRedis, externalPostgres: externalPostgres, setupSQL: setupSQL, migrations: migrations,
                userMigrations: userMigrations)
        } catch {
            await temporaryRedis?.shutdown()
            await temporaryPostgres?.shutdown()
            throw error
        }
    }

    /// A fresh database with the journal and the bench's tables.
    func makeDatabase() async throws -> BenchDatabase {
        if let temporaryPostgres {
            let database = try await temporaryPostgres.makeDatabase(template: "pgevents_scenarios")
            return BenchDatabase(configuration: database.configuration, drop: { try await database.drop() })
        }
        guard let externalPostgres else { throw HarnessError(code: .invalidInput, message: "pgevents bench: no PostgreSQL server") }
        let name = "pgevents_bench_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let admin = try await PostgresConnection.connect(externalPostgres)
        do {
            try await admin.execute("CREATE DATABASE \(PostgresIdentifier.quote(name))")
        } catch {
            await admin.close()
            throw HarnessError(
                code: .invalidInput,
                message: "pgevents bench: could not create the scratch database \(name) on \(externalPostgres): \(error)",
                hint: "the bench runs in a scratch database of its own; the role of --database-url needs CREATEDB")
        }
        await admin.close()
        var parameters = Dictionary(externalPostgres.parameters.map { ($0.keyword, $0.value) }, uniquingKeysWith: { $1 })
        parameters["dbname"] = name
        let configuration = PostgresConfiguration(parameters: parameters)
        let drop: @Sendable () async throws -> Void = {
            try await PostgresConnection.withConnection(externalPostgres) { admin in
                _ = try await admin.execute("DROP DATABASE IF EXISTS \(PostgresIdentifier.quote(name)) WITH (FORCE)")
            }
        }
        do {
            try await PostgresConnection.withConnection(configuration) { connection in
                try await Self.prepare(connection, migrations: migrations, setupSQL: setupSQL, userMigrations: userMigrations)
            }
        } catch {
            try? await drop()
            throw error
        }
        return BenchDatabase(configuration: configuration, drop: drop)
    }

    /// The journal, the bench's tables, the user's migrations. A user migration that fails is bad input, named by file and line.
    private static func prepare(_ connection: PostgresConnection, migrations: MigrationSet, setupSQL: String, userMigrations: MigrationSet?)
        async throws
    {
        _ = try await migrations.apply(to: connection)
        if !setupSQL.isEmpty { try await connection.execute(setupSQL) }
        guard let userMigrations else { return }
        do {
            _ = try await userMigrations.apply(to: connection)
        } catch let error as MigrationError {
            throw HarnessError(
                code: .migrationFailed, message: "pgevents bench: your migrations do not apply (after the journal): \(error)",
                hint: "pgevents check \(userMigrations.directory) says what is wrong with them")
        }
    }

    /// Deletes this run's Redis keys (lists and idempotency keys).
    func cleanRedis() async {
        guard let connection = try? await RedisConnection.connect(redis) else { return }
        var cursor = "0"
        repeat {
            guard
                let reply = try? await connection.command(
                    "SCAN", RedisArgument(cursor), "MATCH", RedisArgument(keyPrefix + ":*"), "COUNT", "1000"),
                let parts = reply.array, parts.count == 2
            else { break }
            cursor = parts[0].string ?? "0"
            let keys = parts[1].array?.compactMap(\.string) ?? []
            if !keys.isEmpty { _ = try? await connection.command([RedisArgument("UNLINK")] + keys.map { RedisArgument($0) }) }
        } while cursor != "0"
        await connection.close()
    }

    func shutdown() async {
        if temporaryRedis == nil { await cleanRedis() }
        await temporaryRedis?.shutdown()
        await temporaryPostgres?.shutdown()
    }
}
