public import Logging
public import PGEventsPostgres
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PgBouncer in front of a ``TemporaryPostgres``: for testing what a connection pooler does to a
/// program (Debian's `pgbouncer` package). Every database of the server is reachable through it; it listens on
/// 127.0.0.1 and trusts its clients (the server behind it does too, over its private socket).
///
/// ```swift
/// try await withTemporaryPgBouncer(in: postgres, poolMode: .transaction) { pooler in
///     let connection = try await PostgresConnection.connect(pooler.configuration(database: database.name))
/// }
/// ```
public final class TemporaryPgBouncer: Sendable {
    /// How the pooler hands server connections to clients (`pool_mode`).
    public enum PoolMode: String, Sendable {
        /// A server connection per client connection, for as long as it is open: sessions work.
        case session
        /// A server connection per transaction: session state (LISTEN, advisory locks, SET) does not stay.
        case transaction
        /// A server connection per statement.
        case statement
    }

    public let port: Int
    public let poolMode: PoolMode
    public let version: String
    let process: ServerProcess
    private let shutDown = OnceFlag()
    private let superuser: String

    private init(port: Int, poolMode: PoolMode, version: String, process: ServerProcess, superuser: String) {
        self.port = port
        self.poolMode = poolMode
        self.version = version
        self.process = process
        self.superuser = superuser
    }

    /// Connection settings for `database` through the pooler, as the server's superuser.
    public func configuration(database: String) -> PostgresConfiguration {
        PostgresConfiguration(parameters: ["host": "127.0.0.1", "port": String(port), "user": superuser, "dbname": database])
    }

    /// The last lines of the pooler's log.
    public func logTail(lines: Int = 25) -> String { process.logTail(lines: lines) }

    /// Starts a pooler in front of `server`, with `poolSize` server connections per database and user.
    public static func start(
        in server: TemporaryPostgres, poolMode: PoolMode, poolSize: Int = 4, logger: Logger = TemporaryPostgres.defaultLogger
    ) async throws -> TemporaryPgBouncer {
        guard
            let executable = findExecutable(environment("PGEVENTS_PGBOUNCER") ?? "pgbouncer")
                ?? ["/usr/sbin/pgbouncer"].first(where: { access($0, X_OK) == 0 })
        else {
            throw HarnessError(
                code: .binaryNotFound,
                message: "no pgbouncer found (looked for PGEVENTS_PGBOUNCER, pgbouncer on PATH, /usr/sbin/pgbouncer)",
                hint: "apt-get install pgbouncer")
        }
        let version = try await ExecutableVersion.of(executable, read: serverVersion)
        let user = try ServerUser.forCurrentProcess()
        let superuser = server.configuration(database: "postgres")["user"] ?? "postgres"
        return try await startOnFreeLoopbackPort("pgbouncer") { port in
            let scratch = try ScratchDirectory.create(kind: "pgbouncer")
            let process = ServerProcess(name: "pgbouncer", scratch: scratch)
            do {
                try scratch.writePrivate("userlist.txt", "\"\(superuser)\" \"\"\n", owner: user)
                try scratch.writePrivate(
                    "pgbouncer.ini",
                    """
                    ; Written by pgevents for a throwaway pooler.
                    [databases]
                    * = host=\(server.socketDirectory) port=\(server.port)
                    [pgbouncer]
                    listen_addr = 127.0.0.1
                    listen_port = \(port)
                    unix_socket_dir =
                    auth_type = trust
                    auth_file = \(scratch.file("userlist.txt"))
                    pool_mode = \(poolMode.rawValue)
                    default_pool_size = \(poolSize)
                    max_client_conn = 500
                    ignore_startup_parameters = extra_float_digits

                    """, owner: user)
            } catch {
                scratch.remove()
                throw error
            }
            let command = (try user?.commandPrefix() ?? []) + [executable, scratch.file("pgbouncer.ini")]
            let pooler = TemporaryPgBouncer(port: port, poolMode: poolMode, version: version, process: process, superuser: superuser)
            do {
                try process.start(command)
                try await pooler.waitUntilReady()
                logger.info(
                    "pgbouncer started", metadata: ["version": "\(version)", "port": "\(port)", "pool_mode": "\(poolMode.rawValue)"])
                return pooler
            } catch {
                process.shutdown()
                throw error
            }
        }
    }

    private func waitUntilReady(timeoutSeconds: Double = 30) async throws {
        let deadline = monotonicSeconds() + timeoutSeconds
        var probe = configuration(database: "postgres")
        probe["connect_timeout"] = "1"
        while true {
            if let termination = process.exitStatus() {
                throw HarnessError(code: .startupFailed, message: "pgbouncer exited during startup (\(termination))", logTail: logTail())
            }
            if PostgresConnection.ping(probe) == .ok { return }
            if monotonicSeconds() > deadline {
                throw HarnessError(
                    code: .startupFailed, message: "pgbouncer did not accept connections within \(timeoutSeconds) s", logTail: logTail())
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Stops the pooler and deletes its directory. Safe to call more than once.
    public func shutdown() async {
        guard shutDown.claim() else { return }
        let process = self.process
        _ = try? await offload { process.shutdown() }
    }

    /// What `pgbouncer --version` names, e.g. `1.18.0`.
    static func serverVersion(_ executable: String) throws -> String {
        let (termination, output) = try ChildProcess.run(executable, ["--version"])
        guard termination == .exited(0), let line = output.split(separator: "\n").first, line.hasPrefix("PgBouncer ") else {
            throw HarnessError(code: .binaryNotFound, message: "\(executable) --version did not report a version: \(output.trimmed())")
        }
        return String(line.dropFirst("PgBouncer ".count))
    }
}

/// Runs `body` with a pooler in front of `server`, and stops it afterwards, whether `body` returns or throws.
public func withTemporaryPgBouncer<T>(
    in server: TemporaryPostgres, poolMode: TemporaryPgBouncer.PoolMode, poolSize: Int = 4,
    logger: Logger = TemporaryPostgres.defaultLogger, _ body: (TemporaryPgBouncer) async throws -> T
) async throws -> T {
    try await withStartedServer(
        try await TemporaryPgBouncer.start(in: server, poolMode: poolMode, poolSize: poolSize, logger: logger),
        shutdown: { await $0.shutdown() }, body)
}
