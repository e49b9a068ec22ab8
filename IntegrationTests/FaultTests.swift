import Foundation
import Logging
import PGEventsPostgres
import Synchronization
import Testing

@testable import PGEvents
@testable import PGEventsBench
@testable import PGEventsHarness

/// The listener against injected faults (each test has a private server, since it restarts or freezes it),
/// and the fault helpers themselves.
@Suite("Faults: restart, freeze, terminate")
struct FaultTests {
    @Test("a restarted server (fast, then immediate): the listener reconnects and receives again")
    func restartReconnects() async throws {
        try await withTemporaryPostgres { server in
            let listener = try EventListener(configuration: .init(postgres: server.configuration(), channels: ["events"]))
            try await withRunningListener(listener) { recorder in
                var seen = try await recorder.waitFor(timeout: 20) { if case .connected = $0 { true } else { false } }
                for (mode, generation) in [(TemporaryPostgres.ShutdownMode.fast, 2), (.immediate, 3)] {
                    let started = ContinuousClock.now
                    try await server.restart(mode: mode)
                    let restarted = ContinuousClock.now
                    let lost = try await recorder.waitFor(after: seen.index, timeout: 30) {
                        if case .disconnected = $0 { true } else { false }
                    }
                    seen = try await recorder.waitFor(after: lost.index, timeout: 30) { if case .connected = $0 { true } else { false } }
                    guard case .connected(let reported) = seen.event else { return }
                    #expect(reported == generation)
                    print(
                        "restart (\(mode)): server down and up in \(started.duration(to: restarted)); listener connected again \(restarted.duration(to: seen.at)) after the server was back, \(started.duration(to: seen.at)) after the restart began"
                    )
                    let sender = try await server.connect()
                    try await sender.notify("events", payload: "after \(mode) restart")
                    try await recorder.waitFor(after: seen.index, timeout: 20) {
                        if case .notification(let n) = $0 { n.payload == "after \(mode) restart" } else { false }
                    }
                    await sender.close()
                }
            }
        }
    }

