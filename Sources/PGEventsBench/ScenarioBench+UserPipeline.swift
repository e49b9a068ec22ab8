import Foundation
public import PGEvents
public import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Synchronization

/// `writers` and `latency` on the user's own pipeline: their migrations (applied after the journal, as `check`
/// applies them), the transaction their application commits (`BenchScript`), and their `processor.yml`.
///
/// - `writers/user/N`: N connections run the script for the cell's duration, as fast as they commit; a LISTEN
///   connection counts the notifications on the configuration's channels. No processor runs: this is what the
///   user's trigger costs their writers.
/// - `latency/user`: the script at a fixed rate on an open-loop schedule, the processor running with the user's
///   configuration (its consumer, key prefix and dead-letter list renamed to the bench's, pruning off so that
///   every journal row can be counted). Each event is timed from its journal row's `created_at` (the server's
///   `clock_timestamp()` when the trigger appended it) to the moment Redis took its chunk; each transaction from
///   its scheduled send to the acknowledgement of its commit. Lost and duplicated events are counted by journal
///   `seq`: every row on the configuration's channels must be delivered exactly once.
extension ScenarioBench {
    /// The user's pipeline.
    public struct UserPipeline: Sendable {
        /// Their migrations (read with `--layout`/`--define` as `check` reads them), applied after the journal.
        public var migrations: MigrationSet
        /// What each writer's transaction runs.
        public var script: BenchScript
        /// Their processor configuration, and the file it was read from (for the results' settings).
        public var processor: ProcessorConfiguration
        public var processorPath: String

        public init(migrations: MigrationSet, script: BenchScript, processor: ProcessorConfiguration, processorPath: String) {
            self.migrations = migrations
            self.script = script
            self.processor = processor
            self.processorPath = processorPath
        }

        /// The scenarios that run it.
        public static let scenarios: [Scenario] = [.writers, .latency]

        var settings: [String: String] {
            [
                "migrations": migrations.directory, "layout": migrations.layout.rawValue, "script": script.source,
                "processor_config": processorPath,
            ]
        }
    }

    func validateUserPipeline(_ pipeline: UserPipeline, for scenario: Scenario) throws {
        func invalid(_ message: String) -> HarnessError {
            HarnessError(code: .invalidInput, message: "pgevents bench \(scenario.rawValue): \(message)")
        }
        guard UserPipeline.scenarios.contains(scenario) else {
            throw invalid(
                "runs on the bench's own table only; the user's pipeline (--migrations) runs in \(UserPipeline.scenarios.map(\.rawValue).joined(separator: " and "))"
            )
        }
        if options.pipeline != .passThrough {
            throw invalid("--pipeline does not apply to the user's pipeline: its processor.yml says what the processor does")
        }
        if scenario == .latency {
            if pipeline.processor.source != .journal {
                throw invalid(
                    "\(pipeline.processorPath): source: \(pipeline.processor.source.rawValue): latency times each event from its journal row, so it needs source: journal (writers runs any source)"
                )
            }
            if options.redisURL != nil {
                throw invalid(
                    "the user's processor writes to the lists and streams \(pipeline.processorPath) names, which are not under the bench's key prefix: run it on a throwaway Redis (without --redis-url)"
                )
            }
        }
    }

    /// The configuration the processor runs with: the user's, with the bench's consumer, keys and dead-letter list.
    static func benchConfiguration(_ user: ProcessorConfiguration, keyPrefix: String) -> ProcessorConfiguration {
        var configuration = user
        configuration.consumer = "bench"
        configuration.keyPrefix = "\(keyPrefix):seen"
        configuration.deadLetterQueue = "\(keyPrefix):dead"
        configuration.pruneInterval = 0
        configuration.fromStart = true
        return configuration
    }

    // MARK: writers

