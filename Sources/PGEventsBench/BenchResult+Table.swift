import Foundation
import PGEventsSystem

extension BenchResult {
    /// Results as a table for a terminal: one line per scenario (events, seconds, events/s, end-to-end latency
    /// percentiles in microseconds, lost, duplicated, errors, note), its stages and extra figures indented beneath it, and a header
    /// line with the machine, the servers' versions and the git commit.
    public static func table(_ results: [BenchResult]) -> String {
        guard let first = results.first else { return "no results" }
        var lines = [header(results, first: first)]
        let width = max(12, results.map { TextExcerpt.escaped($0.scenario).count }.max() ?? 0)
        lines.append(
            "scenario".padding(toLength: width, withPad: " ", startingAt: 0)
                + "    events       s    events/s   p50 µs   p90 µs   p99 µs p99.9 µs   max µs  lost   dup  errors  note")
        for result in results {
            let name = TextExcerpt.escaped(result.scenario).padding(toLength: width, withPad: " ", startingAt: 0)
            var line =
                name + String(result.events).leftPadded(to: 10, with: " ")
                + String(format: "%8.2f", result.durationSeconds)
                + BenchComparison.figure(result.eventsPerSecond).leftPadded(to: 12, with: " ")
            line += latencyColumns(result.latencyMicroseconds)
            line +=
                String(result.lost).leftPadded(to: 6, with: " ") + String(result.duplicated).leftPadded(to: 6, with: " ")
                + String(result.errors).leftPadded(to: 8, with: " ")
            if let note = result.note, !note.isEmpty { line += "  " + TextExcerpt.excerpt(note, limit: 120) }
            lines.append(line)
            for stage in result.stages.keys.sorted(by: { (stageOrder($0), $0) < (stageOrder($1), $1) }) {
                guard let latency = result.stages[stage] else { continue }
                let label = ("  " + TextExcerpt.escaped(stage)).padding(toLength: width + 30, withPad: " ", startingAt: 0)
                lines.append(label + latencyColumns(latency))
            }
            let extras = result.extra.sorted { $0.key < $1.key }.map {
                "\(TextExcerpt.escaped($0.key)) \(BenchComparison.figure($0.value))"
            }
            if !extras.isEmpty { lines.append("  " + extras.joined(separator: ", ")) }
        }
        if results.contains(where: { $0.lost > 0 || $0.duplicated > 0 }) {
            lines.append(
                "LOST OR DUPLICATED: "
                    + results.filter { $0.lost > 0 || $0.duplicated > 0 }.map { TextExcerpt.escaped($0.scenario) }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    /// Stages in the order an event passes them; others after, by name.
    static func stageOrder(_ name: String) -> Int {
        ["commit→notified", "notified→queued", "queued→consumed", "commit→queued", "commit→consumed"].firstIndex(of: name) ?? 99
    }

    static func latencyColumns(_ latency: Latency?) -> String {
        guard let latency else { return String(repeating: " " + "-".leftPadded(to: 8, with: " "), count: 5) }
        return [latency.p50, latency.p90, latency.p99, latency.p999, latency.max]
            .map { " " + BenchComparison.figure($0).leftPadded(to: 8, with: " ") }.joined()
    }

    /// `2 cores, 23.4 GB, Debian …; PostgreSQL 15.18; Redis 7.0.15; commit 0123abcd; started 2026-…`
    /// (several values joined when the results differ).
    static func header(_ results: [BenchResult], first: BenchResult) -> String {
        func distinct(_ property: (BenchResult) -> String) -> String {
            var seen = Set<String>()
            return results.map(property).filter { seen.insert($0).inserted }.map(TextExcerpt.escaped).joined(separator: " / ")
        }
        let started = results.map(\.startedAt).min() ?? first.startedAt
        return distinct { "\($0.machine.cores) cores, \(BenchComparison.gigabytes($0.machine.memoryGB)), \($0.machine.os)" }
            + "; PostgreSQL \(distinct { $0.postgresVersion.isEmpty ? "-" : $0.postgresVersion })"
            + "; Redis \(distinct { $0.redisVersion.isEmpty ? "-" : $0.redisVersion })"
            + "; commit \(distinct { $0.gitCommit.map { String($0.prefix(12)) } ?? "unknown" })"
            + "; started \(timestamp(started))"
    }

    /// ISO 8601 in UTC, to the second.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
