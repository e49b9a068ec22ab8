import Foundation
public import Logging
public import PGEventsPostgres
import PGEventsSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server: its own data directory, a private unix socket and a free port on
/// 127.0.0.1, `wal_level=logical`; stopped and deleted by `shutdown()`, at process exit, or — if the
/// process crashed — by the next run.
///
/// ```swift
/// let server = try await TemporaryPostgres.start()
/// try await server.makeTemplate { try await $0.execute(schema) }
/// let database = try await server.makeDatabase()      // a fresh clone, in milliseconds
/// let connection = try await database.connect()
/// …
/// try await server.shutdown()
/// ```
///
/// Local connections (the socket) need no password; TCP connections on 127.0.0.1 need the superuser's
/// password, which is random per server and part of `url`.
public final class TemporaryPostgres: Sendable {
    /// The installation the server runs from (and its version).
    public let binaries: PostgresBinaries
    /// The directory holding `data/`, `socket/` and `server.log`.
    public var directory: String { process.scratch.path }
    /// The data directory.
    public var dataDirectory: String { directory + "/data" }
    /// The directory of the server's unix socket.
    public var socketDirectory: String { directory + "/socket" }
    /// The server's log file.
    public var logPath: String { process.logPath }
    /// The TCP port on 127.0.0.1.
    public let port: Int
    /// The superuser's name.
    public let superuser: String
    /// The superuser's password (needed on TCP only).
    public let password: String
    /// The account the server runs as when this process is root.
    let user: ServerUser?
    let process: ServerProcess
    let logger: Logger
    private let state = Mutex(State())
    private let admin: AdminConnection

    private struct State {
        var isShutDown = false
        var databaseCounter = 0
        var defaultTemplate: String?
    }

    private init(
        binaries: PostgresBinaries, process: ServerProcess, port: Int, superuser: String, password: String, user: ServerUser?,
        logger: Logger
    ) {
        self.binaries = binaries
        self.process = process
        self.port = port
        self.superuser = superuser
        self.password = password
        self.user = user
        self.logger = logger
        self.admin = AdminConnection()
    }

    /// The server's process id.
    public var pid: Int32? { process.pid }

    /// A libpq configuration that reaches `database` through the private socket (no password needed).
    public func configuration(database: String = "postgres") -> PostgresConfiguration {
        PostgresConfiguration(parameters: ["host": socketDirectory, "port": String(port), "user": superuser, "dbname": database])
    }

    /// A `postgresql://` URL for TCP on 127.0.0.1, with the password (treat it as a secret).
    public func url(database: String = "postgres") -> String {
        "postgresql://\(superuser):\(password)@127.0.0.1:\(port)/\(database)"
    }

    /// The URL of the `postgres` database (TCP, with password).
    public var url: String { url() }

    /// Opens a connection to `database` through the private socket.
    public func connect(database: String = "postgres", logger: Logger? = nil) async throws -> PostgresConnection {
        try await PostgresConnection.connect(configuration(database: database), logger: logger ?? self.logger)
    }

    /// The last lines of the server log.
    public func logTail(lines: Int = 25) -> String { process.logTail(lines: lines) }

    // MARK: Start

    /// Starts a server and waits until it accepts connections.
    public static func start(_ configuration: Configuration = Configuration(), logger: Logger = TemporaryPostgres.defaultLogger)
        async throws -> TemporaryPostgres
    {
        let started = monotonicSeconds()
        let binaries = try PostgresBinaries.find(explicit: configuration.binDirectory)
        let user = try ServerUser.forCurrentProcess()
        let scratch = try ScratchDirectory.create(kind: "pg")
        do {
            try await offload {
                try prepareDataDirectory(scratch: scratch, binaries: binaries, user: user, configuration: configuration, logger: logger)
            }
            let socketDirectory = scratch.file("socket")
            mkdir(socketDirectory, 0o700)
            try user?.own(socketDirectory)
            return try await startOnFreeLoopbackPort("postgres") { port in
                let process = ServerProcess(name: "postgres", scratch: scratch)
                let password = randomHex(bytes: 16)
                let server = TemporaryPostgres(
                    binaries: binaries, process: process, port: port, superuser: configuration.superuser, password: password, user: user,
                    logger: logger)
                do {
                    try await server.launch(configuration)
                    logger.info(
                        "postgres started",
                        metadata: [
                            "version": "\(binaries.version)", "port": "\(port)", "directory": "\(scratch.path)",
                            "seconds": "\(String(format: "%.3f", monotonicSeconds() - started))",
                        ])
                    return server
                } catch let error as HarnessError where error.isAddressInUse {
                    // The data directory stays for the next port.
                    process.stopNow(graceful: false)
                    try? FileManager.default.removeItem(atPath: process.logPath)
                    throw error
                } catch {
                    process.shutdown()
                    throw error
                }
            }
        } catch {
            scratch.remove()
            throw error
        }
    }

    /// A logger that discards everything.
    public static let defaultLogger = Logger(label: "pgevents.harness", factory: { _ in SwiftLogNoOpLogHandler() })

    private func launch(_ configuration: Configuration) async throws {
        var command = try user?.commandPrefix() ?? []
        command += [binaries.program("postgres"), "-D", dataDirectory]
        for (name, value) in configuration.serverSettings(port: port, socketDirectory: socketDirectory) {
            command += ["-c", "\(name)=\(value)"]
        }
        try process.start(command)
        try await waitUntilReady(timeoutSeconds: configuration.startupTimeoutSeconds)
        // TCP needs the password; it is set per server, so a cached data directory holds none.
        try await execute("ALTER ROLE \(PostgresIdentifier.quote(superuser)) PASSWORD \(PostgresIdentifier.literal(password))")
    }

