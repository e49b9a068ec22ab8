import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import Synchronization
import Testing

@testable import PGEvents

@Suite("EventListener on a real server")
struct EventListenerTests {
    @Test("notifications on several channels arrive as .notification; heartbeat echoes do not")
    func notificationsOnSeveralChannels() async throws {
        let database = try await Shared.database()
        let logs = LogCapture()
        let channels = ["orders", "Payments", "with space"]
        let listener = try EventListener(
            configuration: .init(
                postgres: database.configuration, channels: channels,
                heartbeatInterval: .milliseconds(100), heartbeatTimeout: .seconds(5)),
            logger: logs.logger())
        try await withRunningListener(listener) { recorder in
            try await recorder.waitFor(timeout: 20) { if case .connected(generation: 1) = $0 { true } else { false } }
            listener.catchUpFinished(generation: 1)
            #expect(listener.state.description == "listening(generation: 1)")
            // Let a few heartbeats go round before and while notifications flow.
            try await logs.waitFor(timeout: 20, "heartbeat", count: 3)
            let sender = try await database.connect()
            var sent: [(String, String)] = []
            for index in 0..<20 {
                let channel = channels[index % channels.count]
                try await sender.notify(channel, payload: "payload \(index)")
                sent.append((channel, "payload \(index)"))
            }
            try await sender.notify("not listened to", payload: "ignored")
            try await sender.notify("orders", payload: "END")
            try await recorder.waitFor(timeout: 20) { if case .notification(let n) = $0 { n.payload == "END" } else { false } }
            try await logs.waitFor(timeout: 20, "heartbeat", count: 6)
            await sender.close()

            let notifications = recorder.notifications.filter { $0.payload != "END" }
            #expect(notifications.map(\.channel) == sent.map(\.0))
            #expect(notifications.map(\.payload) == sent.map(\.1))
            #expect(!recorder.notifications.contains { $0.channel.hasPrefix("pgevents_heartbeat") })
            #expect(!recorder.events.contains { if case .disconnected = $0 { true } else { false } })
            #expect(listener.heartbeatChannel.hasPrefix("pgevents_heartbeat_"))
        }
        #expect(listener.state.description == "stopped")
    }

