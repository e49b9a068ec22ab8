import Foundation
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Synchronization

/// `latency/user`: the user's processor under the user's transaction at a fixed rate (see `ScenarioBench.UserPipeline`).
extension ScenarioBench {
    /// What the processor handed to Redis: each event's `appended→queued` time (of events appended once the writers
    /// started: rows the migrations journaled are delivered and counted, not timed), and how often each `seq` came.
    final class UserDeliveries: Sendable {
        private struct State {
            var histogram = StageHistogram()
            var seen: Set<Int64> = []
            var total = 0
            var transactions = StageHistogram()
            /// Events appended before this (wall-clock nanoseconds) are not timed.
            var timedFrom = Int64.max
        }
        private let state = Mutex(State())

        func record(_ events: [SourceEvent], at now: Int64) {
            state.withLock { state in
                for event in events {
                    state.total += 1
                    let appended = Int64(event.createdAt.timeIntervalSince1970 * 1e9)
                    if state.seen.insert(event.seq).inserted, appended >= state.timedFrom {
                        state.histogram.record(from: appended, to: now)
                    }
                }
            }
        }

        /// Times the events appended from `nanoseconds` on.
        func time(from nanoseconds: Int64) {
            state.withLock { $0.timedFrom = nanoseconds }
        }

        /// A transaction of the script, from its scheduled send to its commit's acknowledgement.
        func transaction(scheduled: Int64, committed: Int64) {
            state.withLock { $0.transactions.record(from: scheduled, to: committed) }
        }

        var transactions: StageHistogram { state.withLock { $0.transactions } }

        var distinct: Int { state.withLock { $0.seen.count } }
        var summary: (distinct: Int, duplicated: Int, histogram: StageHistogram) {
            state.withLock { ($0.seen.count, $0.total - $0.seen.count, $0.histogram) }
        }
    }

