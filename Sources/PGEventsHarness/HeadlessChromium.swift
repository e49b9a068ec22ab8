import Foundation
public import Logging
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway headless Chromium for browser tests: `chromium --headless --remote-debugging-port=0` with a
/// user-data directory in its own scratch directory, speaking the DevTools protocol on 127.0.0.1 at
/// `devToolsPort`/`browserPath` (read from the `DevToolsActivePort` file the browser writes).
///
/// It runs in a process group of its own; `shutdown()` ends the whole group (`SIGTERM`, then `SIGKILL`), waits
/// until no process of it is left, and deletes the directory. If this process dies first, the harness's watchdog
/// stops the browser and a later run reaps the directory, as for the servers. When the tests run as root it runs
/// as the servers' unprivileged account. Chromium's own sandbox is off (`--no-sandbox`: it needs user namespaces,
/// which containers seldom allow); it only ever loads the pages a test gives it.
public final class HeadlessChromium: Sendable {
    /// How to start the browser.
    public struct Configuration: Sendable {
        /// The browser; else `PGEVENTS_CHROMIUM`, else `chromium` on `PATH` (Debian's package).
        public var executable: String?
        /// How long to wait for the DevTools endpoint.
        public var startupTimeoutSeconds: Double

        public init(executable: String? = nil, startupTimeoutSeconds: Double = 30) {
            self.executable = executable
            self.startupTimeoutSeconds = startupTimeoutSeconds
        }
    }

    /// The DevTools port on 127.0.0.1.
    public let devToolsPort: Int
    /// The path of the browser's DevTools WebSocket (`/devtools/browser/<id>`).
    public let browserPath: String
    let process: ServerProcess
    private let shutDown = OnceFlag()

    /// The scratch directory (the user-data directory is `profile/` in it, the browser's output `server.log`).
    public var directory: String { process.scratch.path }
    /// The browser's process id (its process group's id too).
    public var pid: Int32? { process.pid }

    private init(devToolsPort: Int, browserPath: String, process: ServerProcess) {
        self.devToolsPort = devToolsPort
        self.browserPath = browserPath
        self.process = process
    }

    /// The last lines of the browser's output.
    public func logTail(lines: Int = 25) -> String { process.logTail(lines: lines) }

    /// Starts a browser and waits until its DevTools endpoint is known.
    public static func start(_ configuration: Configuration = Configuration(), logger: Logger = TemporaryPostgres.defaultLogger)
        async throws -> HeadlessChromium
    {
        let name = configuration.executable ?? environment("PGEVENTS_CHROMIUM") ?? "chromium"
        guard let executable = findExecutable(name) else {
            throw HarnessError(code: .binaryNotFound, message: "no chromium found (looked for '\(name)')", hint: HarnessError.setupHint)
        }
        let user = try ServerUser.forCurrentProcess()
        let scratch = try ScratchDirectory.create(kind: "chromium")
        let profile = scratch.file("profile")
        let home = scratch.file("home")
        for directory in [profile, home] {
            mkdir(directory, 0o700)
            try user?.own(directory)
        }
        let process = ServerProcess(name: "chromium", scratch: scratch)
        // HOME and the XDG directories inside the scratch directory: nothing is written elsewhere.
        let command =
            (try user?.commandPrefix() ?? []) + [
                "/usr/bin/env", "HOME=\(home)", "XDG_CONFIG_HOME=\(home)/.config", "XDG_CACHE_HOME=\(home)/.cache", executable,
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-breakpad", "--mute-audio", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                "--user-data-dir=\(profile)", "about:blank",
            ]
        do {
            try process.start(command)
            let (port, path) = try await waitForDevTools(
                file: profile + "/DevToolsActivePort", process: process, timeoutSeconds: configuration.startupTimeoutSeconds)
            logger.info("chromium started", metadata: ["devtools": "127.0.0.1:\(port)", "directory": "\(scratch.path)"])
            return HeadlessChromium(devToolsPort: port, browserPath: path, process: process)
        } catch {
            let pid = process.pid
            _ = try? await offload {
                if let pid { stopProcessGroup(pid) }
                process.shutdown()
            }
            throw error
        }
    }

    private static func waitForDevTools(file: String, process: ServerProcess, timeoutSeconds: Double) async throws -> (Int, String) {
        let deadline = monotonicSeconds() + timeoutSeconds
        while true {
            if let termination = process.exitStatus() {
                throw HarnessError(
                    code: .startupFailed, message: "chromium exited during startup (\(termination))", logTail: process.logTail())
            }
            // Two lines, "PORT\n/devtools/browser/ID": written once the endpoint listens.
            if let text = try? readFile(file) {
                let lines = text.split(separator: "\n")
                if lines.count >= 2, let port = Int(lines[0]), lines[1].hasPrefix("/devtools/") { return (port, String(lines[1])) }
            }
            if monotonicSeconds() > deadline {
                throw HarnessError(
                    code: .startupFailed, message: "chromium did not open its DevTools port within \(timeoutSeconds) s",
                    logTail: process.logTail())
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Ends the browser's process group, waits until none of it is left, and deletes the directory. Safe to call
    /// more than once.
    public func shutdown() async {
        guard shutDown.claim() else { return }
        let process = self.process
        _ = try? await offload {
            if let pid = process.pid { stopProcessGroup(pid) }
            process.shutdown()
        }
    }
}

/// Sends `SIGTERM` to the process group `group`, then `SIGKILL` to what is left after 5 s, and waits (at most
/// 5 s more) until no process of the group is left. The group's leader is reaped by its `ChildProcess`.
func stopProcessGroup(_ group: Int32) {
    for (signal, seconds) in [(SIGTERM, 5.0), (SIGKILL, 5.0)] {
        guard kill(-group, signal) == 0 else { return }  // ESRCH: nothing left
        let deadline = monotonicSeconds() + seconds
        while monotonicSeconds() < deadline {
            if processGroupMembers(group).allSatisfy({ processState($0) == "Z" }) { return }
            usleep(10_000)
        }
    }
}

/// The processes whose process group is `group`, from `/proc`.
func processGroupMembers(_ group: Int32) -> [Int32] {
    guard let directory = opendir("/proc") else { return [] }
    defer { closedir(directory) }
    var members: [Int32] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        guard let pid = Int32(name), let fields = statFields(pid), fields.count > 2, Int32(fields[2]) == group else { continue }
        members.append(pid)
    }
    return members
}

/// Runs `body` with a started headless Chromium and shuts it down afterwards, whether `body` returns or throws.
public func withHeadlessChromium<T>(
    _ configuration: HeadlessChromium.Configuration = .init(), logger: Logger = TemporaryPostgres.defaultLogger,
    _ body: (HeadlessChromium) async throws -> T
) async throws -> T {
    try await withStartedServer(try await HeadlessChromium.start(configuration, logger: logger), shutdown: { await $0.shutdown() }, body)
}