    @Test("a terminated listening backend: .disconnected, .connected(generation: 2), and later notifications arrive")
    func terminatedBackendReconnects() async throws {
        let database = try await Shared.database()
        let listener = try EventListener(configuration: .init(postgres: database.configuration, channels: ["events"]))
        try await withRunningListener(listener) { recorder in
            try await recorder.waitFor(timeout: 20) { if case .connected(generation: 1) = $0 { true } else { false } }
            listener.catchUpFinished(generation: 1)
            let terminated = try await database.server.terminateBackends(listeningOn: "events", database: database.name)
            #expect(terminated == 1)
            let lost = try await recorder.waitFor(timeout: 20) { if case .disconnected = $0 { true } else { false } }
            if case .disconnected(let error) = lost.event { #expect(error.code == .connectionLost) }
            let reconnected = try await recorder.waitFor(after: lost.index, timeout: 20) { if case .connected = $0 { true } else { false } }
            guard case .connected(let generation) = reconnected.event else { return }
            #expect(generation == 2)
            print("terminated backend: reconnected \(lost.at.duration(to: reconnected.at)) after the loss was noticed")
            #expect(listener.state.description == "catchingUp(generation: 2)")
            listener.catchUpFinished(generation: 1)  // stale: ignored
            #expect(listener.state.description == "catchingUp(generation: 2)")
            listener.catchUpFinished(generation: 2)
            #expect(listener.state.description == "listening(generation: 2)")

            let sender = try await database.connect()
            try await sender.notify("events", payload: "after reconnect")
            try await recorder.waitFor(after: reconnected.index, timeout: 20) {
                if case .notification(let n) = $0 { n.payload == "after reconnect" } else { false }
            }
            await sender.close()
        }
    }

    @Test("over TCP (with keepalives and a user timeout in the conninfo) it connects and receives")
    func overTCP() async throws {
        let database = try await Shared.database()
        let configuration = EventListener.Configuration(postgres: try PostgresConfiguration(database.url), channels: ["tcp"])
        #expect(configuration.listeningConnection["keepalives"] == "1")
        let listener = try EventListener(configuration: configuration)
        try await withRunningListener(listener) { recorder in
            try await recorder.waitFor(timeout: 20) { if case .connected(generation: 1) = $0 { true } else { false } }
            let sender = try await database.connect()
            try await sender.notify("tcp", payload: "over tcp")
            try await recorder.waitFor(timeout: 20) { if case .notification(let n) = $0 { n.payload == "over tcp" } else { false } }
            await sender.close()
        }
    }

    @Test("the notification queue usage is checked, and a warning logged at the threshold")
    func queueUsageWarning() async throws {
        let database = try await Shared.database()
        let logs = LogCapture()
        let listener = try EventListener(
            configuration: .init(
                postgres: database.configuration, channels: ["a"],
                queueUsageWarningThreshold: 0, queueUsageCheckInterval: .milliseconds(50)),
            logger: logs.logger())
        try await withRunningListener(listener) { _ in
            try await logs.waitFor(timeout: 20, "notification queue usage above threshold", count: 2)
        }
        let warning = try #require(logs.records("notification queue usage above threshold").first)
        #expect(warning.level == .warning)
        // Cluster-wide: other tests on the shared server may hold a few queue pages at this moment.
        let usage = try #require(warning.metadata["usage"].flatMap(Double.init))
        #expect(usage >= 0 && usage < 0.01)
        #expect(warning.metadata["threshold"] == "0.0")
    }

    @Test("stop() ends run(), finishes events, and leaves no connection open")
    func stopClosesEverything() async throws {
        let database = try await Shared.database()
        let name = "pgevents-test-stop-\(UUID().uuidString.prefix(8))"
        var postgres = database.configuration
        postgres["application_name"] = name
        let listener = try EventListener(
            configuration: .init(postgres: postgres, channels: ["a", "b"], heartbeatInterval: .milliseconds(100)))
        try await withRunningListener(listener) { recorder in
            try await recorder.waitFor(timeout: 20) { if case .connected = $0 { true } else { false } }
            // The listening and the heartbeat connection are both there.
            try await waitForBackends(database, named: name, count: 2)
            listener.stop()
            try await recorder.waitUntilFinished(timeout: 20)
        }
        #expect(listener.state.description == "stopped")
        try await waitForBackends(database, named: name, count: 0)
        // A stopped listener does not run again.
        try await withTimeout(10) { await listener.run() }
    }

    @Test("cancelling the task ends run(), finishes events, and leaves no connection open")
    func cancellationClosesEverything() async throws {
        let database = try await Shared.database()
        let name = "pgevents-test-cancel-\(UUID().uuidString.prefix(8))"
        var postgres = database.configuration
        postgres["application_name"] = name
        let listener = try EventListener(configuration: .init(postgres: postgres, channels: ["a"], heartbeatInterval: .milliseconds(100)))
        let recorder = EventRecorder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await listener.run() }
            group.addTask { await recorder.consume(listener.events) }
            try await recorder.waitFor(timeout: 20) { if case .connected = $0 { true } else { false } }
            try await waitForBackends(database, named: name, count: 2)
            group.cancelAll()
            try await recorder.waitUntilFinished(timeout: 20)
            try await group.waitForAll()
        }
        #expect(listener.state.description == "stopped")
        try await waitForBackends(database, named: name, count: 0)
    }

    @Test("stop() before run(): run() returns at once without connecting")
    func stopBeforeRun() async throws {
        let listener = try EventListener(
            configuration: .init(postgres: PostgresConfiguration(parameters: ["host": "/nonexistent"]), channels: ["a"]))
        listener.stop()
        try await withTimeout(10) { await listener.run() }
        var iterator = listener.events.makeAsyncIterator()
        let next = await iterator.next()
        #expect(next == nil, "events must be finished")
        #expect(listener.state.description == "stopped")
    }

    @Test("with maxAttempts, a server that never answers makes run() give up after that many attempts")
    func givesUp() async throws {
        let logs = LogCapture()
        let listener = try EventListener(
            configuration: .init(
                postgres: PostgresConfiguration(parameters: ["host": "/nonexistent-pgevents-socket-dir", "port": "5432"]),
                channels: ["a"],
                backoff: .init(initial: .milliseconds(10), multiplier: 2, maximum: .milliseconds(40), jitter: 0, maxAttempts: 4)),
            logger: logs.logger())
        try await withTimeout(20) { await listener.run() }
        #expect(listener.state.description == "stopped")
        let scheduled = logs.records("listener reconnect scheduled")
        #expect(scheduled.map { $0.metadata["attempt"] } == ["2", "3", "4"])
        let delays = scheduled.compactMap { $0.metadata["delay_seconds"].flatMap(Double.init) }
        #expect(delays.count == 3 && zip(delays, [0.02, 0.04, 0.04]).allSatisfy { abs($0 - $1) < 1e-9 }, "\(delays)")
        #expect(logs.records("listener gave up").first?.metadata["attempts"] == "4")
        var iterator = listener.events.makeAsyncIterator()
        let next = await iterator.next()
        #expect(next == nil, "events must be finished")
    }

    @Test("invalid configurations are refused")
    func invalidConfiguration() throws {
        let postgres = PostgresConfiguration(parameters: ["host": "/tmp"])
        for channels in [[], [""], [String(repeating: "x", count: 64)], ["nul\u{0}"]] {
            let error = #expect(throws: PostgresError.self) {
                try EventListener(configuration: .init(postgres: postgres, channels: channels))
            }
            #expect(error?.code == .invalidArgument)
        }
        let badTimeout = #expect(throws: PostgresError.self) {
            try EventListener(configuration: .init(postgres: postgres, channels: ["a"], heartbeatTimeout: .zero))
        }
        #expect(badTimeout?.code == .invalidArgument)
    }

    @Test("TCP connections get keepalives and a user timeout; unix sockets do not; explicit values are kept")
    func connectionSettings() throws {
        let tcp = EventListener.Configuration(
            postgres: try PostgresConfiguration("postgresql://u:secret@127.0.0.1:5432/db?keepalives_idle=30"), channels: ["a"])
        let conninfo = tcp.listeningConnection
        #expect(conninfo["keepalives"] == "1")
        #expect(conninfo["keepalives_idle"] == "30")
        #expect(conninfo["keepalives_interval"] == "2")
        #expect(conninfo["keepalives_count"] == "3")
        #expect(conninfo["tcp_user_timeout"] == "10000")
        #expect(conninfo["connect_timeout"] == "5")
        #expect(conninfo["application_name"] == "pgevents-listener")
        #expect(tcp.heartbeatConnection["application_name"] == "pgevents-listener heartbeat")

        let socket = EventListener.Configuration(
            postgres: PostgresConfiguration(parameters: ["host": "/run/postgresql"]), channels: ["a"], connectTimeout: .milliseconds(500))
        #expect(socket.listeningConnection["keepalives"] == nil)
        #expect(socket.listeningConnection["tcp_user_timeout"] == nil)
        #expect(socket.listeningConnection["connect_timeout"] == "2")  // libpq's minimum
        #expect(
            EventListener.Configuration(postgres: PostgresConfiguration(parameters: [:]), channels: ["a"]).listeningConnection["keepalives"]
                == nil)
        let none = EventListener.Configuration(
            postgres: try PostgresConfiguration("host=db.example port=5432"), channels: ["a"], tcpKeepalive: nil)
        #expect(none.listeningConnection["keepalives"] == nil)
    }
}

