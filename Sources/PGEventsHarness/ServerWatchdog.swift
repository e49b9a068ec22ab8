import PGEventsSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A small process that stops a server and removes its scratch directory when the process that started the
/// server dies, however it dies (SIGKILL included).
///
/// `PR_SET_PDEATHSIG` cannot do this: it is cleared when a server is started through a change of user
/// (`setpriv`, when the tests run as root), and it would follow the thread that spawned the server rather than the
/// process. Instead the watchdog (`/bin/sh`, in a process group of its own so that a terminal's Ctrl-C does not
/// reach it) reads one end of a socket pair whose other end only this process holds (close-on-exec, so no other child
/// inherits it). When this process ends, the kernel closes that end, the watchdog's `read` sees end of
/// file, and it sends the server `SIGQUIT` (PostgreSQL's immediate shutdown; Redis exits), then `SIGKILL` after
/// 5 s, and removes the directory. It signals the server only while `/proc/<pid>/stat` still shows the start time
/// the server had, so a reused pid is never signalled (without /proc, as on macOS, it checks the pid alone).
///
/// When the harness stops the server itself, `dismiss()` ends the watchdog (`SIGKILL`; it holds nothing) and
/// closes its end of the socket pair.
final class ServerWatchdog: Sendable {
    /// The watchdog's script: `$1` the server's pid, `$2` its start time (field 22 of /proc/PID/stat; empty where
    /// there is no /proc, and then the pid alone is checked), `$3` the directory.
    static let script = """
        trap '' INT HUP
        if read -r _; then exit 0; fi
        if [ -n "$2" ]; then
            alive() { [ "$(cut -d' ' -f22 /proc/$1/stat 2>/dev/null)" = "$2" ]; }
        else
            alive() { kill -0 "$1" 2>/dev/null; }
        fi
        if alive "$1" "$2"; then
            kill -CONT "$1" 2>/dev/null
            kill -QUIT "$1" 2>/dev/null
            i=0
            while alive "$1" "$2" && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
            if alive "$1" "$2"; then kill -KILL "$1" 2>/dev/null; fi
        fi
        rm -rf -- "$3"
        """

    private let child: ChildProcess
    /// This process's end of the socket pair while the watchdog watches; nil once dismissed.
    private let writeEnd: Mutex<Int32?>

    private init(child: ChildProcess, writeEnd: Int32) {
        self.child = child
        self.writeEnd = Mutex(writeEnd)
    }

    /// The watchdog's pid.
    var pid: Int32 { child.pid }

    /// Starts a watchdog for the server `serverPID`, whose scratch directory is `directory`.
    static func start(serverPID: Int32, directory: String) throws -> ServerWatchdog {
        // Nil when the server has already exited (its start then reports why) or there is no /proc.
        let startTime = ProcessIdentity.startTime(of: serverPID).map(String.init) ?? ""
        // A socket pair rather than pipe(2): it is created close-on-exec at once (pipe2 is not visible to Swift),
        // so a child another thread spawns meanwhile cannot inherit the write end.
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw HarnessError(
                code: .startupFailed, message: "cannot create the socket pair of a server's watchdog",
                underlying: SystemError(call: "socketpair", errno: errno))
        }
        defer { close(fds[0]) }  // the watchdog has its own copy (its standard input)
        do {
            let child = try ChildProcess.spawn(
                "/bin/sh", ["-c", script, "pgevents-watchdog", String(serverPID), startTime, directory],
                standardInput: fds[0])
            return ServerWatchdog(child: child, writeEnd: fds[1])
        } catch {
            close(fds[1])
            throw HarnessError(code: .startupFailed, message: "cannot start the watchdog of a server (/bin/sh)", underlying: error)
        }
    }

    /// Ends the watchdog without it doing anything: the harness has stopped the server itself.
    func dismiss() {
        guard
            let fd = writeEnd.withLock({ fd -> Int32? in
                defer { fd = nil }
                return fd
            })
        else { return }
        child.kill(SIGKILL)
        _ = child.wait()
        close(fd)
    }
}
