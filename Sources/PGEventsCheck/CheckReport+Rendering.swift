// The three ways `pgevents check` writes its report: text for people, JSON for programs, JUnit XML for CI.
//
// Payloads are written by the user's triggers and can contain anything: newlines, control characters, markup,
// megabytes. The text report keeps one line per line (control characters shown as `\n`, `\u{1}`, …), and the
// JUnit report stays well-formed XML 1.0 (characters XML cannot carry are shown the same way).
import Foundation
import PGEventsSystem

extension CheckReport {
    // MARK: Text

    /// The report for a terminal: a header, the checks grouped by table (or `migrations`, `catalog`,
    /// `replication`), what each trigger was seen to send, and the counts with `PASSED` or `FAILED`.
    ///
    /// - Parameter color: wrap ✓ and `PASSED` in green, ✗ and `FAILED` in red (ANSI); false writes no escape code.
    public func text(color: Bool = false) -> String {
        let paint = ReportPaint(enabled: color)
        var lines: [String] = []

        var header = "pgevents check \(TextExcerpt.escaped(source))"
        if !postgresVersions.isEmpty {
            header += " — PostgreSQL " + postgresVersions.map(TextExcerpt.escaped).joined(separator: ", ")
        }
        lines.append(header)

        for (group, results) in groupedResults {
            lines.append("")
            lines.append(TextExcerpt.escaped(group))
            for result in results {
                let name = TextExcerpt.escaped(displayName(of: result))
                let message = TextExcerpt.escaped(result.message)
                switch result.status {
                case .passed:
                    lines.append("  \(paint.green("✓")) \(name)")
                case .failed:
                    lines.append("  \(paint.red("✗")) \(name)" + (message.isEmpty ? "" : ": \(message)"))
                    lines += detailLines(of: result).map { "    " + $0 }
                case .skipped:
                    lines.append("  – \(name) (skipped" + (message.isEmpty ? ")" : ": \(message))"))
                case .warning:
                    lines.append("  ! \(name)" + (message.isEmpty ? "" : ": \(message)"))
                    lines += detailLines(of: result).map { "    " + $0 }
                }
            }
        }

        if !observed.isEmpty {
            lines.append("")
            lines.append("What each trigger sends:")
            for sample in observed {
                let table = TextExcerpt.escaped(sample.table)
                let trigger = TextExcerpt.escaped(sample.trigger)
                let operation = TextExcerpt.escaped(sample.operation.uppercased())
                let channel = TextExcerpt.escaped(sample.channel)
                let payload = Self.shown(sample.samplePayload, limit: Self.observedPayloadLimit)
                lines.append("  \(table) \(trigger) \(operation) → \(channel): \(payload)")
            }
        }

        let counts = CheckCounts(self)
        lines.append("")
        for reason in unavailable ?? [] {
            lines.append("Not checked: " + TextExcerpt.escaped(reason))
        }
        if let layout {
            lines.append("Migrations read as: \(TextExcerpt.escaped(layout))")
        }
        lines.append(
            "\(counts.checks) \(counts.checks == 1 ? "check" : "checks"): \(counts.passed) passed, \(counts.failed) failed, "
                + "\(counts.skipped) skipped"
                + (counts.warnings > 0 ? ", \(counts.warnings) \(counts.warnings == 1 ? "warning" : "warnings")" : "")
                + " in \(Self.decimal(durationSeconds, places: 1)) s")
        lines.append(passed ? paint.green("PASSED") : failures.isEmpty ? paint.red("INCOMPLETE") : paint.red("FAILED"))
        return lines.joined(separator: "\n")
    }

    // MARK: JSON

    /// The report as JSON (pretty-printed, sorted keys): its own fields, plus `passed` and
    /// `summary` {`checks`, `passed`, `failed`, `skipped`}. Decoding it as a `CheckReport` gives the report back.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(CheckReportDocument(report: self))
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: JUnit

