public import Foundation

extension FaultBench.Outcome {
    /// True when no fault lost or duplicated a job.
    public var passed: Bool { rows.allSatisfy(\.passed) }

    /// The table `pgevents bench faults` prints: a row per fault (sent, delivered, lost, duplicated, recovery and
    /// detection times, note), the lost and duplicated keys under it, and `PASSED` or `FAILED`.
    public func table(rate: Double) -> String {
        var lines = [
            String(format: "faults under load (%.0f events/s); lost and duplicated must be 0", rate),
            "fault                        sent  delivered  lost  dup  recovery  detection  note",
        ]
        for row in rows {
            let recovery = row.recoverySeconds.map { String(format: "%6.2f s", $0) } ?? "     - "
            let detection = row.detectionSeconds.map { String(format: "%6.2f s", $0) } ?? "     - "
            let name = row.fault.rawValue.padding(toLength: 26, withPad: " ", startingAt: 0)
            lines.append(
                name + String(format: " %6d %10d %5d %4d  ", row.sent, row.delivered, row.lost, row.duplicated)
                    + "\(recovery)  \(detection)  \(row.note)")
            if row.lost > 0 {
                lines.append(
                    "    lost keys: \(row.lostKeys.map(String.init).joined(separator: ", "))\(row.lost > row.lostKeys.count ? ", …" : "")")
            }
            if row.duplicated > 0 { lines.append("    duplicated keys: \(row.duplicatedKeys.map(String.init).joined(separator: ", "))") }
        }
        lines.append(passed ? "PASSED: nothing lost, nothing duplicated" : "FAILED")
        return lines.joined(separator: "\n")
    }

    /// A result per fault (`faults/<fault>`), as `--json` writes them and baselines compare them.
    public func results(rate: Double, heartbeatTimeout: Double, startedAt: Date) -> [BenchResult] {
        rows.map { row in
            var extra: [String: Double] = ["write_errors": Double(row.writeErrors)]
            if let recovery = row.recoverySeconds { extra["recovery_s"] = recovery }
            if let detection = row.detectionSeconds { extra["detection_s"] = detection }
            return BenchResult(
                scenario: "faults/\(row.fault.rawValue)", events: row.sent, durationSeconds: row.durationSeconds,
                eventsPerSecond: Double(row.sent) / max(row.durationSeconds, 0.001), lost: row.lost, duplicated: row.duplicated,
                errors: row.writeErrors, postgresVersion: postgresVersion, redisVersion: redisVersion,
                startedAt: startedAt, extra: extra, note: row.note,
                settings: ["rate": String(rate), "heartbeat_timeout_s": String(heartbeatTimeout)])
        }
    }
}
