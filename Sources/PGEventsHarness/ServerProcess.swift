import PGEventsSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A server process started by the harness in its own scratch directory: started, registered for cleanup at
/// exit, stopped with escalating signals, and its directory removed.
final class ServerProcess: Sendable {
    let scratch: ScratchDirectory
    let logPath: String
    let name: String
    private let state: Mutex<State>

    private struct State {
        var child: ChildProcess?
        /// Stops the server and removes its directory if this process dies without doing it.
        var watchdog: ServerWatchdog?
        var registration: Int?
        /// The command of the last `start`, for `restart`.
        var command: [String]?
        /// Whether `pause()` stopped the server's processes (`SIGSTOP`) and `resume()` has not woken them.
        var paused = false
    }

    init(name: String, scratch: ScratchDirectory) {
        self.name = name
        self.scratch = scratch
        self.logPath = scratch.file("server.log")
        self.state = Mutex(State())
    }

    /// The running server's pid, if any.
    var pid: Int32? { state.withLock { $0.child?.pid } }

    /// Starts `command` (the first element is the executable), its output appended to the server log (created
    /// mode 0600: it may hold statements and the values in them).
    func start(_ command: [String]) throws {
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(command[0], Array(command.dropFirst()), outputPath: logPath, outputMode: 0o600)
        } catch {
            throw HarnessError(code: .startupFailed, message: "cannot start \(name)", underlying: error)
        }
        try? scratch.write("server.pid", "\(child.pid)")
        let watchdog: ServerWatchdog
        do {
            watchdog = try ServerWatchdog.start(serverPID: child.pid, directory: scratch.path)
        } catch {
            child.kill(SIGKILL)
            _ = child.wait()
            throw error
        }
        let registration = LiveServers.register { [self] in
            self.stopNow(graceful: false)
            self.scratch.remove()
        }
        let previous = state.withLock { state -> Int? in
            defer {
                state.child = child
                state.watchdog = watchdog
                state.registration = registration
                state.command = command
                state.paused = false
            }
            return state.registration
        }
        // A restart starts the server again: one registration is enough.
        if let previous { LiveServers.unregister(previous) }
    }

    /// The command of the last `start`.
    var command: [String]? { state.withLock { $0.command } }

    /// Whether the server's processes are stopped by `pause()`.
    var isPaused: Bool { state.withLock { $0.paused } }

    /// Records whether the server is paused; returns the previous value.
    @discardableResult
    func setPaused(_ paused: Bool) -> Bool {
        state.withLock { state in
            defer { state.paused = paused }
            return state.paused
        }
    }

    /// If the server has exited, how; nil while it runs.
    func exitStatus() -> ChildProcess.Termination? {
        guard let child = state.withLock({ $0.child }) else { return nil }
        return child.poll()
    }

    /// The last lines of the server log.
    func logTail(lines: Int = 25) -> String { tailOfFile(logPath, maxLines: lines) }

    /// Stops the server: `SIGINT` (PostgreSQL's fast shutdown; Redis exits too), then `SIGQUIT`, then `SIGKILL`.
    /// Waits until it has exited. With `graceful: false` it starts at `SIGQUIT` (immediate shutdown).
    @discardableResult
    func stopNow(graceful: Bool = true, timeoutSeconds: Double = 10) -> ChildProcess.Termination? {
        guard
            let (child, paused, watchdog) = state.withLock({ state -> (ChildProcess, Bool, ServerWatchdog?)? in
                defer {
                    state.child = nil
                    state.watchdog = nil
                    state.paused = false
                }
                return state.child.map { ($0, state.paused, state.watchdog) }
            })
        else { return nil }
        // Dismissed once the server is stopped, below: until then, this process dying still stops it.
        defer { watchdog?.dismiss() }
        // A paused server handles no signal but SIGKILL, and its backends would outlive it, still stopped.
        if paused { signalProcessTree(root: child.pid, SIGCONT) }
        let signals: [(Int32, Double)] = (graceful ? [(SIGINT, timeoutSeconds)] : []) + [(SIGQUIT, 5), (SIGKILL, 5)]
        for (signal, seconds) in signals {
            child.kill(signal)
            let deadline = monotonicSeconds() + seconds
            while monotonicSeconds() < deadline {
                if let termination = child.poll() { return termination }
                usleep(2_000)
            }
        }
        return child.poll()
    }

    /// Stops the server, removes its directory and forgets it.
    func shutdown() {
        stopNow()
        let registration = state.withLock { state -> Int? in
            defer { state.registration = nil }
            return state.registration
        }
        if let registration { LiveServers.unregister(registration) }
        scratch.remove()
    }
}

/// Seconds on a monotonic clock.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read the port, close).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else {
        throw HarnessError(code: .startupFailed, message: "cannot create a socket", underlying: SystemError(call: "socket", errno: errno))
    }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
            bind(fd, sockaddrPointer, length) == 0 && getsockname(fd, sockaddrPointer, &length) == 0
        }
    }
    guard bound else {
        throw HarnessError(
            code: .startupFailed, message: "cannot find a free port on 127.0.0.1", underlying: SystemError(call: "bind", errno: errno))
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Starts a server on a free loopback port. `launch` starts it on the port it is given and cleans up after itself
/// when it throws. Another process may take the port between the probe and the server's bind: a start that failed
/// for that reason (the server's log says so) is tried again on another port, up to `attempts` times.
func startOnFreeLoopbackPort<Server>(_ name: String, attempts: Int = 5, _ launch: (Int) async throws -> Server) async throws -> Server {
    var lastError: HarnessError?
    for _ in 0..<attempts {
        do {
            return try await launch(try freeLoopbackPort())
        } catch let error as HarnessError where error.isAddressInUse {
            lastError = error
        }
    }
    throw lastError ?? HarnessError(code: .startupFailed, message: "no free port found for \(name)")
}

extension HarnessError {
    /// The server's log says it could not bind its port.
    var isAddressInUse: Bool {
        guard let logTail else { return false }
        return logTail.contains("Address already in use") || logTail.contains("could not bind")
    }
}

/// Binds a socket to 127.0.0.1:`port` (nothing listens on it) so that the kernel hands the port to no one else;
/// returns its descriptor, or nil if the port cannot be bound. Close it to release the port.
func reserveLoopbackPort(_ port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard bound else {
        close(fd)
        return nil
    }
    return fd
}
