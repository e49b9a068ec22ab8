import Foundation
public import Logging
public import PGEventsRedis
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway Redis server: `redis-server` on a free port of 127.0.0.1 and a private unix socket, with no
/// persistence; stopped and deleted by `shutdown()`, at process exit, or — after a crash — by the next run.
///
/// Every client must authenticate: the server's password is random, written with the rest of its
/// configuration into `redis.conf` in its scratch directory (mode 0600), and `redis-server` is given that
/// file's path — never the password on its command line, where `ps` would show it to every user. `url`,
/// `configuration` and `unixSocketConfiguration` carry the password.
public final class TemporaryRedis: Sendable {
    /// How to start the server.
    public struct Configuration: Sendable {
        /// The `redis-server` executable; else `PGEVENTS_REDIS_SERVER`, else `redis-server` on `PATH`.
        public var executable: String?
        /// Extra configuration directives, e.g. `["maxmemory": "64mb"]`, written into the server's configuration
        /// file (each value one argument; `requirepass` and the addresses are the harness's).
        public var settings: [String: String]
        /// How long to wait for the server to answer `PING`.
        public var startupTimeoutSeconds: Double
        /// The password clients must give; nil (the default) makes a random one. Servers that talk to each other (a
        /// cluster's nodes, a replica and its primary) share one.
        public var password: String?

        public init(
            executable: String? = nil, settings: [String: String] = [:], startupTimeoutSeconds: Double = 30, password: String? = nil
        ) {
            self.executable = executable
            self.settings = settings
            self.startupTimeoutSeconds = startupTimeoutSeconds
            self.password = password
        }
    }

    /// The TCP port on 127.0.0.1.
    public let port: Int
    /// The server's version, e.g. `7.0.15`.
    public let version: String
    /// The password every client must give (`AUTH`), random per server; a secret: keep it out of logs and
    /// command lines (pass `url` to a child process in its environment, e.g. `REDIS_URL`).
    public let password: String
    let process: ServerProcess
    private let shutDown = OnceFlag()

    /// The scratch directory (socket, log, configuration file).
    public var directory: String { process.scratch.path }
    /// The unix socket.
    public var unixSocketPath: String { directory + "/run/redis.sock" }
    /// The server's configuration file (mode 0600: it holds the password).
    public var configurationFilePath: String { process.scratch.file(Self.configurationFileName) }
    /// `redis://:PASSWORD@127.0.0.1:PORT/0` (with the password: treat it as a secret).
    public var url: String { configuration.urlIncludingSecrets }
    /// Connects over TCP on 127.0.0.1, with the password.
    public var configuration: RedisConfiguration { RedisConfiguration(host: "127.0.0.1", port: port, password: password) }
    /// Connects through the unix socket, with the password (`unix:///…/redis.sock?db=0&password=…` as a URL).
    public var unixSocketConfiguration: RedisConfiguration { RedisConfiguration(unixSocketPath: unixSocketPath, password: password) }
    /// The server log file (mode 0600).
    public var logPath: String { process.logPath }
    /// The server's process id.
    public var pid: Int32? { process.pid }
    /// Whether the server runs: started, not stopped, not exited.
    public var isRunning: Bool { process.pid != nil && process.exitStatus() == nil }

    static let configurationFileName = "redis.conf"

    private init(port: Int, version: String, password: String, process: ServerProcess) {
        self.port = port
        self.version = version
        self.password = password
        self.process = process
    }

    /// Opens a connection to the server.
    public func connect(logger: Logger = RedisConnection.defaultLogger) async throws -> RedisConnection {
        try await RedisConnection.connect(configuration, logger: logger)
    }

    /// The last lines of the server log.
    public func logTail(lines: Int = 25) -> String { process.logTail(lines: lines) }

