import PGEventsHarness
import PGEventsSystem
import Foundation
import Logging
import PGEventsPostgres
import Synchronization

/// `writers`: single-row INSERT transactions from 1, 2, 4, 8, 16 connections, as fast as they commit, for
/// each pattern: no trigger; a row-level trigger sending `pg_notify(channel, id)`; a statement-level trigger
/// sending one empty notification per statement; the journal trigger (a journal row and an empty NOTIFY). A
/// LISTEN connection that only counts takes every notification, as a processor would. No processor runs:
/// this measures what notifying costs the writers — every transaction that notified takes a global lock at
/// commit to append to the notification queue, so notifying commits are serialised — and which pattern scales.
extension ScenarioBench {
    enum WritePattern: String, CaseIterable {
        case none
        case row
        case statement
        case journal

        var table: String { "public.writes_\(rawValue)" }
        var channel: String? { self == .none ? nil : "writes_\(rawValue)" }
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
                    progress(Progress(scenario: name, fraction: Double(cell) / Double(cells), message: "\(writers) writer(s), \(pattern.rawValue)"))
                    let started = Date()
                    let before = receiver.count.load(ordering: .relaxed)
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
                    // The notifications of this cell: all of them arrive shortly after the last commit.
                    let expected = pattern == .none ? 0 : commits
                    let deadline = ContinuousClock.now + .seconds(5)
                    while receiver.count.load(ordering: .relaxed) - before < expected, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    let notifications = receiver.count.load(ordering: .relaxed) - before
                    var extra: [String: Double] = ["commits_per_s": Double(commits) / seconds, "writers": Double(writers)]
                    if pattern != .none {
                        extra["notifications"] = Double(notifications)
                        extra["notifications_missing"] = Double(max(0, expected - notifications))
                    }
                    results.append(result(
                        name, servers: (servers.postgresVersion, servers.redisVersion), started: started, events: commits, duration: seconds,
                        eventsPerSecond: Double(commits) / seconds, errors: max(0, expected - notifications), extra: extra,
                        note: "commits only (no processor): single-row INSERT transactions, \(pattern.rawValue == "none" ? "no trigger" : "\(pattern.rawValue) notify pattern")",
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
