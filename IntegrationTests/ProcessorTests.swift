import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The ids of the rows whose jobs are on `queue`, in the order they were pushed; duplicates kept.
func deliveredIDs(_ redis: RedisConnection, _ queue: String = "jobs") async throws -> [Int] {
    let reply = try await redis.command("LRANGE", RedisArgument(queue), 0, -1)
    return try (reply.array ?? []).reversed().map { item in
        let object = try JSONSerialization.jsonObject(with: Data(item.bytes ?? [])) as? [String: Any]
        return (object?["row"] as? [String: Any])?["id"] as? Int ?? -1
    }
}

/// The ledger: every row of `events` has exactly one job; what is lost or duplicated is named by id. (The ids
/// are read from the table: after an immediate restart a sequence skips the values it had cached.)
func expectEveryRowOnce(
    _ reader: RedisConnection, rows count: Int, in database: TemporaryDatabase, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let connection = try await database.connect()
    let rows = try await connection.query("SELECT id FROM events").map { try $0.decode(Int.self, at: 0) }
    await connection.close()
    let ids = try await deliveredIDs(reader)
    let lost = Set(rows).subtracting(ids).sorted()
    var seen = Set<Int>()
    let duplicated = ids.filter { !seen.insert($0).inserted }
    #expect(rows.count == count, "the table holds \(rows.count) rows, the test wrote \(count)", sourceLocation: sourceLocation)
    #expect(lost.isEmpty, "\(lost.count) lost, e.g. rows \(lost.prefix(20))", sourceLocation: sourceLocation)
    #expect(duplicated.isEmpty, "\(duplicated.count) duplicated, e.g. rows \(duplicated.prefix(20))", sourceLocation: sourceLocation)
    #expect(ids.count == rows.count, sourceLocation: sourceLocation)
}