    /// Starts a server and waits until it answers.
    public static func start(_ configuration: Configuration = Configuration(), logger: Logger = TemporaryPostgres.defaultLogger)
        async throws -> TemporaryRedis
    {
        let executable = try findServer(configuration.executable)
        let version = try await ExecutableVersion.of(executable, read: serverVersion)
        let user = try ServerUser.forCurrentProcess()
        return try await startOnFreeLoopbackPort("redis-server") { port in
            let scratch = try ScratchDirectory.create(kind: "redis")
            let run = scratch.file("run")
            let process = ServerProcess(name: "redis-server", scratch: scratch)
            let server = TemporaryRedis(
                port: port, version: version, password: configuration.password ?? randomHex(bytes: 24), process: process)
            do {
                mkdir(run, 0o700)
                try user?.own(run)
                let text = try Self.configurationFile(
                    port: port, unixSocketPath: server.unixSocketPath, directory: run, password: server.password,
                    settings: configuration.settings)
                // Owned by the server's account when it is another (it must read it), readable by no one else.
                try scratch.writePrivate(Self.configurationFileName, text, owner: user)
            } catch {
                scratch.remove()
                throw error
            }
            // The command line names the file only: `ps` shows every user the arguments, not the file.
            let command = (try user?.commandPrefix() ?? []) + [executable, server.configurationFilePath]
            do {
                try process.start(command)
                try await server.waitUntilReady(timeoutSeconds: configuration.startupTimeoutSeconds)
                logger.info("redis started", metadata: ["version": "\(version)", "port": "\(port)", "directory": "\(scratch.path)"])
                return server
            } catch {
                process.shutdown()
                throw error
            }
        }
    }

    private func waitUntilReady(timeoutSeconds: Double) async throws {
        let deadline = monotonicSeconds() + timeoutSeconds
        var probe = unixSocketConfiguration
        probe.connectTimeout = 1
        while true {
            if let termination = process.exitStatus() {
                throw HarnessError(code: .startupFailed, message: "redis-server exited during startup (\(termination))", logTail: logTail())
            }
            if FileManager.default.fileExists(atPath: unixSocketPath),
                let connection = try? await RedisConnection.connect(probe)
            {
                let reply = try? await connection.command("PING")
                await connection.close()
                if reply == .status("PONG") { return }
            }
            if monotonicSeconds() > deadline {
                throw HarnessError(
                    code: .startupFailed, message: "redis-server did not answer PING within \(timeoutSeconds) s", logTail: logTail())
            }
            try await Task.sleep(for: .milliseconds(3))
        }
    }

    /// Stops the server (`SIGINT`; `SIGQUIT` when `graceful` is false; `SIGKILL` if it lingers), waits `downtime`, and starts it
    /// again on the same port and socket. Without `appendonly` in the settings its data is gone afterwards,
    /// as it would be on a real Redis without persistence.
    public func restart(graceful: Bool = true, downtime: Duration = .zero, timeoutSeconds: Double = 30) async throws {
        if shutDown.isClaimed {
            throw HarnessError(code: .alreadyShutDown, message: "the Redis server on port \(port) was shut down")
        }
        let process = self.process
        let seconds = downtime.inSeconds
        let port = self.port
        try await offload { try process.restart(graceful: graceful, downtimeSeconds: seconds, port: port) }
        try await waitUntilReady(timeoutSeconds: timeoutSeconds)
    }

    /// Stops the server and leaves it stopped (its directory stays until `shutdown`): with `graceful: false` at once
    /// (`SIGQUIT`, then `SIGKILL`), as a crash would — a cluster's replica then takes over its slots.
    public func stop(graceful: Bool = true) async {
        let process = self.process
        _ = try? await offload { process.stopNow(graceful: graceful) }
    }

    /// Stops the server and deletes its directory. Safe to call more than once.
    public func shutdown() async {
        guard shutDown.claim() else { return }
        let process = self.process
        _ = try? await offload { process.shutdown() }
    }

