import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Synchronization

extension ScenarioBench {
    /// The processor of one WAL cell of `writers`: a slot and publication of its own, `source: wal` delivering to a
    /// Redis list while the writers write, and a count of what it delivered.
    struct WalStreamRun {
        let pattern: WritePattern
        let slot: String
        let queue: String
        let database: BenchDatabase
        let redis: RedisConfiguration
        let delivered: Delivered
        let task: Task<Void, any Error>

        final class Delivered: Sendable {
            let count = Atomic<Int>(0)
        }

        /// What the processor delivered of a cell's commits.
        struct Outcome {
            var delivered: Int
            /// Delivered when the writers stopped, as a fraction of the commits.
            var fractionAtStop: Double
            /// Seconds after the writers stopped until everything was delivered (or until the bench gave up, 30 s).
            var secondsToRest: Double
        }

        static func start(
            _ pattern: WritePattern, cell: Int, database: BenchDatabase, servers: BenchServers, batchSize: Int, logger: Logger
        ) async throws -> WalStreamRun {
            let slot = "pgevents_bench_\(pattern.rawValue)_\(cell)"
            try await PostgresConnection.withConnection(database.configuration) { connection in
                _ = try await WalSetup.create(
                    on: connection, slot: slot, publication: slot, tables: pattern == .wal ? [pattern.table] : [], logger: logger)
            }
            let queue = "\(servers.keyPrefix):jobs:writers-\(pattern.rawValue)"
            let configuration = try ProcessorConfiguration(
                yaml: """
                    source: wal
                    consumer: \(slot)
                    wal: {slot: \(slot), publication: \(slot)}
                    channels: {"\(pattern.walChannel)": {queue: "\(queue)"}}
                    batch_size: \(batchSize)
                    catch_up_interval: 1
                    key_prefix: "\(servers.keyPrefix):seen"
                    """, file: "bench.yml")
            var processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: servers.redis, logger: logger)
            let delivered = Delivered()
            processor.onDelivered = { events in delivered.count.add(events.count, ordering: .relaxed) }
            let running = processor
            let task = Task { try await running.run() }
            // Writers start once the slot is streamed.
            try await PostgresConnection.withConnection(database.configuration) { connection in
                let deadline = ContinuousClock.now + .seconds(30)
                while try await !connection.query(
                    "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1", [slot]
                ).scalar(Bool.self) {
                    guard ContinuousClock.now < deadline else {
                        task.cancel()
                        throw HarnessError(
                            code: .commandFailed,
                            message:
                                "pgevents bench writers/\(pattern.rawValue): the processor did not start streaming slot \(slot) within 30 s"
                        )
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            return WalStreamRun(
                pattern: pattern, slot: slot, queue: queue, database: database, redis: servers.redis, delivered: delivered, task: task)
        }

        /// Waits for the rest of `commits` (at most 30 s), stops the processor, and removes the slot, the publication
        /// and the jobs.
        func finish(commits: Int) async throws -> Outcome {
            let atStop = delivered.count.load(ordering: .relaxed)
            let stopped = ContinuousClock.now
            while delivered.count.load(ordering: .relaxed) < commits, ContinuousClock.now - stopped < .seconds(30) {
                try await Task.sleep(for: .milliseconds(2))
            }
            let rest = (ContinuousClock.now - stopped).inSeconds
            task.cancel()
            _ = try? await task.value
            try await PostgresConnection.withConnection(database.configuration) { connection in
                try await ScenarioBench.dropSlot(slot, on: connection)
            }
            let connection = try await RedisConnection.connect(redis)
            _ = try? await connection.command("DEL", RedisArgument(queue))
            await connection.close()
            let count = delivered.count.load(ordering: .relaxed)
            return Outcome(delivered: count, fractionAtStop: commits == 0 ? 1 : Double(atStop) / Double(commits), secondsToRest: rest)
        }
    }
}
