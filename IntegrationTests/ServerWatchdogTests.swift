import Foundation
import PGEventsHarness
import PGEventsSystem
import Testing

/// A process that uses the harness and is killed outright leaves no server and no scratch directory behind: each
/// server's watchdog sees its pipe close and stops it. Waits are bounded polls; nothing is timed.
@Suite("Server watchdogs")
struct ServerWatchdogTests {
    /// Whether `pid` is gone (or a zombie that no one has reaped yet, which runs nothing).
    static func isGone(_ pid: Int32) -> Bool {
        guard let stat = try? readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// Polls `condition` every 50 ms until it holds; throws a `TimeoutError` after `seconds`.
    static func eventually(_ seconds: Double, _ what: String, _ condition: @escaping @Sendable () -> Bool) async throws {
        try await withTimeout(seconds) {
            while !condition() { try await Task.sleep(for: .milliseconds(50)) }
        }
    }

    @Test("pgevents up killed with SIGKILL: its PostgreSQL and Redis stop and their directories are removed")
    func sigkill() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let output = temporaryDirectory + "/pgevents-watchdog-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt"
        defer { unlink(output) }
        let child = try ChildProcess.spawn(
            executable, ["up"], outputPath: output, outputMode: 0o600, environment: ProcessInfo.processInfo.environment)
        var killed = false
        defer {
            if !killed {
                child.kill(SIGKILL)
                _ = child.wait()  // after SIGKILL: short
            }
        }
        try await Self.eventually(120, "pgevents up to start its servers") {
            ((try? readFile(output)) ?? "").contains("Press Ctrl-C to stop.") || child.poll() != nil
        }
        let text = try readFile(output)
        #expect(text.contains("Press Ctrl-C to stop."), "pgevents up did not start: \(text)")
        let postgresDirectory = try #require(
            text.split(separator: "\n").first { $0.hasPrefix("directory: ") }.map { String($0.dropFirst("directory: ".count)) }, "\(text)")
        let socket = try #require(
            text.split(whereSeparator: \.isWhitespace).first { $0.hasSuffix("/run/redis.sock") }.map(String.init), "\(text)")
        let redisDirectory = URL(fileURLWithPath: socket).deletingLastPathComponent().deletingLastPathComponent().path
        let directories = [postgresDirectory, redisDirectory]
        let pids = try directories.map { directory in
            try #require(Int32(try readFile(directory + "/server.pid").trimmed()), "no server.pid in \(directory)")
        }
        #expect(pids.allSatisfy { !Self.isGone($0) })
        let root = Self.documentedScratchRoot()
        #expect(
            directories.allSatisfy { $0.hasPrefix(root + "/") }, "\(directories) are not under \(root), where the README says they live")

        child.kill(SIGKILL)
        _ = await child.waitOffPool()
        killed = true
        try await Self.eventually(30, "the watchdogs to stop the servers and remove their directories") {
            pids.allSatisfy(Self.isGone) && directories.allSatisfy { !FileManager.default.fileExists(atPath: $0) }
        }
    }

    @Test("a server stopped by the harness dismisses its watchdog: the directory is the harness's to remove, and no watchdog is left")
    func dismissed() async throws {
        let server = try await TemporaryRedis.start()
        let directory = server.directory
        let watchdogs = Self.watchdogs(for: directory)
        #expect(watchdogs.count == 1, "one watchdog per server, found \(watchdogs)")
        await server.shutdown()
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(watchdogs.allSatisfy(Self.isGone))
    }

    /// Where the README says scratch directories live: `$PGEVENTS_TMPDIR/pgevents-<uid>`, else `/dev/shm/pgevents-<uid>`
    /// when /dev/shm has 2 GiB free, else `$TMPDIR` (or /tmp)`/pgevents-<uid>`.
    static func documentedScratchRoot() -> String {
        let name = "/pgevents-\(geteuid())"
        if let explicit = ProcessInfo.processInfo.environment["PGEVENTS_TMPDIR"] { return explicit + name }
        var info = statvfs()
        if access("/dev/shm", W_OK | X_OK) == 0, statvfs("/dev/shm", &info) == 0, UInt64(info.f_bavail) * UInt64(info.f_frsize) >= 2 << 30 {
            return "/dev/shm" + name
        }
        return temporaryDirectory + name
    }

    /// The pids of the watchdog processes whose arguments name `directory`.
    static func watchdogs(for directory: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let arguments = try? readFile("/proc/\(pid)/cmdline") else { return false }
            let parts = arguments.split(separator: "\0").map(String.init)
            return parts.contains("pgevents-watchdog") && parts.last == directory
        }
    }
}