/// Waits until `queue` holds `count` jobs (a guard against hangs, not a speed check).
func waitForJobs(_ redis: RedisConnection, count: Int, queue: String = "jobs", seconds: Double = 30) async throws {
    try await withTimeout(seconds) {
        while true {
            let length = try await redis.command("LLEN", RedisArgument(queue)).integer ?? 0
            if length >= count { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

func processorConfiguration(consumer: String = "test") throws -> ProcessorConfiguration {
    try ProcessorConfiguration(
        yaml: """
            consumer: \(consumer)
            channels: {new_event: {queue: jobs}}
            batch_size: 100
            catch_up_interval: 0.5
            listener: {heartbeat_interval: 0.5, heartbeat_timeout: 1}
            retry: {initial: 0.05, maximum: 0.5}
            """)
}

/// Runs `processor` while `body` runs, then shuts it down gracefully and waits (at most 15 s) until it returns.
func withRunningProcessor(_ processor: EventProcessor, _ body: () async throws -> Void) async throws {
    try await testGracefulShutdown { trigger in
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await processor.run()
                return true
            }
            try await body()
            trigger.triggerGracefulShutdown()
            group.addTask {
                try await Task.sleep(for: .seconds(15))
                return false
            }
            let stopped = try await group.next() ?? false
            group.cancelAll()
            #expect(stopped, "the processor did not stop within 15 s of a graceful shutdown")
        }
    }
}

@Suite("The processor, end to end")
struct ProcessorTests {
    @Test("events written while it was stopped, and while it runs, all arrive once; graceful shutdown returns")
    func endToEnd() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await writer.query("INSERT INTO events (body) SELECT 'before ' || g FROM generate_series(1, 1000) g")
        try await withTemporaryRedis { redis in
            let processor = EventProcessor(
                configuration: try processorConfiguration(), postgres: database.configuration,
                redis: redis.configuration, logger: Logger(label: "test"))
            let reader = try await redis.connect()
            try await withRunningProcessor(processor) {
                try await waitForJobs(reader, count: 1000)
                for index in 1...50 {
                    try await writer.query("INSERT INTO events (body) VALUES ($1)", ["live \(index)"])
                }
                try await waitForJobs(reader, count: 1050)
            }
            try await expectEveryRowOnce(reader, rows: 1050, in: database)
            await reader.close()
        }
        await writer.close()
    }

    @Test("the processor's backends terminated mid-stream: nothing lost, nothing duplicated")
    func terminatedMidStream() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        let admin = try await database.connect()
        try await withTemporaryRedis { redis in
            let processor = EventProcessor(
                configuration: try processorConfiguration(), postgres: database.configuration,
                redis: redis.configuration, logger: Logger(label: "test"))
            let reader = try await redis.connect()
            let writerPID = await writer.backendPID
            try await withRunningProcessor(processor) {
                for round in 0..<5 {
                    try await writer.query("INSERT INTO events (body) SELECT 'r\(round) ' || g FROM generate_series(1, 100) g")
                    try await Task.sleep(for: .milliseconds(30))
                    let killed = try await admin.query(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgevents%' AND pid <> pg_backend_pid() AND pid <> $1",
                        [Int(writerPID)]
                    ).scalar(Int.self)
                    print("round \(round): terminated \(killed) processor backends")
                }
                try await waitForJobs(reader, count: 500)
            }
            try await expectEveryRowOnce(reader, rows: 500, in: database)
            await reader.close()
        }
        await writer.close()
        await admin.close()
    }

    @Test("pgevents process killed with SIGKILL and started again: nothing lost, nothing duplicated")
    func killedAndRestarted() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let directory = try migrationDirectory([
                "processor.yml": """
                consumer: killed
                channels: {new_event: {queue: jobs}}
                batch_size: 50
                catch_up_interval: 0.5
                """
            ])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let environment = ProcessInfo.processInfo.environment.merging([
                "DATABASE_URL": database.url, "REDIS_URL": redis.url,
            ]) { $1 }
            let log = directory + "/process.log"
            func start() throws -> ChildProcess {
                try ChildProcess.spawn(
                    executable, ["process", "--config", directory + "/processor.yml"], outputPath: log, environment: environment)
            }
            let reader = try await redis.connect()
            var child = try start()
            var written = 0
            var lastStartOffset = 0
            for round in 0..<4 {
                try await writer.query("INSERT INTO events (body) SELECT 'k\(round) ' || g FROM generate_series(1, 500) g")
                written += 500
                try await Task.sleep(for: .milliseconds(20 + 40 * round))
                child.kill(SIGKILL)  // mid-stream, between any two steps
                _ = await child.waitOffPool()
                lastStartOffset = (try? String(contentsOfFile: log, encoding: .utf8).count) ?? 0
                child = try start()
            }
            do {
                try await waitForJobs(reader, count: written)
            } catch {
                let length = try await reader.command("LLEN", "jobs").integer ?? -1
                Issue.record("only \(length) of \(written) jobs arrived; processor log:\n\(tailOfFile(log, maxLines: 40))")
                child.kill(SIGKILL)
                _ = await child.waitOffPool()
                throw error
            }
            // SIGTERM must find the signal handlers installed: wait for the last start's first log line.
            let offset = lastStartOffset
            do {
                try await withTimeout(30) {
                    while !(try String(contentsOfFile: log, encoding: .utf8)).dropFirst(offset).contains("processor starting") {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            } catch {
                Issue.record("the last processor did not log its start; log:\n\(tailOfFile(log, maxLines: 40))")
                throw error
            }
            child.kill(SIGTERM)
            let termination = await child.waitOffPool()
            #expect(termination == .exited(0), "pgevents process did not exit cleanly on SIGTERM:\n\(tailOfFile(log))")
            try await expectEveryRowOnce(reader, rows: written, in: database)
            await reader.close()
        }
        await writer.close()
    }
}

