// The report as TAP (the Test Anything Protocol, version 13), which pg_prove users and prove-style harnesses
// read: one test point per check.

import Foundation
import PGEventsSystem

extension CheckReport {
    /// TAP 13: `1..N`, then `ok`/`not ok` per check (`# SKIP reason` for a skipped one; a warning is `ok` with
    /// its message as a `# ` diagnostic line), a YAML block with the message, payload, row and fix under each
    /// failure, and the counts as a final diagnostic.
    public func tap() -> String {
        var lines = ["TAP version 13", "1..\(results.count)"]
        for (index, result) in results.enumerated() {
            let number = index + 1
            let name = TextExcerpt.escaped("\(result.group): \(displayName(of: result))").replacingOccurrences(of: "#", with: "\\#")
            switch result.status {
            case .passed:
                lines.append("ok \(number) - \(name)")
            case .warning:
                lines.append("ok \(number) - \(name)")
                lines.append("# warning: " + TextExcerpt.escaped(result.message))
            case .skipped:
                lines.append("ok \(number) - \(name) # SKIP \(TextExcerpt.escaped(result.message))")
            case .failed:
                lines.append("not ok \(number) - \(name)")
                lines.append("  ---")
                lines.append("  message: \(Self.yamlString(result.message))")
                if let payload = result.payload {
                    lines.append("  payload: \(Self.yamlString(Self.shown(payload, limit: Self.detailLimit)))")
                }
                if let row = result.row { lines.append("  row: \(Self.yamlString(TextExcerpt.excerpt(row, limit: Self.detailLimit)))") }
                if let fix = result.fix { lines.append("  fix: \(Self.yamlString(fix))") }
                if let version = result.postgresVersion { lines.append("  postgres: \(Self.yamlString(version))") }
                lines.append("  ...")
            }
        }
        for reason in unavailable ?? [] { lines.append("# not checked: " + TextExcerpt.escaped(reason)) }
        let counts = CheckCounts(self)
        lines.append(
            "# \(counts.passed) passed, \(counts.failed) failed, \(counts.skipped) skipped, \(counts.warnings) warnings"
                + (layout.map { "; layout \($0)" } ?? ""))
        return lines.joined(separator: "\n")
    }

    /// A double-quoted YAML scalar on one line.
    static func yamlString(_ text: String) -> String {
        "\"" + TextExcerpt.escaped(text).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