    func waitUntilReady(timeoutSeconds: Double) async throws {
        let deadline = monotonicSeconds() + timeoutSeconds
        let probe = configuration()
        while true {
            if let termination = process.exitStatus() {
                throw HarnessError(code: .startupFailed, message: "postgres exited during startup (\(termination))", logTail: logTail())
            }
            switch PostgresConnection.ping(probe) {
            case .ok: return
            case .noAttempt:
                throw HarnessError(code: .startupFailed, message: "cannot ping the server: invalid parameters \(probe)", logTail: logTail())
            case .rejecting, .noResponse: break
            }
            if monotonicSeconds() > deadline {
                throw HarnessError(
                    code: .startupFailed, message: "postgres did not accept connections within \(timeoutSeconds) s", logTail: logTail())
            }
            try await Task.sleep(for: .milliseconds(3))
        }
    }

    // MARK: Shutdown

    /// Stops the server (fast shutdown) and deletes its directory. Safe to call more than once.
    public func shutdown() async {
        let first = state.withLock { state -> Bool in
            defer { state.isShutDown = true }
            return !state.isShutDown
        }
        guard first else { return }
        await admin.close()
        let process = self.process
        _ = try? await offload { process.shutdown() }
        logger.info("postgres stopped", metadata: ["port": "\(port)"])
    }

    var isShutDown: Bool { state.withLock { $0.isShutDown } }

    /// Closes the harness's own connection (before a restart); the next `execute` opens a new one.
    func closeAdminConnection() async {
        await admin.close()
    }

    // MARK: Databases

    /// Creates a database `name` by running `setup` on it, and (with `asDefault`) makes it the template
    /// `makeDatabase()` clones.
    ///
    /// Apply migrations here once; every test then gets its own copy in milliseconds. The template refuses
    /// connections afterwards (a template with open connections cannot be cloned).
    public func makeTemplate(
        named name: String = "pgevents_template", asDefault: Bool = true, _ setup: (PostgresConnection) async throws -> Void
    ) async throws {
        try await admin.execute("CREATE DATABASE \(PostgresIdentifier.quote(name))", server: self)
        try await PostgresConnection.withConnection(configuration(database: name), logger: logger, setup)
        try await admin.execute(
            "ALTER DATABASE \(PostgresIdentifier.quote(name)) WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", server: self)
        if asDefault { state.withLock { $0.defaultTemplate = name } }
    }

    /// Creates a fresh, empty-of-connections database cloned from `template` (default: the last
    /// `makeTemplate`, else `template1`).
    public func makeDatabase(template: String? = nil) async throws -> TemporaryDatabase {
        let (name, source) = state.withLock { state -> (String, String) in
            state.databaseCounter += 1
            return ("test_\(state.databaseCounter)", template ?? state.defaultTemplate ?? "template1")
        }
        // FILE_COPY (PostgreSQL 15+) copies the template's files; the default, WAL_LOG, writes the whole
        // template into the WAL, several times slower for a small test database.
        let strategy = binaries.majorVersion >= 15 ? " STRATEGY FILE_COPY" : ""
        try await admin.execute(
            "CREATE DATABASE \(PostgresIdentifier.quote(name)) TEMPLATE \(PostgresIdentifier.quote(source))\(strategy)", server: self)
        return TemporaryDatabase(server: self, name: name)
    }

    /// Drops a database, disconnecting whoever is still connected to it.
    public func dropDatabase(_ name: String) async throws {
        try await admin.execute("DROP DATABASE IF EXISTS \(PostgresIdentifier.quote(name)) WITH (FORCE)", server: self)
    }

    /// Runs one statement on the `postgres` database through the harness's own connection.
    @discardableResult
    public func execute(_ sql: String) async throws -> PostgresResult {
        try await admin.execute(sql, server: self)
    }
}

/// The harness's own connection to the `postgres` database, opened on first use and reopened if lost.
private actor AdminConnection {
    private var connection: PostgresConnection?

    @discardableResult
    func execute(_ sql: String, server: TemporaryPostgres) async throws -> PostgresResult {
        if server.isShutDown {
            throw HarnessError(code: .alreadyShutDown, message: "the server on port \(server.port) was shut down")
        }
        if let connection, connection.isUsable {
            return try await connection.execute(sql)
        }
        let fresh = try await server.connect()
        connection = fresh
        return try await fresh.execute(sql)
    }

    func close() async {
        await connection?.close()
        connection = nil
    }
}

/// Runs `body` with a started server and shuts it down afterwards, whether `body` returns or throws.
public func withTemporaryPostgres<T>(
    _ configuration: TemporaryPostgres.Configuration = .init(),
    logger: Logger = TemporaryPostgres.defaultLogger,
    _ body: (TemporaryPostgres) async throws -> T
) async throws -> T {
    try await withStartedServer(try await TemporaryPostgres.start(configuration, logger: logger), shutdown: { await $0.shutdown() }, body)
}

/// Runs `body` with `server`, then `shutdown`, whether `body` returns or throws.
func withStartedServer<Server, T>(
    _ server: Server, shutdown: (Server) async -> Void, _ body: (Server) async throws -> T
) async throws -> T {
    do {
        let value = try await body(server)
        await shutdown(server)
        return value
    } catch {
        await shutdown(server)
        throw error
    }
}

/// `bytes` random bytes as lowercase hex.
func randomHex(bytes: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<bytes).map { _ in String(UInt8.random(in: 0...255, using: &generator), radix: 16).leftPadded(to: 2) }.joined()
}