@Suite("The processor across server restarts")
struct ProcessorRestartTests {
    @Test("Redis restarted mid-stream: nothing lost, nothing duplicated")
    func redisRestart() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        // Persistence on: what Redis had taken must survive its restart, or no processor could help.
        try await withTemporaryRedis(.init(settings: ["appendonly": "yes", "appendfsync": "always"])) { redis in
            let logs = LogCapture()
            let processor = EventProcessor(
                configuration: try processorConfiguration(), postgres: database.configuration,
                redis: redis.configuration, logger: logs.logger())
            try await withRunningProcessor(processor) {
                for round in 0..<4 {
                    try await writer.query("INSERT INTO events (body) SELECT 'r\(round) ' || g FROM generate_series(1, 250) g")
                    if round == 1 { try await redis.restart(downtime: .milliseconds(300)) }
                }
                let reader = try await redis.connect()
                do {
                    try await waitForJobs(reader, count: 1000)
                } catch {
                    let length = try await reader.command("LLEN", "jobs").integer ?? -1
                    let size = try await reader.command("DBSIZE").integer ?? -1
                    let records = logs.records.filter { $0.level >= .debug }.suffix(25).map { "\($0.level) \($0.message) \($0.metadata)" }
                    let check = try await database.connect()
                    let cursor = try await check.query(
                        "SELECT name || ' ' || done_snapshot::text || ' ' || coalesce(batch_snapshot::text, '-') || ' ' || batch_seq FROM pgevents.consumers"
                    ).map { $0[0] ?? "" }
                    await check.close()
                    Issue.record(
                        "\(length) of 1000 jobs, \(size) keys; cursor \(cursor); last log records:\n\(records.joined(separator: "\n"))\nredis log:\n\(redis.logTail(lines: 30))"
                    )
                    throw error
                }
                await reader.close()
            }
            let reader = try await redis.connect()
            try await expectEveryRowOnce(reader, rows: 1000, in: database)
            await reader.close()
        }
        await writer.close()
    }

    @Test("PostgreSQL restarted mid-stream (fast and immediate): nothing lost, nothing duplicated", arguments: [true, false])
    func postgresRestart(fast: Bool) async throws {
        try await withTemporaryPostgres { (server: TemporaryPostgres) async throws -> Void in
            let database = try await journalDatabase(on: server)
            try await withTemporaryRedis { (redis: TemporaryRedis) async throws -> Void in
                let processor = EventProcessor(
                    configuration: try processorConfiguration(), postgres: database.configuration,
                    redis: redis.configuration, logger: Logger(label: "test"))
                try await withRunningProcessor(processor) {
                    for round in 0..<4 {
                        let writer = try await database.connect()
                        try await writer.query("INSERT INTO events (body) SELECT 'r\(round) ' || g FROM generate_series(1, 250) g")
                        await writer.close()
                        if round == 1 { try await server.restart(mode: fast ? .fast : .immediate, downtime: .milliseconds(200)) }
                    }
                    let reader = try await redis.connect()
                    try await waitForJobs(reader, count: 1000)
                    await reader.close()
                }
                let reader = try await redis.connect()
                try await expectEveryRowOnce(reader, rows: 1000, in: database)
                await reader.close()
            }
        }
    }

    @Test("two processors on one configuration deliver every event once")
    func twoInstances() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let configuration = try processorConfiguration(consumer: "shared")
            let first = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "a"))
            let second = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "b"))
            let reader = try await redis.connect()
            try await withRunningProcessor(first) {
                try await withRunningProcessor(second) {
                    for round in 0..<5 {
                        try await writer.query("INSERT INTO events (body) SELECT 'r\(round) ' || g FROM generate_series(1, 200) g")
                    }
                    try await waitForJobs(reader, count: 1000)
                }
                // The second one is gone; the first goes on alone.
                try await writer.query("INSERT INTO events (body) SELECT 'after ' || g FROM generate_series(1, 100) g")
                try await waitForJobs(reader, count: 1100)
            }
            try await expectEveryRowOnce(reader, rows: 1100, in: database)
            // Duplicates are kept out by one delivered position per destination, not by a key per event.
            let keys = try await reader.command("KEYS", "pgevents:seen:shared:*").array?.compactMap(\.string) ?? []
            #expect(keys.count == 1 && keys.first?.hasSuffix(":delivered") == true, "\(keys)")
            await reader.close()
        }
        await writer.close()
    }
}