// MARK: Helpers

/// Runs `listener` and records its events while `body` runs; then stops it and waits (guarded) for the end.
func withRunningListener<T: Sendable>(
    _ listener: EventListener,
    _ body: @Sendable (EventRecorder) async throws -> T
) async throws -> T {
    let recorder = EventRecorder()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await listener.run() }
        group.addTask { await recorder.consume(listener.events) }
        let result: Result<T, any Error>
        do { result = .success(try await body(recorder)) } catch { result = .failure(error) }
        listener.stop()
        do {
            try await recorder.waitUntilFinished(timeout: 20)
        } catch {
            Issue.record("the listener did not stop within 20 s of stop()")
            group.cancelAll()
        }
        try await group.waitForAll()
        return try result.get()
    }
}

/// Waits until `count` backends of `database` have an `application_name` starting with `name`.
func waitForBackends(_ database: TemporaryDatabase, named name: String, count: Int, timeout: Double = 20) async throws {
    try await waitForBackends(database.server, named: name, count: count, timeout: timeout)
}

/// Waits until `count` backends of `server` have an `application_name` starting with `name`.
func waitForBackends(_ server: TemporaryPostgres, named name: String, count: Int, timeout: Double = 20) async throws {
    let deadline = ContinuousClock.now + .seconds(timeout)
    var last = -1
    while ContinuousClock.now < deadline {
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE \(PostgresIdentifier.literal(name + "%"))"
        last = try await server.execute(sql).scalar(Int.self)
        if last == count { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("expected \(count) backends named \(name)*, found \(last) after \(timeout) s")
}

/// Records a listener's events with the time each arrived; tests wait for the ones they expect.
final class EventRecorder: Sendable {
    struct Entry: Sendable {
        var index: Int
        var at: ContinuousClock.Instant
        var event: ListenerEvent
    }
    private struct State {
        var entries: [Entry] = []
        var finished = false
    }
    private let state = Mutex(State())

    func consume(_ events: EventListener.Events) async {
        for await event in events {
            state.withLock { $0.entries.append(Entry(index: $0.entries.count, at: .now, event: event)) }
        }
        state.withLock { $0.finished = true }
    }

    var entries: [Entry] { state.withLock { $0.entries } }
    var events: [ListenerEvent] { entries.map(\.event) }
    var notifications: [PostgresNotification] {
        events.compactMap { if case .notification(let n) = $0 { n } else { nil } }
    }

    /// The first event after index `after` (exclusive; -1 for all) that matches, waiting up to `timeout` s.
    @discardableResult
    func waitFor(after: Int = -1, timeout: Double, _ matches: @Sendable (ListenerEvent) -> Bool) async throws -> Entry {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            let (found, finished) = state.withLock { state in
                (state.entries.first { $0.index > after && matches($0.event) }, state.finished)
            }
            if let found { return found }
            if finished || ContinuousClock.now >= deadline {
                Issue.record("event not seen (finished: \(finished)); events so far: \(events.map(\.description).suffix(10))")
                throw TimeoutError(seconds: timeout)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits until the events sequence has finished.
    func waitUntilFinished(timeout: Double) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while !state.withLock({ $0.finished }) {
            if ContinuousClock.now >= deadline { throw TimeoutError(seconds: timeout) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// A log handler that keeps every record, so tests can check what was logged (and with which metadata).
final class LogCapture: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }
    private let stored = Mutex<[Record]>([])

    func logger(label: String = "pgevents.test") -> Logger {
        var logger = Logger(label: label) { _ in Handler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    func append(_ record: Record) { stored.withLock { $0.append(record) } }
    var records: [Record] { stored.withLock { $0 } }
    func records(_ message: String) -> [Record] { records.filter { $0.message == message } }

    /// Waits until `message` was logged `count` times.
    func waitFor(timeout: Double, _ message: String, count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while records(message).count < count {
            if ContinuousClock.now >= deadline {
                Issue.record("'\(message)' logged \(records(message).count) times, expected \(count)")
                throw TimeoutError(seconds: timeout)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append(Record(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}