    func runUserLatency(_ pipeline: UserPipeline, on servers: BenchServers, progress: @escaping @Sendable (Progress) -> Void) async throws
        -> BenchResult
    {
        let started = Date()
        let writerCount = options.writers?.first ?? 8
        let duration = options.duration ?? 10
        let rate = options.rate
        let total = max(1, Int((rate * duration).rounded()))
        let channelsJSON = String(decoding: try JSONEncoder().encode(pipeline.processor.channels.map(\.name)), as: UTF8.self)
        let database = try await servers.makeDatabase()
        let deliveries = UserDeliveries()
        var processor = EventProcessor(
            configuration: Self.benchConfiguration(pipeline.processor, keyPrefix: servers.keyPrefix),
            postgres: database.configuration, redis: servers.redis, logger: logger)
        processor.onDelivered = { events in deliveries.record(events, at: benchWallNanoseconds()) }
        let running = processor
        var appended = 0
        var appendedBefore = 0
        var drained = false
        var seconds = 0.0
        do {
            try await PostgresConnection.withConnection(database.configuration) { counter in
                func journalRows() async throws -> Int {
                    Int(
                        try await counter.query(
                            "SELECT count(*)::bigint FROM pgevents.journal WHERE channel IN (SELECT jsonb_array_elements_text($1::jsonb))",
                            [channelsJSON]
                        ).scalar(Int64.self))
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await running.run() }
                    try await Self.waitForProcessor(database)
                    appendedBefore = try await journalRows()
                    let next = SharedCounter()
                    let begin = ContinuousClock.now
                    let beginWall = benchWallNanoseconds()
                    deliveries.time(from: beginWall)
                    let ticker = Task {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .milliseconds(250))
                            let elapsed = (ContinuousClock.now - begin).inSeconds
                            progress(
                                Progress(
                                    scenario: "latency/user", fraction: min(1, elapsed / duration),
                                    message: String(format: "%.1f s, %d delivered", elapsed, deliveries.distinct)))
                        }
                    }
                    defer { ticker.cancel() }
                    try await withThrowingTaskGroup(of: Void.self) { writers in
                        for client in 0..<writerCount {
                            writers.addTask {
                                let connection = try await database.connect()
                                var generator = SystemRandomNumberGenerator()
                                do {
                                    while true {
                                        let index = next.next()
                                        guard index < total else { break }
                                        // Open loop: the i-th transaction is due at start + i/rate, whether or not earlier ones finished.
                                        let offset = Double(index) / rate
                                        try await Task.sleep(until: begin + .nanoseconds(Int64(offset * 1e9)), clock: .continuous)
                                        try await connection.execute(pipeline.script.render(client: client, using: &generator))
                                        let now = benchWallNanoseconds()
                                        deliveries.transaction(scheduled: beginWall + Int64(offset * 1e9), committed: now)
                                    }
                                } catch {
                                    await connection.close()
                                    throw HarnessError(
                                        code: .commandFailed,
                                        message: "pgevents bench latency/user: a writer's transaction failed: \(error)")
                                }
                                await connection.close()
                            }
                        }
                        try await writers.waitForAll()
                    }
                    // Drain: until every journal row of the channels was delivered (or 30 s without progress).
                    var lastCount = -1
                    var lastProgress = ContinuousClock.now
                    while true {
                        appended = try await journalRows()
                        let count = deliveries.distinct
                        if count >= appended {
                            drained = true
                            break
                        }
                        if count != lastCount {
                            lastCount = count
                            lastProgress = .now
                        }
                        if ContinuousClock.now - lastProgress > .seconds(30) { break }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    try await Task.sleep(for: .milliseconds(200))  // late duplicates, if any, show up here
                    seconds = (ContinuousClock.now - begin).inSeconds
                    group.cancelAll()
                }
            }
        } catch {
            try? await database.drop()
            throw error
        }
        try? await database.drop()
        let (jobs, deadLetters) = try await Self.countJobs(redis: servers.redis, keyPrefix: servers.keyPrefix)
        let (delivered, duplicated, histogram) = deliveries.summary
        let transactions = deliveries.transactions
        var stages: [String: BenchResult.Latency] = [:]
        if let latency = histogram.latency { stages["appended→queued"] = latency }
        if let latency = transactions.latency { stages["scheduled→committed"] = latency }
        var extra: [String: Double] = [
            "rate": rate, "writers": Double(writerCount), "transactions": Double(transactions.count), "journal_rows": Double(appended),
            "journal_rows_before": Double(appendedBefore),
            "jobs": Double(jobs), "dead_letters": Double(deadLetters),
            "clamped_intervals": Double(histogram.clamped + transactions.clamped),
        ]
        extra["events_per_transaction"] = Double(appended - appendedBefore) / Double(max(transactions.count, 1))
        return result(
            "latency/user", servers: (servers.postgresVersion, servers.redisVersion), started: started, events: delivered,
            duration: seconds,
            eventsPerSecond: Double(delivered) / max(seconds, 1e-9), latency: histogram.latency, stages: stages,
            lost: max(0, appended - delivered), duplicated: duplicated, errors: deadLetters, extra: extra,
            note:
                "latency_us: journal row appended (server clock) → Redis took its chunk (rows of the writers); scheduled→committed: each transaction"
                + (drained ? "" : "; NOT drained within 30 s of no progress"),
            settings: pipeline.settings.merging([
                "writers": String(writerCount), "rate": String(rate), "duration_s": String(duration), "pipeline": "user",
            ]) { $1 },
            distribution: histogram.distribution)
    }

    /// The jobs in a throwaway Redis, in every list and stream but the bench's own keys; and the dead letters.
    static func countJobs(redis: RedisConfiguration, keyPrefix: String) async throws -> (jobs: Int, deadLetters: Int) {
        let connection = try await RedisConnection.connect(redis)
        do {
            let counts = try await countJobs(on: connection, keyPrefix: keyPrefix)
            await connection.close()
            return counts
        } catch {
            await connection.close()
            throw error
        }
    }

    private static func countJobs(on connection: RedisConnection, keyPrefix: String) async throws -> (jobs: Int, deadLetters: Int) {
        var jobs = 0
        var deadLetters = 0
        var cursor = "0"
        repeat {
            let reply = try await connection.command("SCAN", RedisArgument(cursor), "COUNT", "1000")
            guard let parts = reply.array, parts.count == 2 else { break }
            cursor = parts[0].string ?? "0"
            for key in parts[1].array?.compactMap(\.string) ?? [] {
                if key == "\(keyPrefix):dead" {
                    deadLetters += Int(try await connection.command("LLEN", RedisArgument(key)).integer ?? 0)
                    continue
                }
                if key.hasPrefix(keyPrefix + ":") { continue }
                switch try await connection.command("TYPE", RedisArgument(key)).string {
                case "list": jobs += Int(try await connection.command("LLEN", RedisArgument(key)).integer ?? 0)
                case "stream": jobs += Int(try await connection.command("XLEN", RedisArgument(key)).integer ?? 0)
                default: break
                }
            }
        } while cursor != "0"
        return (jobs, deadLetters)
    }
}