    func runUserWriters(_ pipeline: UserPipeline, on servers: BenchServers, progress: @escaping @Sendable (Progress) -> Void) async throws
        -> [BenchResult]
    {
        let counts = options.writers ?? [1, 2, 4, 8, 16]
        let duration = options.duration ?? 2
        let database = try await servers.makeDatabase()
        var results: [BenchResult] = []
        do {
            // The listener is closed on every way out (a writer's failed transaction included).
            results = try await database.connect().closeAfter { listener in
                var results: [BenchResult] = []
                for channel in pipeline.processor.channels { try await listener.listen(channel.name) }
                let receiver = Receiver()
                let listening = Task { try await Self.receive(on: listener, into: receiver, keepTimes: false) }
                defer { listening.cancel() }
                for (index, writers) in counts.enumerated() {
                    let name = "writers/user/\(writers)"
                    progress(
                        Progress(
                            scenario: name, fraction: Double(index) / Double(counts.count),
                            message: "\(writers) writer(s), \(pipeline.script.source)"))
                    let started = Date()
                    let before = receiver.count.load(ordering: .relaxed)
                    let (commits, seconds) = try await Self.write(writers: writers, for: duration, database: database, name: name) {
                        client, generator in
                        pipeline.script.render(client: client, using: &generator)
                    }
                    // The notifications of this cell arrive shortly after the last commit: wait until none came for 200 ms.
                    var last = receiver.count.load(ordering: .relaxed)
                    var quiet = ContinuousClock.now
                    while ContinuousClock.now - quiet < .milliseconds(200) {
                        try await Task.sleep(for: .milliseconds(10))
                        let now = receiver.count.load(ordering: .relaxed)
                        if now != last {
                            last = now
                            quiet = .now
                        }
                    }
                    let notifications = last - before
                    results.append(
                        result(
                            name, servers: (servers.postgresVersion, servers.redisVersion), started: started, events: commits,
                            duration: seconds,
                            eventsPerSecond: Double(commits) / seconds,
                            extra: [
                                "commits_per_s": Double(commits) / seconds, "writers": Double(writers),
                                "notifications": Double(notifications),
                                "notifications_per_commit": Double(notifications) / Double(max(commits, 1)),
                            ],
                            note:
                                "commits only (no processor): the script's transactions, and the notifications on the channels of \(pipeline.processorPath)",
                            settings: pipeline.settings.merging([
                                "writers": String(writers), "duration_s": String(duration), "pipeline": "user",
                            ]) { $1 }))
                }
                listening.cancel()
                return results
            }
        } catch {
            try? await database.drop()
            throw error
        }
        try? await database.drop()
        return results
    }

    /// `writers` connections run `transaction(client, generator)` back to back for `duration` seconds, each from when
    /// it is connected (on a loaded machine connecting can take longer than a short cell): the commits, and the seconds
    /// from the first writer's start to the last one's end. A failing transaction ends the run with the database's error.
    static func write(
        writers: Int, for duration: Double, database: BenchDatabase, name: String,
        _ transaction: @escaping @Sendable (Int, inout SystemRandomNumberGenerator) -> String
    ) async throws -> (commits: Int, seconds: Double) {
        typealias Writer = (commits: Int, start: ContinuousClock.Instant, end: ContinuousClock.Instant)
        let written = try await withThrowingTaskGroup(of: Writer.self) { group in
            for client in 0..<writers {
                group.addTask {
                    let connection = try await database.connect()
                    var generator = SystemRandomNumberGenerator()
                    var count = 0
                    let begin = ContinuousClock.now
                    do {
                        while (ContinuousClock.now - begin).inSeconds < duration {
                            try await connection.execute(transaction(client, &generator))
                            count += 1
                        }
                    } catch {
                        await connection.close()
                        throw HarnessError(code: .commandFailed, message: "pgevents bench \(name): a writer's transaction failed: \(error)")
                    }
                    let end = ContinuousClock.now
                    await connection.close()
                    return (count, begin, end)
                }
            }
            var all: [Writer] = []
            for try await writer in group { all.append(writer) }
            return all
        }
        guard let start = written.map(\.start).min(), let end = written.map(\.end).max() else { return (0, duration) }
        return (written.reduce(0) { $0 + $1.commits }, (end - start).inSeconds)
    }
}