/// Waits until the processor's listener has run its LISTEN: its last statement, finished (idle), as pg_stat_activity
/// shows. While the statement still runs, a notification committed meanwhile may come before the LISTEN takes effect.
func waitForListener(_ admin: PostgresConnection) async throws {
    try await withTimeout(20) {
        while try await admin.query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgevents-listener' AND query LIKE 'LISTEN%' AND state = 'idle'"
        ).scalar(Int.self) == 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

@Suite("Notify-only mode")
struct NotifyProcessorTests {
    @Test("payloads become jobs; what is sent while disconnected is lost, and the loss is reported")
    func lossIsReported() async throws {
        let database = try await Shared.database()
        let sender = try await database.connect()
        let admin = try await database.connect()
        try await withTemporaryRedis { redis in
            // A slow first retry keeps the listener away long enough for the notifications below to be lost.
            // The heartbeat is generous: a false timeout on a loaded machine would be a second, unplanned gap.
            let configuration = try ProcessorConfiguration(
                yaml: """
                    source: notify
                    channels: {chat: {queue: messages}}
                    listener: {heartbeat_interval: 1, heartbeat_timeout: 20}
                    retry: {initial: 0.5, maximum: 1}
                    """)
            let processor = NotifyProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            let reader = try await redis.connect()
            try await testGracefulShutdown { trigger in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await processor.run() }
                    // Wait until the listener is there, then send.
                    try await waitForListener(admin)
                    for index in 1...5 { try await sender.notify("chat", payload: "before \(index)") }
                    try await waitForJobs(reader, count: 5, queue: "messages")

                    let gapsBefore = processor.gaps.count
                    // The timeout argument makes the call wait until the backend has exited.
                    let killed = try await admin.query(
                        "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgevents-listener'"
                    ).scalar(Int.self)
                    #expect(killed == 1)
                    for index in 1...5 { try await sender.notify("chat", payload: "while away \(index)") }

                    // A gap is reported once the listener is back and LISTENing; from then on nothing is lost.
                    try await withTimeout(20) { while processor.gaps.count == gapsBefore { try await Task.sleep(for: .milliseconds(20)) } }
                    for index in 1...5 { try await sender.notify("chat", payload: "after \(index)") }
                    try await waitForJobs(reader, count: 10, queue: "messages")
                    trigger.triggerGracefulShutdown()
                    try await group.waitForAll()
                }
            }
            let reply = try await reader.command("LRANGE", "messages", 0, -1)
            let payloads = Set((reply.array ?? []).compactMap(\.string))
            #expect(payloads == Set((1...5).map { "before \($0)" } + (1...5).map { "after \($0)" }))
            #expect(processor.gaps.count == 1)
            await reader.close()
        }
        await sender.close()
        await admin.close()
    }

    @Test("Redis not answering: notifications wait in the bounded buffer, the overflow is dropped and counted, the rest is pushed")
    func bufferOverflow() async throws {
        let database = try await Shared.database()
        let sender = try await database.connect()
        let admin = try await database.connect()
        try await withTemporaryRedis { redis in
            let configuration = try ProcessorConfiguration(
                yaml: """
                    source: notify
                    channels: {chat: {queue: messages}}
                    buffer_limit: 10
                    listener: {heartbeat_interval: 1, heartbeat_timeout: 20}
                    retry: {initial: 0.05, maximum: 0.2}
                    """)
            let processor = NotifyProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            try await testGracefulShutdown { trigger in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await processor.run() }
                    try await waitForListener(admin)
                    // Redis stops answering (SIGSTOP): the first push waits for its reply, the buffer fills, the
                    // rest is dropped. Redis stays frozen until every notification has been taken or dropped.
                    let redisPID = try #require(redis.pid)
                    kill(redisPID, SIGSTOP)
                    defer { kill(redisPID, SIGCONT) }
                    for index in 1...50 { try await sender.notify("chat", payload: "m\(index)") }
                    try await withTimeout(20) { while processor.dropped < 39 { try await Task.sleep(for: .milliseconds(20)) } }
                    kill(redisPID, SIGCONT)
                    try await withTimeout(20) {
                        while processor.pushed + processor.dropped < 50 { try await Task.sleep(for: .milliseconds(20)) }
                    }
                    trigger.triggerGracefulShutdown()
                    try await group.waitForAll()
                }
            }
            // `buffer_limit` wait in the buffer (and one more in the retrying push, if it took one before the
            // rest arrived); the others are dropped. What is pushed is the oldest, in order.
            let pushed = processor.pushed
            #expect(pushed == 10 || pushed == 11, "pushed \(pushed)")
            #expect(processor.dropped == 50 - pushed)
            let reader = try await redis.connect()
            let payloads = try await reader.command("LRANGE", "messages", 0, -1).array?.compactMap(\.string) ?? []
            #expect(payloads.reversed() == (1...pushed).map { "m\($0)" })
            await reader.close()
        }
        await sender.close()
        await admin.close()
    }
}
