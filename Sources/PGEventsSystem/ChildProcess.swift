#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn`, with its standard output and error sent to a file.
///
/// Foundation's `Process` reaps children on its own and cannot start a child in a new process group; the
/// harness needs both under its control (servers must not receive the terminal's Ctrl-C before the harness
/// has shut them down, and only the harness may `waitpid` them).
public struct ChildProcess: Sendable {
    /// How a finished child ended.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): "exit code \(code)"
            case .signalled(let signal): "signal \(signal)"
            }
        }
    }

    /// The child's process id.
    public let pid: Int32
    /// The executable that was started.
    public let executable: String

    /// Starts `executable` with `arguments` (not including argv[0]).
    ///
    /// - Parameters:
    ///   - outputPath: file that receives standard output and error (appended to); `/dev/null` when nil.
    ///   - outputMode: the permissions of `outputPath` if it is created (0600 for a server log, which may hold
    ///     statements and their values).
    ///   - environment: the child's environment; the parent's when nil.
    ///   - newProcessGroup: put the child in a process group of its own.
    ///   - standardInput: a descriptor the child reads as its standard input (a pipe's read end); `/dev/null` when nil.
    public static func spawn(
        _ executable: String,
        _ arguments: [String],
        outputPath: String? = nil,
        outputMode: UInt32 = 0o644,
        environment: [String: String]? = nil,
        newProcessGroup: Bool = true,
        standardInput: Int32? = nil
    ) throws(SystemError) -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let standardInput {
            posix_spawn_file_actions_adddup2(&actions, standardInput, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, mode_t(outputMode))
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        // The child starts with an empty signal mask and default handlers, whatever the parent installed.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGPIPE, SIGUSR1, SIGUSR2, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let env: [UnsafeMutablePointer<CChar>?]
        if let environment {
            env = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        } else {
            var inherited: [UnsafeMutablePointer<CChar>?] = []
            if var cursor = Optional(environ) {
                while let entry = cursor.pointee {
                    inherited.append(strdup(entry))
                    cursor += 1
                }
            }
            env = inherited + [nil]
        }
        defer { for entry in env { free(entry) } }

        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { argvBuffer in
            env.withUnsafeBufferPointer { envBuffer in
                posix_spawn(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, envBuffer.baseAddress!)
            }
        }
        if rc != 0 { throw SystemError(call: "posix_spawn", subject: executable, errno: rc) }
        return ChildProcess(pid: pid, executable: executable)
    }

    /// The child's termination, if it has ended; reaps it. Returns nil while it runs.
    public func poll() -> Termination? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        guard rc == pid else { return rc < 0 && errno == ECHILD ? .exited(-1) : nil }
        return Self.termination(status)
    }

    /// Blocks until the child ends and reaps it.
    public func wait() -> Termination {
        var status: Int32 = 0
        while true {
            let rc = waitpid(pid, &status, 0)
            if rc == pid { return Self.termination(status) }
            if rc < 0 && errno != EINTR { return .exited(-1) }
        }
    }

    /// Sends `signal` to the child.
    public func kill(_ signal: Int32) {
        _ = Glibc.kill(pid, signal)
    }

    private static func termination(_ status: Int32) -> Termination {
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros, not imported.
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signalled(signal)
    }

    /// Runs `executable` to completion and returns its termination and combined output.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil
    ) throws(SystemError) -> (termination: Termination, output: String) {
        var template = Array("\(temporaryDirectory)/pgevents-out-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 { throw SystemError(call: "mkstemp", subject: temporaryDirectory, errno: errno) }
        close(fd)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        let child = try spawn(executable, arguments, outputPath: path, environment: environment, newProcessGroup: false)
        let termination = child.wait()
        return (termination, (try? readFile(path)) ?? "")
    }
}

/// `$TMPDIR`, or `/tmp`.
public var temporaryDirectory: String {
    if let path = environment("TMPDIR") {
        return path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
    }
    return "/tmp"
}

/// Reads a whole file as UTF-8 (invalid bytes repaired).
public func readFile(_ path: String) throws(SystemError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw SystemError(call: "open", subject: path, errno: errno) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SystemError(call: "read", subject: path, errno: errno)
        }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The last `maxLines` lines of a file (for server logs in error messages); empty if it cannot be read.
public func tailOfFile(_ path: String, maxLines: Int = 20) -> String {
    guard let text = try? readFile(path) else { return "" }
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(maxLines + 1).joined(separator: "\n")
        .trimmedTrailing()
}

extension StringProtocol {
    // Index walks, in time linear in the white space: `dropLast()` on a Substring counts the whole text each
    // time, which made a statement ending in 64,000 tabs take 30 s to trim (found by fuzzing SQLScript).

    /// The text without leading and trailing white space (spaces, tabs, newlines).
    public func trimmed() -> String {
        guard let last = lastIndex(where: { !$0.isWhitespace }), let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }

    /// The text without trailing white space.
    public func trimmedTrailing() -> String {
        guard let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[...last])
    }
}
