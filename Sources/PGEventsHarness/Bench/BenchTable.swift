import Foundation

extension BenchResult {
    /// Results as a readable table: one line per result (events, time, events/s, lost, duplicated, latency
    /// percentiles in ms), then its stages, and its extra figures; the servers, machine and commit once at the top.
    public static func table(_ results: [BenchResult]) -> String {
        guard let first = results.first else { return "no results" }
        var lines: [String] = []
        lines.append("PostgreSQL \(first.postgresVersion), Redis \(first.redisVersion); \(first.machine.cores) cores, \(first.machine.memoryGB) GB, \(first.machine.os); commit \(first.gitCommit.map { String($0.prefix(12)) } ?? "unknown")")
        lines.append(pad("scenario", 26) + lpad("events", 9) + lpad("time", 10) + lpad("events/s", 11) + lpad("lost", 6) + lpad("dup", 5)
                     + lpad("p50 ms", 9) + lpad("p90", 8) + lpad("p99", 8) + lpad("p99.9", 8) + lpad("max", 8))
        for result in results {
            var line = pad(result.scenario, 26) + lpad(String(result.events), 9) + lpad(String(format: "%.2f s", result.durationSeconds), 10)
                + lpad(formatRate(result.eventsPerSecond), 11) + lpad(String(result.lost), 6) + lpad(String(result.duplicated), 5)
            if let latency = result.latencyMicroseconds { line += latencyColumns(latency) }
            lines.append(line)
            for (name, latency) in result.stages.sorted(by: { stageOrder($0.key) < stageOrder($1.key) }) {
                lines.append(pad("  " + name, 26) + String(repeating: " ", count: 41) + latencyColumns(latency))
            }
            let extras = result.extra.sorted { $0.key < $1.key }.map { "\($0.key) \(formatNumber($0.value))" }
            if !extras.isEmpty { lines.append("  " + extras.joined(separator: ", ")) }
            if result.errors > 0 { lines.append("  errors: \(result.errors)") }
            if let note = result.note { lines.append("  (\(note))") }
        }
        let failed = results.filter { $0.lost > 0 || $0.duplicated > 0 }
        lines.append(failed.isEmpty ? "nothing lost, nothing duplicated" : "LOST OR DUPLICATED in: \(failed.map(\.scenario).joined(separator: ", "))")
        return lines.joined(separator: "\n")
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text.padding(toLength: width, withPad: " ", startingAt: 0)
    }

    private static func lpad(_ text: String, _ width: Int) -> String {
        text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
    }

    private static func latencyColumns(_ latency: Latency) -> String {
        [(latency.p50, 9), (latency.p90, 8), (latency.p99, 8), (latency.p999, 8), (latency.max, 8)]
            .map { lpad(String(format: "%.3f", $0.0 / 1000), $0.1) }.joined()
    }

    private static func stageOrder(_ name: String) -> Int {
        ["commit→notified", "notified→queued", "queued→consumed", "commit→queued", "commit→consumed"].firstIndex(of: name) ?? 99
    }

    private static func formatRate(_ value: Double) -> String {
        value >= 10_000 ? String(format: "%.1fk", value / 1000) : String(format: "%.0f", value)
    }

    private static func formatNumber(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e9 { return String(Int(value)) }
        if abs(value) >= 100 { return String(format: "%.0f", value) }
        return String(format: "%.3g", value)
    }
}
