import PGEventsPostgres
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Fault injection: the failures a LISTEN/NOTIFY client must survive, on demand.
///
/// ```swift
/// let server = try await TemporaryPostgres.start()
/// try await server.terminateBackends(listeningOn: "orders")    // a DBA's pg_terminate_backend
/// try await server.restart(mode: .immediate)                   // a crash and recovery
/// try server.pause()                                           // a frozen server: connections go half-open
/// try server.resume()
/// ```
extension TemporaryPostgres {
    /// How the server is stopped by `restart`.
    public struct ShutdownMode: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// PostgreSQL's fast shutdown (`SIGINT`): backends are terminated, a checkpoint is written.
        public static let fast = Self("fast")
        /// PostgreSQL's immediate shutdown (`SIGQUIT`): everything exits at once, the restart runs crash recovery.
        public static let immediate = Self("immediate")

        /// `fast` or `immediate`.
        public var description: String { name }
    }

    // MARK: Restart

    /// Stops the server and starts it again on the same port, socket directory and data directory; returns
    /// when it accepts connections again. Data is kept (an immediate shutdown is followed by crash recovery).
    ///
    /// Every connection is broken. `pid` changes; `shutdown()` and the cleanup at exit stop the new process.
    /// A paused server is resumed first.
    ///
    /// - Parameters:
    ///   - mode: `.fast` or `.immediate`.
    ///   - downtime: how long the server stays down between stop and start (to test reconnection backoff).
    ///   - timeoutSeconds: how long to wait for the restarted server to accept connections.
    public func restart(mode: ShutdownMode = .fast, downtime: Duration = .zero, timeoutSeconds: Double = 60) async throws {
        if isShutDown {
            throw HarnessError(code: .alreadyShutDown, message: "the server on port \(port) was shut down")
        }
        let started = monotonicSeconds()
        let oldPID = pid
        await closeAdminConnection()
        let process = self.process
        let downtimeSeconds = max(0, downtime.inSeconds)
        let port = self.port
        try await offload { try process.restart(graceful: mode == .fast, downtimeSeconds: downtimeSeconds, port: port) }
        try await waitUntilReady(timeoutSeconds: timeoutSeconds)
        logger.info(
            "postgres restarted",
            metadata: [
                "port": "\(port)", "mode": "\(mode)", "old_pid": "\(oldPID.map(String.init) ?? "none")",
                "pid": "\(pid.map(String.init) ?? "none")",
                "seconds": "\(String(format: "%.3f", monotonicSeconds() - started))",
            ])
    }

    // MARK: Pause

    /// Freezes the server: `SIGSTOP` to the postmaster, then to every process it started (backends,
    /// checkpointer, WAL writer, …). Returns once all of them are stopped.
    ///
    /// Connections stay open but nothing answers — like a half-open TCP connection or a hung host: a blocking
    /// query waits until `resume()`, a new connection waits for its `connect_timeout`. Do not use the
    /// server's own helpers (`execute`, `makeDatabase`, …) while it is paused: they wait too. `shutdown()`
    /// and `restart` resume a paused server first.
    public func pause() async throws {
        guard let pid else {
            throw HarnessError(code: .alreadyShutDown, message: "the server on port \(port) is not running")
        }
        process.setPaused(true)
        let port = self.port
        try await offload {
            // The postmaster first, so that it forks nothing new; then its children, twice to catch a fork in flight.
            kill(pid, SIGSTOP)
            try Self.waitUntilStopped([pid], port: port)
            for _ in 0..<2 {
                let children = childProcesses(of: pid)
                for child in children { kill(child, SIGSTOP) }
                try Self.waitUntilStopped(children, port: port)
            }
        }
        logger.info("postgres paused", metadata: ["port": "\(port)", "pid": "\(pid)"])
    }

    /// Wakes a server frozen by `pause()` (`SIGCONT` to its children, then to the postmaster).
    public func resume() async throws {
        guard let pid else {
            throw HarnessError(code: .alreadyShutDown, message: "the server on port \(port) is not running")
        }
        signalProcessTree(root: pid, SIGCONT)
        process.setPaused(false)
        logger.info("postgres resumed", metadata: ["port": "\(port)", "pid": "\(pid)"])
    }

    /// Whether the server is paused.
    public var isPaused: Bool { process.isPaused }

    private static func waitUntilStopped(_ pids: [Int32], port: Int) throws {
        let deadline = monotonicSeconds() + 5
        for pid in pids {
            // Gone (nil) or a zombie (Z, X) cannot be stopped and needs not be; T and t are stopped.
            while let state = processState(pid), !"ZXTt".contains(state) {
                if monotonicSeconds() > deadline {
                    throw HarnessError(
                        code: .commandFailed, message: "process \(pid) of the server on port \(port) is in state \(state), not stopped")
                }
                usleep(1_000)
            }
        }
    }

    // MARK: Terminating backends

    /// Terminates one backend (`pg_terminate_backend`); returns whether it existed. On PostgreSQL 14 and later,
    /// waits (up to 5 s) until the backend has exited.
    @discardableResult
    public func terminateBackend(pid: Int32) async throws -> Bool {
        try await terminate(pids: [pid]) == 1
    }

    /// Terminates every client backend whose last statement was a `LISTEN` on `channel`; returns how many.
    ///
    /// PostgreSQL shows a session's channels only to that session (`pg_listening_channels()`), so the
    /// listeners are found through `pg_stat_activity.query`, the last statement of each backend: a client that
    /// issued `LISTEN channel` (alone or with other `LISTEN`s in one statement, quoted or not) and has run no
    /// other statement since is found. That is how listening connections are used — `EventListener` sends all
    /// its `LISTEN`s as one statement and nothing after them — but a connection that ran another query after
    /// its `LISTEN` is not found: terminate it by `applicationName` or `pid` instead.
    ///
    /// - Parameter database: only backends connected to this database (any when nil).
    @discardableResult
    public func terminateBackends(listeningOn channel: String, database: String? = nil) async throws -> Int {
        let rows = try await execute(
            """
            SELECT pid, query FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
            \(database.map { "AND datname = \(PostgresIdentifier.literal($0))" } ?? "")
            """)
        var pids: [Int32] = []
        for row in rows {
            let pid = try row.decode(Int32.self, at: 0)
            let query = try row.decode(String?.self, at: 1) ?? ""
            if Self.listenedChannels(in: query).contains(channel) { pids.append(pid) }
        }
        return try await terminate(pids: pids)
    }

    /// Terminates every client backend whose `application_name` is `applicationName`; returns how many.
    @discardableResult
    public func terminateBackends(applicationName: String) async throws -> Int {
        let rows = try await execute(
            """
            SELECT pid FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
            AND application_name = \(PostgresIdentifier.literal(applicationName))
            """)
        return try await terminate(pids: rows.map { try $0.decode(Int32.self, at: 0) })
    }

    private func terminate(pids: [Int32]) async throws -> Int {
        guard !pids.isEmpty else { return 0 }
        // The two-argument form (PostgreSQL 14+) waits until the backend is gone.
        let call = binaries.majorVersion >= 14 ? "pg_terminate_backend(pid, 5000)" : "pg_terminate_backend(pid)"
        let list = pids.map(String.init).joined(separator: ",")
        let result = try await execute("SELECT count(*) FILTER (WHERE \(call)) FROM unnest(ARRAY[\(list)]::int[]) AS pid")
        let count = try result.scalar(Int.self)
        logger.info("postgres backends terminated", metadata: ["port": "\(port)", "pids": "\(list)", "count": "\(count)"])
        return count
    }

    /// The channels named by the `LISTEN` statements in `sql` (unquoted names folded to lower case, as the
    /// server does).
    static func listenedChannels(in sql: String) -> Set<String> {
        var channels = Set<String>()
        var rest = Substring(sql)
        while true {
            rest = rest.drop { $0.isWhitespace || $0 == ";" }
            guard !rest.isEmpty else { return channels }
            let keyword = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(keyword.count)
            if keyword.lowercased() == "listen", rest.first?.isWhitespace == true {
                rest = rest.drop { $0.isWhitespace }
                if rest.first == "\"" {
                    var name = ""
                    rest = rest.dropFirst()
                    while let character = rest.first {
                        rest = rest.dropFirst()
                        if character == "\"" {
                            guard rest.first == "\"" else { break }
                            rest = rest.dropFirst()
                        }
                        name.append(character)
                    }
                    channels.insert(name)
                } else {
                    let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" }
                    if !name.isEmpty { channels.insert(name.lowercased()) }
                    rest = rest.dropFirst(name.count)
                }
            }
            // Skip to the end of this statement (quoted text may hold semicolons).
            var quote: Character?
            while let character = rest.first {
                rest = rest.dropFirst()
                if let open = quote {
                    if character == open { quote = nil }
                } else if character == "'" || character == "\"" {
                    quote = character
                } else if character == ";" {
                    break
                }
            }
        }
    }
}

