import Foundation
import PGEventsPostgres
import PGEventsSystem
import Testing

@testable import PGEventsHarness

@Suite("Throwaway PostgreSQL servers")
struct TemporaryPostgresTests {
    @Test("a server starts with logical WAL, runs unprivileged, and is gone after shutdown")
    func lifecycle() async throws {
        let server = try await TemporaryPostgres.start()
        let connection = try await server.connect()
        #expect(try await connection.query("SHOW wal_level").scalar(String.self) == "logical")
        #expect(try await connection.query("SHOW listen_addresses").scalar(String.self) == "127.0.0.1")
        #expect(try await connection.query("SELECT current_setting('max_replication_slots')::int").scalar(Int.self) >= 10)
        #expect(try await connection.query("SHOW server_encoding").scalar(String.self) == "UTF8")
        let pid = try #require(server.pid)
        if geteuid() == 0 {
            let uid = try #require(try readStatusUID(pid: pid))
            #expect(uid != 0, "the server must not run as root")
        }
        await connection.close()
        let directory = server.directory
        await server.shutdown()
        #expect(kill(pid, 0) != 0, "postgres still running after shutdown")
        #expect(!FileManager.default.fileExists(atPath: directory))
        await server.shutdown()  // idempotent
        await #expect(throws: HarnessError.self) { try await server.makeDatabase() }
    }

    @Test("databases cloned from a template are isolated from each other")
    func templates() async throws {
        try await withTemporaryPostgres { server in
            try await server.makeTemplate { connection in
                try await connection.execute(
                    "CREATE TABLE events (id serial PRIMARY KEY, body text); INSERT INTO events (body) VALUES ('seed')")
            }
            let first = try await server.makeDatabase()
            let second = try await server.makeDatabase()
            #expect(first.name != second.name)
            let a = try await first.connect()
            let b = try await second.connect()
            try await a.execute("INSERT INTO events (body) VALUES ('only in first')")
            #expect(try await a.query("SELECT count(*) FROM events").scalar(Int.self) == 2)
            #expect(try await b.query("SELECT count(*) FROM events").scalar(Int.self) == 1)
            await a.close()
            await b.close()
            try await first.drop()
            let remaining = try await server.execute("SELECT count(*) FROM pg_database WHERE datname = '\(first.name)'")
            #expect(try remaining.scalar(Int.self) == 0)
        }
    }

    @Test("a server that cannot start reports why, with the log tail")
    func startupFailure() async throws {
        let error = await #expect(throws: HarnessError.self) {
            _ = try await TemporaryPostgres.start(.init(settings: ["shared_buffers": "not-a-size"]))
        }
        #expect(error?.code == .startupFailed)
        #expect(error?.logTail?.contains("shared_buffers") == true)
        #expect(error?.description.contains("server log") == true)
    }

    @Test("a missing bin directory is reported with how to fix it")
    func missingBinaries() async throws {
        let error = await #expect(throws: HarnessError.self) {
            _ = try await TemporaryPostgres.start(.init(binDirectory: "/nonexistent/bin"))
        }
        #expect(error?.code == .binaryNotFound)
        #expect(error?.hint?.contains("ci/setup") == true)
    }

    @Test("servers left by a killed process (its watchdog killed too) are stopped and removed by the next run")
    func reapsLeftovers() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let outputPath = NSTemporaryDirectory() + "pgevents-up-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let child = try ChildProcess.spawn(executable, ["up", "--no-redis"], outputPath: outputPath)
        // Wait for `up` to print the server's directory.
        let directory = try await withTimeout(60) {
            while true {
                let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
                if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("directory:") }) {
                    return String(line.dropFirst("directory:".count)).trimmingCharacters(in: .whitespaces)
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let serverPID = try #require(
            Int32(try String(contentsOfFile: directory + "/server.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(serverPID, 0) == 0)
        // Without its watchdog (ServerWatchdogTests tests that one), as when the machine kills both at once.
        let watchdogs = ServerWatchdogTests.watchdogs(for: directory)
        #expect(watchdogs.count == 1)
        for pid in watchdogs { kill(pid, SIGKILL) }
        child.kill(SIGKILL)
        _ = await child.waitOffPool()
        // The server outlives its owner...
        #expect(kill(serverPID, 0) == 0)
        // ...until the next run reaps it.
        let removed = ScratchDirectory.reapLeftovers()
        #expect(removed.contains(directory))
        #expect(!FileManager.default.fileExists(atPath: directory))
        try await withTimeout(10) {
            while kill(serverPID, 0) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
    }
}

/// The `pgevents` executable next to the test bundle.
func pgeventsExecutable() -> String? {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("pgevents").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}

/// The real uid of a process, from /proc.
func readStatusUID(pid: Int32) throws -> UInt32? {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return nil }
    return line.split(separator: "\t").dropFirst().first.flatMap { UInt32($0) }
}

@Suite("The test kit's assertions that cannot hang")
struct ExpectationTests {
    @Test("expectNotification returns the matching one, or names the channel and what came instead")
    func notifications() async throws {
        let template = try await TemporaryPostgres.sharedTemplate(named: "expectations", configuration: Shared.configuration) { db in
            try await db.execute("CREATE TABLE events (kind text)")
        }
        let database = try await template.makeDatabase()
        let listener = try await database.connect()
        try await listener.listen("new_event")
        try await listener.listen("other")
        let notifications = await listener.notifications()
        let writer = try await database.connect()
        try await writer.query("SELECT pg_notify('other', 'noise'), pg_notify('new_event', 'created')")
        let received = try await notifications.expectNotification(channel: "new_event", within: 10)
        #expect(received.payload == "created")
        try await writer.query("SELECT pg_notify('other', 'more noise')")
        let error = await #expect(throws: TimeoutError.self) {
            try await notifications.expectNotification(channel: "new_event", within: 0.5)
        }
        #expect(error?.description == "a notification on new_event: nothing within 0.5 s; received instead: other: more noise")
        await writer.close()
        await listener.close()
    }

    @Test("expectJob takes jobs as a worker does until one matches, or names the queue")
    func jobs() async throws {
        try await withTemporaryRedis { redis in
            let connection = try await redis.connect()
            try await connection.command("LPUSH", "q", "first", "second")
            #expect(try await connection.expectJob(queue: "q", within: 5) { $0 == "second" } == "second")
            // "first" was taken (and did not match) on the way to "second".
            try await connection.command("LPUSH", "q", "third")
            let error = await #expect(throws: TimeoutError.self) {
                try await connection.expectJob(queue: "q", within: 0.3) { $0 == "never" }
            }
            #expect(error?.description == "a job on q: nothing within 0.3 s; received instead: third")
            await connection.close()
        }
    }
}