    @Test("a frozen server (SIGSTOP): the heartbeat notices, and after resume the listener reconnects and receives")
    func pausedServerDetectedByHeartbeat() async throws {
        try await withTemporaryPostgres { server in
            let listener = try EventListener(
                configuration: .init(
                    postgres: server.configuration(), channels: ["events"],
                    heartbeatInterval: .milliseconds(300), heartbeatTimeout: .milliseconds(500), connectTimeout: .seconds(2)))
            try await withRunningListener(listener) { recorder in
                let connected = try await recorder.waitFor(timeout: 20) { if case .connected = $0 { true } else { false } }
                let sender = try await server.connect()  // opened now: nothing can connect while the server is frozen
                // Taken before pausing: on a loaded machine the heartbeat can notice the freeze before pause() returns.
                let pausedIndex = recorder.entries.count - 1
                try await server.pause()
                let paused = ContinuousClock.now
                let lost = try await recorder.waitFor(after: max(pausedIndex, connected.index), timeout: 15) {
                    if case .disconnected = $0 { true } else { false }
                }
                print("frozen server: heartbeat noticed after \(paused.duration(to: lost.at)) (interval 0.3 s, timeout 0.5 s)")
                if case .disconnected(let error) = lost.event { #expect(error.message.contains("heartbeat")) }
                #expect(listener.state.name == "reconnecting")
                try await Task.sleep(for: .milliseconds(300))  // still frozen a while: attempts wait or fail
                try await server.resume()
                let resumed = ContinuousClock.now
                let reconnected = try await recorder.waitFor(after: lost.index, timeout: 30) {
                    if case .connected = $0 { true } else { false }
                }
                print("frozen server: listener connected again \(resumed.duration(to: reconnected.at)) after resume")
                try await sender.notify("events", payload: "after resume")
                try await recorder.waitFor(after: reconnected.index, timeout: 20) {
                    if case .notification(let n) = $0 { n.payload == "after resume" } else { false }
                }
                await sender.close()
                // The abandoned connections are gone: only the new listening and heartbeat connections remain.
                try await waitForBackends(server, named: "pgevents-listener", count: 2)
            }
        }
    }

    @Test("stop() while the server is frozen and a heartbeat is in flight: run() still ends")
    func stopWhileFrozen() async throws {
        try await withTemporaryPostgres { server in
            let listener = try EventListener(
                configuration: .init(
                    postgres: server.configuration(), channels: ["events"],
                    heartbeatInterval: .milliseconds(100), heartbeatTimeout: .seconds(30)))
            let recorder = EventRecorder()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await listener.run() }
                group.addTask { await recorder.consume(listener.events) }
                try await recorder.waitFor(timeout: 20) { if case .connected = $0 { true } else { false } }
                try await server.pause()
                try await Task.sleep(for: .milliseconds(300))  // a heartbeat is now waiting for the frozen server
                let stopped = ContinuousClock.now
                listener.stop()
                // Well under the 30 s heartbeat timeout: the heartbeat's wait is cancelled, not waited out.
                try await recorder.waitUntilFinished(timeout: 15)
                print("stop while frozen: run() ended \(stopped.duration(to: .now)) after stop()")
                try await group.waitForAll()
            }
            #expect(listener.state.name == "stopped")
            try await server.resume()
            try await waitForBackends(server, named: "pgevents-listener", count: 0)
        }
    }

    @Test("while the server is down, reconnection attempts follow the backoff")
    func reconnectAttemptsFollowBackoff() async throws {
        try await withTemporaryPostgres { server in
            let logs = LogCapture()
            let listener = try EventListener(
                configuration: .init(
                    postgres: server.configuration(), channels: ["events"],
                    backoff: .init(initial: .milliseconds(50), multiplier: 2, maximum: .milliseconds(400), jitter: 0)),
                logger: logs.logger())
            let states = Locked<[String]>([])
            try await withRunningListener(listener) { recorder in
                try await recorder.waitFor(timeout: 20) { if case .connected = $0 { true } else { false } }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Watch the observable state while the server is down for 5 s (2.5 s was not always enough for two attempts in the full suite: it saw one).
                    group.addTask {
                        while !Task.isCancelled {
                            let state = listener.state.description
                            states.update { if $0.last != state { $0.append(state) } }
                            try? await Task.sleep(for: .milliseconds(2))
                        }
                    }
                    try await server.restart(mode: .immediate, downtime: .seconds(5))
                    try await recorder.waitFor(timeout: 30) { if case .connected(generation: 2) = $0 { true } else { false } }
                    group.cancelAll()
                    // The watcher samples every 2 ms but may lag on a loaded machine: one last sample, now that
                    // the reconnect was announced.
                    let final = listener.state.description
                    states.update { if $0.last != final { $0.append(final) } }
                }
            }
            await server.shutdown()
            let scheduled = logs.records("listener reconnect scheduled")
            let attempts = scheduled.compactMap { $0.metadata["attempt"].flatMap { Int($0) } }
            let delays = scheduled.compactMap { $0.metadata["delay_seconds"].flatMap { Double($0) } }
            print("server down 5 s: \(attempts.count) reconnection attempts, delays \(delays) s")
            // How many attempts fit in the downtime depends on how soon the loss is noticed on a loaded machine (CI
            // saw 2 of a possible 5 in 1.5 s): at least two are needed to see the delay grow.
            guard attempts.count >= 2 else {
                Issue.record("a server down for 5 s takes several attempts, saw \(attempts)")
                return
            }
            #expect(attempts == Array(1...attempts.count))
            let expected = (1...attempts.count).map { min(0.05 * pow(2, Double($0 - 1)), 0.4) }
            #expect(zip(delays, expected).allSatisfy { abs($0 - $1) < 1e-9 }, "delays \(delays), expected \(expected)")
            let observed = states.value
            #expect(observed.contains { $0.hasPrefix("reconnecting(attempt: 2") }, "states seen: \(observed)")
            // Last seen: connected again (catching up, or listening if a report came in), or stopped at the end.
            #expect(observed.last.map { $0.contains("generation: 2") || $0 == "stopped" } == true, "states seen: \(observed)")
        }
    }

    // MARK: The helpers themselves

    @Test("restart keeps data, changes the pid, updates server.pid; shutdown stops the new process")
    func restartHelper() async throws {
        try await withTemporaryPostgres { server in
            try await server.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2), (3)")
            var pids: [Int32] = [try #require(server.pid)]
            for mode in [TemporaryPostgres.ShutdownMode.fast, .immediate] {
                try await server.restart(mode: mode)
                let pid = try #require(server.pid)
                #expect(!pids.contains(pid))
                #expect(kill(pids.last!, 0) != 0, "the old postmaster must be gone")
                pids.append(pid)
                #expect(try await server.execute("SELECT count(*) FROM kept").scalar(Int.self) == 3)
                let recorded = try String(contentsOfFile: server.directory + "/server.pid", encoding: .utf8)
                #expect(recorded.trimmingCharacters(in: .whitespacesAndNewlines) == String(pid))
                // TCP with the password still works.
                let tcp = try await PostgresConnection.connect(to: server.url)
                #expect(try await tcp.query("SELECT 1").scalar(Int.self) == 1)
                await tcp.close()
            }
            let directory = server.directory
            await server.shutdown()
            #expect(kill(pids.last!, 0) != 0, "the restarted server must be stopped by shutdown")
            #expect(!FileManager.default.fileExists(atPath: directory))
            await #expect(throws: HarnessError.self) { try await server.restart() }
        }
    }

    @Test("pause freezes the postmaster and every backend; resume wakes them; shutdown works while paused")
    func pauseHelper() async throws {
        try await withTemporaryPostgres { server in
            let connection = try await server.connect()
            let postmaster = try #require(server.pid)
            try await server.pause()
            #expect(server.isPaused)
            let children = childProcesses(of: postmaster)
            #expect(children.count >= 3, "backends and auxiliary processes")
            #expect(([postmaster] + children).allSatisfy { processState($0) == "T" })
            // A query waits while the server is frozen, and completes after resume.
            let answered = Locked(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try await connection.query("SELECT 1")
                    answered.update { $0 = true }
                }
                try await Task.sleep(for: .milliseconds(300))
                #expect(answered.value == false, "a frozen server answered")
                try await server.resume()
                group.addTask {
                    try await Task.sleep(for: .seconds(20))
                    throw TimeoutError(seconds: 20)
                }
                try await group.next()  // the query, unless it hangs
                group.cancelAll()
            }
            #expect(answered.value)
            #expect(!server.isPaused)
            #expect(([postmaster] + children).allSatisfy { processState($0) != "T" })
            await connection.close()

            // Shut down while paused: nothing may stay behind, stopped.
            try await server.pause()
            let frozen = [postmaster] + childProcesses(of: postmaster)
            await server.shutdown()
            #expect(frozen.allSatisfy { kill($0, 0) != 0 }, "processes left: \(frozen.filter { kill($0, 0) == 0 })")
        }
    }

    @Test("terminateBackends finds listeners by their LISTEN, by application name, and by pid; returns the count")
    func terminateHelpers() async throws {
        let database = try await Shared.database()
        let server = database.server
        let channel = "fault-\(UUID().uuidString.prefix(8))"
        let first = try await database.connect()
        try await first.listen(channel)
        let second = try await database.connect()
        try await second.execute("LISTEN other; LISTEN \(PostgresIdentifier.quote(channel))")
        let elsewhere = try await database.connect()
        try await elsewhere.listen("other")
        #expect(try await server.terminateBackends(listeningOn: channel, database: database.name) == 2)
        let firstAnswer = try? await first.query("SELECT 1")
        let secondAnswer = try? await second.query("SELECT 1")
        #expect(firstAnswer == nil && secondAnswer == nil, "terminated connections still answer")
        #expect(try await elsewhere.query("SELECT 1").scalar(Int.self) == 1)
        #expect(try await server.terminateBackends(listeningOn: channel, database: database.name) == 0)

        var named = database.configuration
        named["application_name"] = "fault-\(UUID().uuidString.prefix(8))"
        let a = try await PostgresConnection.connect(named)
        let b = try await PostgresConnection.connect(named)
        #expect(try await server.terminateBackends(applicationName: named["application_name"]!) == 2)
        await a.close()
        await b.close()

        let pid = await elsewhere.backendPID
        #expect(try await server.terminateBackend(pid: pid))
        #expect(try await server.terminateBackend(pid: pid) == false)
        for connection in [first, second, elsewhere] { await connection.close() }
    }

    @Test(
        "LISTEN statements are parsed like the server does",
        arguments: [
            ("LISTEN events", ["events"]),
            ("listen Events", ["events"]),
            (#"LISTEN "Events""#, ["Events"]),
            (#"LISTEN "with ""quote"" and ; semicolon""#, [#"with "quote" and ; semicolon"#]),
            (#"LISTEN "a"; LISTEN "b";LISTEN c"#, ["a", "b", "c"]),
            ("SELECT 'LISTEN x'; LISTEN y", ["y"]),
            ("SELECT 1", []),
            ("LISTENING x", []),
            ("", []),
        ])
    func parseListen(sql: String, channels: [String]) {
        #expect(TemporaryPostgres.listenedChannels(in: sql) == Set(channels))
    }
}

/// A value shared between test tasks, guarded by a Mutex.
final class Locked<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value { storage.withLock { $0 } }
    func update(_ body: (inout Value) -> Void) { storage.withLock { body(&$0) } }
}

@Suite("Faults under load, with a ledger")
struct FaultBenchTests {
    @Test(
        "a frozen server (half-open connection) and a full NOTIFY queue lose and duplicate nothing; the freeze is detected, the queue warned about"
    )
    func freezeAndQueue() async throws {
        var options = FaultBench.Options(sqlDirectory: repositoryPath("sql/pgevents"))
        options.faults = [.postgresFreeze, .notifyQueueFull]
        options.rate = 300
        let outcome = try await FaultBench(options: options).run()
        for row in outcome.rows {
            #expect(
                row.passed,
                "\(row.fault.rawValue): \(row.lost) lost \(row.lostKeys), \(row.duplicated) duplicated \(row.duplicatedKeys); \(row.note)")
            #expect(row.sent > 0 && row.delivered == row.sent)
            #expect(row.recoverySeconds != nil, "\(row.fault.rawValue): delivery never resumed")
        }
        let freeze = try #require(outcome.rows.first { $0.fault == .postgresFreeze })
        #expect(freeze.detectionSeconds != nil, "the heartbeat never noticed the frozen server: \(freeze.note)")
        let queue = try #require(outcome.rows.first { $0.fault == .notifyQueueFull })
        #expect(queue.note.contains("warning logged"), "\(queue.note)")
    }
}

@Suite("StalledListener: the NOTIFY queue fills behind a listener that stops reading")
struct StalledListenerTests {
    @Test("usage grows while it sits in its transaction, and falls back once it is released")
    func fillsAndDrains() async throws {
        try await withTemporaryPostgres { server in
            let database = try await server.makeDatabase()
            let stalled = try await StalledListener.start(on: database, channels: ["orders"])
            #expect(try await stalled.queueUsage() == 0)
            let usage = try await stalled.fill(bytes: 4 << 20)
            #expect(usage > 0, "4 MB of notifications behind a stalled listener show in pg_notification_queue_usage()")
            await stalled.release()
            // The queue's tail moves once no listener needs the pages any more (at the next NOTIFY's cleanup).
            let probe = try await database.connect()
            try await withTimeout(20) {
                while true {
                    try await probe.notify("orders", payload: "tick")
                    if try await probe.query("SELECT pg_notification_queue_usage()").scalar(Double.self) < usage { return }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            await probe.close()
        }
    }
}