    /// The directives the harness sets; `settings` may not override them.
    static let reservedDirectives: Set<String> = [
        "port", "bind", "protected-mode", "unixsocket", "unixsocketperm", "dir", "daemonize", "logfile", "requirepass", "include",
        "proc-title-template",
    ]

    /// The server's configuration file: loopback and a private socket only, no persistence, the password
    /// required, then `settings` (sorted by name; each value quoted as one argument).
    static func configurationFile(port: Int, unixSocketPath: String, directory: String, password: String, settings: [String: String]) throws
        -> String
    {
        var lines = [
            "# Written by pgevents for a throwaway server; holds its password (mode 0600).",
            "port \(port)",
            "bind 127.0.0.1",
            "protected-mode yes",
            "unixsocket \(quoteDirectiveValue(unixSocketPath))",
            "unixsocketperm 700",
            "dir \(quoteDirectiveValue(directory))",
            "save \"\"",
            "appendonly no",
            "daemonize no",
            "logfile \"\"",
            "requirepass \(quoteDirectiveValue(password))",
            // The title names the configuration file, i.e. the scratch directory: the reaper recognises the
            // server of a dead test process by it (redis-server replaces its command line with this title).
            "proc-title-template \"{title} {listen-addr} {server-mode} {config-file}\"",
        ]
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
            let lowered = name.lowercased()
            guard !name.isEmpty,
                name.unicodeScalars.allSatisfy({
                    $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "-" || $0 == "_")
                })
            else {
                throw HarnessError(
                    code: .invalidInput,
                    message:
                        "TemporaryRedis.Configuration.settings: '\(TextExcerpt.escaped(name))' is not a Redis configuration directive name")
            }
            guard !reservedDirectives.contains(lowered) else {
                throw HarnessError(
                    code: .invalidInput,
                    message: "TemporaryRedis.Configuration.settings: '\(name)' is set by the harness and cannot be changed")
            }
            // A later directive of the same name overrides the default above (save, appendonly).
            lines.append("\(lowered) \(quoteDirectiveValue(value))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `value` as one argument of a Redis configuration line: in double quotes, with `\\`, `"`, control
    /// characters and bytes beyond ASCII escaped (`\\n`, `\\xHH`), as redis-server's own parser reads them.
    static func quoteDirectiveValue(_ value: String) -> String {
        var out = "\""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out += "\\\\"
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\n"): out += "\\n"
            case UInt8(ascii: "\r"): out += "\\r"
            case UInt8(ascii: "\t"): out += "\\t"
            case 0..<0x20, 0x7f...: out += "\\x" + String(byte, radix: 16).leftPadded(to: 2)
            default: out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out + "\""
    }

    static func findServer(_ explicit: String?) throws -> String {
        let name = explicit ?? environment("PGEVENTS_REDIS_SERVER") ?? "redis-server"
        guard let path = findExecutable(name) else {
            throw HarnessError(code: .binaryNotFound, message: "no redis-server found (looked for '\(name)')", hint: HarnessError.setupHint)
        }
        return path
    }

    static func serverVersion(_ executable: String) throws -> String {
        let (termination, output) = try ChildProcess.run(executable, ["--version"])
        // "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=…"
        guard termination == .exited(0), let range = output.firstRange(of: "v=") else {
            throw HarnessError(code: .binaryNotFound, message: "\(executable) --version did not report a version: \(output.trimmed())")
        }
        return String(output[range.upperBound...].prefix { $0.isNumber || $0 == "." })
    }
}

/// Runs `body` with a started Redis server and shuts it down afterwards, whether `body` returns or throws.
public func withTemporaryRedis<T>(
    _ configuration: TemporaryRedis.Configuration = .init(),
    logger: Logger = TemporaryPostgres.defaultLogger,
    _ body: (TemporaryRedis) async throws -> T
) async throws -> T {
    try await withStartedServer(try await TemporaryRedis.start(configuration, logger: logger), shutdown: { await $0.shutdown() }, body)
}