extension ServerProcess {
    /// Stops the server (`SIGINT` first when `graceful`, else `SIGQUIT`), waits `downtimeSeconds`, and starts
    /// the same command again. The new process replaces the old one everywhere (`pid`, `server.pid`, exit cleanup).
    ///
    /// While it is down, `port` is held by a socket of ours, so that no other server started meanwhile (a
    /// parallel test's, say) can be given it; it is released just before the server starts again.
    func restart(graceful: Bool, downtimeSeconds: Double, port: Int) throws {
        guard let command else {
            throw HarnessError(code: .invalidInput, message: "\(name) was never started, so it cannot be restarted")
        }
        stopNow(graceful: graceful)
        let reservation = reserveLoopbackPort(port)
        if downtimeSeconds > 0 { usleep(UInt32(min(downtimeSeconds, 3600) * 1_000_000)) }
        if let reservation { close(reservation) }
        try start(command)
    }
}

/// Sends `signal` to every child of `root` (PostgreSQL's backends, which put themselves in sessions of their
/// own, so a process-group signal misses them), then to `root`.
func signalProcessTree(root: Int32, _ signal: Int32) {
    for child in childProcesses(of: root) { kill(child, signal) }
    kill(root, signal)
}

/// The processes whose parent is `parent`, from `/proc`.
func childProcesses(of parent: Int32) -> [Int32] {
    guard let directory = opendir("/proc") else { return [] }
    defer { closedir(directory) }
    var children: [Int32] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let pid = Int32(name), let fields = statFields(pid), fields.count > 1, Int32(fields[1]) == parent else { continue }
        children.append(pid)
    }
    return children
}

/// The state letter of a process (`R`, `S`, `T` for stopped, …), nil if it is gone.
func processState(_ pid: Int32) -> Character? {
    statFields(pid)?.first?.first
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, …
func statFields(_ pid: Int32) -> [Substring]? {
    guard let stat = try? readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ")
}
