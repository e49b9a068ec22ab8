import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import PGEventsSystem
import Synchronization

/// `writers`: single-row INSERT transactions from 1, 2, 4, 8, 16 connections, as fast as they commit, for
/// each pattern: no trigger; a row-level trigger sending `pg_notify(channel, id)`; a statement-level trigger
/// sending one empty notification per statement; the journal trigger (a journal row and an empty NOTIFY). A
/// LISTEN connection that only counts takes every notification, as a processor would. No processor runs for these:
/// they measure what notifying costs the writers — every transaction that notified takes a global lock at
/// commit to append to the notification queue, so notifying commits are serialised — and which pattern scales.
///
/// `wal` (the table in a publication, no trigger) and `emit_wal` (a row trigger calling `pgevents.emit_wal`) run the
/// processor with `source: wal` while the writers write, on the same machine, delivering to Redis: its decoding and
/// delivery cost CPU there, and that cost is in the figure. Each reports the fraction of commits delivered when the
/// writers stopped, and how long the rest took.
extension ScenarioBench {
    enum WritePattern: String, CaseIterable {
        case none
        case row
        case statement
        case journal
        case wal
        case emitWal = "emit_wal"

        var table: String { "public.writes_\(rawValue)" }
        /// The NOTIFY channel a listener counts (none for the WAL patterns: the processor counts those).
        var channel: String? { self == .none || isWal ? nil : "writes_\(rawValue)" }
        var isWal: Bool { self == .wal || self == .emitWal }
        /// The processor's channel of a WAL pattern: the table's changes, or the emitted messages.
        var walChannel: String { self == .wal ? table : "writes_\(rawValue)" }
    }

    func runWriters(on servers: BenchServers, progress: @escaping @Sendable (Progress) -> Void) async throws -> [BenchResult] {
        let counts = options.writers ?? [1, 2, 4, 8, 16]
        let duration = options.duration ?? 2
        let database = try await servers.makeDatabase()
        var results: [BenchResult] = []
        do {
            let listener = try await database.connect()
            for pattern in WritePattern.allCases { if let channel = pattern.channel { try await listener.listen(channel) } }
            let receiver = Receiver()
            let listening = Task { try await Self.receive(on: listener, into: receiver, keepTimes: false) }
            defer { listening.cancel() }
            let cells = WritePattern.allCases.count * counts.count
            for (patternIndex, pattern) in WritePattern.allCases.enumerated() {
                for (countIndex, writers) in counts.enumerated() {
                    let name = "writers/\(pattern.rawValue)/\(writers)"
                    let cell = patternIndex * counts.count + countIndex
                    progress(
                        Progress(
                            scenario: name, fraction: Double(cell) / Double(cells), message: "\(writers) writer(s), \(pattern.rawValue)"))
                    let started = Date()
                    let before = receiver.count.load(ordering: .relaxed)
                    let stream =
                        pattern.isWal
                        ? try await WalStreamRun.start(
                            pattern, cell: cell, database: database, servers: servers, batchSize: options.batchSize, logger: logger) : nil
                    let begin = ContinuousClock.now
                    let commits = try await withThrowingTaskGroup(of: Int.self) { group in
                        for _ in 0..<writers {
                            group.addTask {
                                let connection = try await database.connect()
                                var count = 0
                                do {
                                    while (ContinuousClock.now - begin).inSeconds < duration {
                                        try await connection.query("INSERT INTO \(pattern.table) DEFAULT VALUES")
                                        count += 1
                                    }
                                } catch {
                                    await connection.close()
                                    throw HarnessError(code: .commandFailed, message: "pgevents bench \(name): an INSERT failed: \(error)")
                                }
                                await connection.close()
                                return count
                            }
                        }
                        return try await group.reduce(0, +)
                    }
                    let seconds = (ContinuousClock.now - begin).inSeconds
                    let delivery = try await stream?.finish(commits: commits)
                    // The notifications of this cell: all of them arrive shortly after the last commit.
                    let expected = pattern.channel == nil ? 0 : commits
                    let deadline = ContinuousClock.now + .seconds(5)
                    while receiver.count.load(ordering: .relaxed) - before < expected, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    let notifications = receiver.count.load(ordering: .relaxed) - before
                    var extra: [String: Double] = ["commits_per_s": Double(commits) / seconds, "writers": Double(writers)]
                    if let delivery {
                        extra["delivered_fraction_at_stop"] = delivery.fractionAtStop
                        extra["seconds_to_deliver_rest"] = delivery.secondsToRest
                        extra["delivered"] = Double(delivery.delivered)
                    } else if pattern != .none {
                        extra["notifications"] = Double(notifications)
                        extra["notifications_missing"] = Double(max(0, expected - notifications))
                    }
                    results.append(
                        result(
                            name, servers: (servers.postgresVersion, servers.redisVersion), started: started, events: commits,
                            duration: seconds,
                            eventsPerSecond: Double(commits) / seconds,
                            errors: delivery.map { max(0, commits - $0.delivered) } ?? max(0, expected - notifications), extra: extra,
                            note: pattern.isWal
                                ? "single-row INSERT transactions while the processor streams the slot (source: wal, \(pattern == .wal ? "no trigger" : "emit_wal trigger")) into Redis"
                                : "commits only (no processor): single-row INSERT transactions, \(pattern.rawValue == "none" ? "no trigger" : "\(pattern.rawValue) notify pattern")",
                            settings: ["pattern": pattern.rawValue, "writers": String(writers), "duration_s": String(duration)]))
                }
            }
            listening.cancel()
            await listener.close()
        } catch {
            try? await database.drop()
            throw error
        }
        try? await database.drop()
        return results
    }
}