    /// The report as JUnit XML, which CI systems show as test results: one `<testsuite>` per group, one
    /// `<testcase>` per check, `<failure>` with the message, payload, row and fix, `<skipped>` with the reason.
    public func junit() -> String {
        let counts = CheckCounts(self)
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
        xml +=
            #"<testsuites name="pgevents check" tests="\#(counts.checks)" failures="\#(counts.failed)" "#
            + #"errors="0" skipped="\#(counts.skipped)" time="\#(Self.decimal(durationSeconds, places: 3))">"# + "\n"
        for (group, results) in groupedResults {
            let groupCounts = CheckCounts(results)
            let groupName = ReportEscaping.xml(group)
            xml +=
                #"  <testsuite name="\#(groupName)" tests="\#(groupCounts.checks)" failures="\#(groupCounts.failed)" "#
                + #"errors="0" skipped="\#(groupCounts.skipped)">"# + "\n"
            for result in results {
                let testcase = #"    <testcase classname="\#(groupName)" name="\#(ReportEscaping.xml(displayName(of: result)))""#
                switch result.status {
                case .passed:
                    xml += testcase + "/>\n"
                case .failed:
                    let body = ([result.message] + detailLines(of: result)).joined(separator: "\n")
                    xml += testcase + ">\n"
                    xml +=
                        #"      <failure message="\#(ReportEscaping.xml(result.message))">"#
                        + ReportEscaping.xml(body, inAttribute: false) + "</failure>\n"
                    xml += "    </testcase>\n"
                case .skipped:
                    xml += testcase + ">\n"
                    xml += #"      <skipped message="\#(ReportEscaping.xml(result.message))"/>"# + "\n"
                    xml += "    </testcase>\n"
                case .warning:
                    // JUnit has no warnings: a passing test case whose output says what was found.
                    let body = (["warning: " + result.message] + detailLines(of: result)).joined(separator: "\n")
                    xml += testcase + ">\n"
                    xml += "      <system-out>" + ReportEscaping.xml(body, inAttribute: false) + "</system-out>\n"
                    xml += "    </testcase>\n"
                }
            }
            xml += "  </testsuite>\n"
        }
        xml += "</testsuites>\n"
        return xml
    }

    // MARK: Shared pieces

    /// How much of a failure's payload (and row) the text and JUnit reports show, in characters.
    static let detailLimit = 200
    /// How much of an observed sample payload the text report shows, in characters.
    static let observedPayloadLimit = 120

    /// The results by group, groups in the order they first appear, results in report order.
    var groupedResults: [(group: String, results: [CheckResult])] {
        var order: [String] = []
        var byGroup: [String: [CheckResult]] = [:]
        for result in results {
            if byGroup[result.group] == nil { order.append(result.group) }
            byGroup[result.group, default: []].append(result)
        }
        return order.map { ($0, byGroup[$0] ?? []) }
    }

    /// The check's name, with ` [PostgreSQL 15.18]` when the report covers more than one version.
    func displayName(of result: CheckResult) -> String {
        guard let version = result.postgresVersion, postgresVersions.count > 1 else { return result.name }
        return "\(result.name) [PostgreSQL \(version)]"
    }

    /// `payload: …`, `row: …`, `fix: …` for those a result has, each on one line (payload and row cut).
    func detailLines(of result: CheckResult) -> [String] {
        var lines: [String] = []
        if let payload = result.payload { lines.append("payload: " + Self.shown(payload, limit: Self.detailLimit)) }
        if let row = result.row { lines.append("row: " + TextExcerpt.excerpt(row, limit: Self.detailLimit)) }
        if let fix = result.fix { lines.append("fix: " + TextExcerpt.escaped(fix)) }
        return lines
    }

    /// A payload as the reports show it: `(empty)` for an empty one (PostgreSQL sends NULL as empty too),
    /// else its first `limit` characters on one line.
    static func shown(_ payload: String, limit: Int) -> String {
        payload.isEmpty ? "(empty)" : TextExcerpt.excerpt(payload, limit: limit)
    }

    /// `value` with `places` decimals, `.` as the separator whatever the locale; 0 when not finite.
    static func decimal(_ value: Double, places: Int) -> String {
        String(format: "%.\(places)f", value.isFinite ? value : 0)
    }
}

/// How many checks passed, failed and were skipped: the JSON `summary`, and the counts of the other formats.
struct CheckCounts: Encodable, Hashable {
    var checks = 0
    var passed = 0
    var failed = 0
    var skipped = 0
    /// Passed with something worth knowing: counted apart from `passed`.
    var warnings = 0

    init(_ results: [CheckResult]) {
        checks = results.count
        for result in results {
            switch result.status {
            case .passed: passed += 1
            case .failed: failed += 1
            case .skipped: skipped += 1
            case .warning: warnings += 1
            }
        }
    }

    init(_ report: CheckReport) { self.init(report.results) }
}

/// What `json()` encodes: the report's own fields, then `passed` and `summary` in the same object.
private struct CheckReportDocument: Encodable {
    var report: CheckReport

    enum CodingKeys: String, CodingKey {
        case passed, summary
    }

    func encode(to encoder: any Encoder) throws {
        // The report's synthesized encoding writes its fields into the top-level object; the keys added here
        // go into that same object.
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(report.passed, forKey: .passed)
        try container.encode(CheckCounts(report), forKey: .summary)
    }
}

/// Painting for the text report: ANSI colors, or nothing.
private struct ReportPaint {
    var enabled: Bool

    func green(_ text: String) -> String { enabled ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
    func red(_ text: String) -> String { enabled ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
}
