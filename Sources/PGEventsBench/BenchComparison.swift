import Foundation
import PGEventsSystem

/// Current benchmark results compared with a stored baseline, scenario by scenario (matched by `scenario`):
/// throughput (`events_per_s`, lower is worse) and p99 latency (`latency_us.p99`, higher is worse), each a
/// regression when it is worse than the baseline's by more than `maxRegressionPercent` percent.
///
/// A current result that lost or duplicated an event fails whatever its figures. Scenarios run on one side only
/// are listed, not failed (a new scenario has no baseline yet; a scenario left out of a run is not a regression).
///
/// Machines differ from run to run, and figures only compare on like machines: ``machines`` says whether the
/// cores, memory, operating system, PostgreSQL and Redis versions match, and the text says so prominently when
/// they do not. The figures are still compared and a regression still fails: a gate that goes quiet whenever
/// the runner changes would be no gate; the remedy for a different machine is a baseline recorded on it.
public struct BenchComparison: Sendable {
    /// What a row compares.
    public enum Metric: String, Sendable, Hashable, CaseIterable {
        /// `events_per_s`: lower is worse.
        case throughput = "events/s"
        /// `latency_us.p99` in microseconds: higher is worse.
        case p99 = "p99 µs"

        /// Whether a higher figure is better.
        public var higherIsBetter: Bool { self == .throughput }
    }

    /// How one figure compares.
    public enum Verdict: String, Sendable, Hashable {
        /// Within the threshold (better, or worse by at most `maxRegressionPercent`).
        case ok
        /// Worse than the baseline by more than `maxRegressionPercent` percent.
        case regressed
        /// Not comparable: the baseline's figure is zero or not finite, or the current one is not finite.
        case notComparable = "not comparable"
    }

    /// One figure of one scenario on both sides.
    public struct Row: Sendable, Hashable {
        public var scenario: String
        public var metric: Metric
        public var baseline: Double
        public var current: Double
        /// `current / baseline` (nil when not comparable).
        public var ratio: Double?
        /// How much worse the current figure is, in percent of the baseline (negative: better).
        public var worsePercent: Double?
        public var verdict: Verdict
    }

    /// A current result that lost or duplicated events: always a failure.
    public struct IntegrityFailure: Sendable, Hashable {
        public var scenario: String
        public var lost: Int
        public var duplicated: Int
    }

    /// Whether the two sides ran on like machines with like servers.
    public struct MachineMatch: Sendable, Hashable {
        /// One line per property that differs: `cores: 2 (baseline) vs 4 (current)`.
        public var differences: [String]
        /// The current side, in words: `2 cores, 23.4 GB, Debian GNU/Linux 12 (bookworm); PostgreSQL 15.18; Redis 7.0.15`.
        public var current: String

        public var matches: Bool { differences.isEmpty }
    }

    public var rows: [Row]
    /// Scenarios in the baseline that the current results do not have (not a failure).
    public var onlyInBaseline: [String]
    /// Scenarios in the current results that the baseline does not have (not a failure).
    public var onlyInCurrent: [String]
    public var integrityFailures: [IntegrityFailure]
    /// Scenarios compared although they ran with other settings: `burst: burst 100 (baseline 100000)`.
    public var settingsDifferences: [String]
    public var machines: MachineMatch
    public var maxRegressionPercent: Double

    /// The rows that regressed.
    public var regressions: [Row] { rows.filter { $0.verdict == .regressed } }

    /// No regression beyond the threshold and nothing lost or duplicated.
    public var passed: Bool { regressions.isEmpty && integrityFailures.isEmpty }

    /// Compares `current` with `baseline`. A scenario that appears more than once on a side is compared by its
    /// first result. `maxRegressionPercent` is how much worse (in percent of the baseline) a figure may be.
    public init(current: [BenchResult], baseline: [BenchResult], maxRegressionPercent: Double) {
        self.maxRegressionPercent = maxRegressionPercent
        var baselineByScenario: [String: BenchResult] = [:]
        for result in baseline where baselineByScenario[result.scenario] == nil { baselineByScenario[result.scenario] = result }
        var seen = Set<String>()
        var rows: [Row] = []
        var onlyInCurrent: [String] = []
        var settingsDifferences: [String] = []
        for result in current where seen.insert(result.scenario).inserted {
            guard let stored = baselineByScenario[result.scenario] else {
                onlyInCurrent.append(result.scenario)
                continue
            }
            let changed = Set(result.settings.keys).union(stored.settings.keys).sorted().filter {
                result.settings[$0] != stored.settings[$0]
            }
            if !changed.isEmpty {
                settingsDifferences.append(
                    "\(result.scenario): "
                        + changed.map { "\($0) \(result.settings[$0] ?? "-") (baseline \(stored.settings[$0] ?? "-"))" }.joined(
                            separator: ", "))
            }
            rows.append(
                Self.row(
                    result.scenario, .throughput, baseline: stored.eventsPerSecond, current: result.eventsPerSecond,
                    maxRegressionPercent: maxRegressionPercent))
            if let was = stored.latencyMicroseconds?.p99, let now = result.latencyMicroseconds?.p99 {
                rows.append(Self.row(result.scenario, .p99, baseline: was, current: now, maxRegressionPercent: maxRegressionPercent))
            }
        }
        var inBaseline = Set<String>()
        self.onlyInBaseline = baseline.map(\.scenario).filter { !seen.contains($0) && inBaseline.insert($0).inserted }
        self.rows = rows
        self.onlyInCurrent = onlyInCurrent
        self.settingsDifferences = settingsDifferences
        self.integrityFailures = current.filter { $0.lost > 0 || $0.duplicated > 0 }
            .map { IntegrityFailure(scenario: $0.scenario, lost: $0.lost, duplicated: $0.duplicated) }
        self.machines = Self.compareMachines(current: current, baseline: baseline)
    }

    static func row(_ scenario: String, _ metric: Metric, baseline: Double, current: Double, maxRegressionPercent: Double) -> Row {
        guard baseline.isFinite, baseline > 0, current.isFinite, current >= 0 else {
            return Row(
                scenario: scenario, metric: metric, baseline: baseline, current: current, ratio: nil, worsePercent: nil,
                verdict: .notComparable)
        }
        let ratio = current / baseline
        let worse = (metric.higherIsBetter ? 1 - ratio : ratio - 1) * 100
        return Row(
            scenario: scenario, metric: metric, baseline: baseline, current: current, ratio: ratio, worsePercent: worse,
            verdict: worse > maxRegressionPercent ? .regressed : .ok)
    }

    /// Memory sizes within this fraction of each other are the same machine (the figure is rounded, and a kernel
    /// or firmware update moves it a little).
    static let memoryTolerance = 0.05

    static func compareMachines(current: [BenchResult], baseline: [BenchResult]) -> MachineMatch {
        func values(_ results: [BenchResult], _ property: (BenchResult) -> String) -> [String] {
            var seen = Set<String>()
            return results.map(property).filter { seen.insert($0).inserted }
        }
        func words(_ values: [String]) -> String { values.isEmpty ? "none" : values.joined(separator: ", ") }
        var differences: [String] = []
        let properties: [(String, (BenchResult) -> String)] = [
            ("cores", { String($0.machine.cores) }),
            ("os", { $0.machine.os }),
            ("PostgreSQL", { $0.postgresVersion.isEmpty ? "unknown" : $0.postgresVersion }),
            ("Redis", { $0.redisVersion.isEmpty ? "unknown" : $0.redisVersion }),
        ]
        if !current.isEmpty, !baseline.isEmpty {
            for (name, property) in properties {
                let was = values(baseline, property)
                let now = values(current, property)
                if Set(was) != Set(now) { differences.append("\(name): \(words(was)) (baseline) vs \(words(now)) (current)") }
            }
            let wasMemory = baseline.map(\.machine.memoryGB)
            let nowMemory = current.map(\.machine.memoryGB)
            let all = wasMemory + nowMemory
            if let low = all.min(), let high = all.max(), high > low * (1 + memoryTolerance) {
                differences.append(
                    "memory: \(words(values(baseline) { Self.gigabytes($0.machine.memoryGB) })) (baseline) vs "
                        + "\(words(values(current) { Self.gigabytes($0.machine.memoryGB) })) (current)")
            }
        }
        let description =
            current.first.map { result in
                "\(result.machine.cores) cores, \(gigabytes(result.machine.memoryGB)), \(result.machine.os); "
                    + "PostgreSQL \(result.postgresVersion.isEmpty ? "unknown" : result.postgresVersion); "
                    + "Redis \(result.redisVersion.isEmpty ? "unknown" : result.redisVersion)"
            } ?? "no results"
        return MachineMatch(differences: differences, current: description)
    }

    static func gigabytes(_ value: Double) -> String { String(format: "%.1f GB", value) }

    // MARK: Text

    /// The comparison for a terminal: the machines, one line per figure, what is on one side only, what lost or
    /// duplicated events, and a last line `PASSED` or `FAILED` with why.
    public func text() -> String {
        var lines: [String] = []
        let limit = Self.percent(maxRegressionPercent)
        if machines.matches {
            lines.append("Machines match: \(machines.current)")
        } else {
            lines.append("!!! MACHINES DIFFER: the figures are compared anyway, but a difference may be the machine's, not the code's.")
            for difference in machines.differences { lines.append("!!!   \(TextExcerpt.escaped(difference))") }
            lines.append("!!! Record a baseline on this machine: pgevents bench baseline update --from RESULTS.json --to FILE")
        }
        lines.append("Compared with the baseline (a regression is a figure worse by more than \(limit)):")
        if rows.isEmpty {
            lines.append("  no scenario in common")
        } else {
            let width = max(20, rows.map { TextExcerpt.escaped($0.scenario).count }.max() ?? 0)
            lines.append(
                "  " + "scenario".padding(toLength: width, withPad: " ", startingAt: 0)
                    + "  metric        baseline       current   ratio  verdict")
            for row in rows {
                let name = TextExcerpt.escaped(row.scenario).padding(toLength: width, withPad: " ", startingAt: 0)
                let metric = row.metric.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                let ratio = row.ratio.map { String(format: "%5.2f×", $0) } ?? "    - "
                let verdict: String
                switch row.verdict {
                case .ok: verdict = "ok" + (row.worsePercent.map { " (\(Self.change($0)))" } ?? "")
                case .regressed: verdict = "REGRESSED" + (row.worsePercent.map { " (\(Self.change($0)), limit \(limit))" } ?? "")
                case .notComparable: verdict = "not comparable (baseline \(Self.figure(row.baseline)))"
                }
                lines.append(
                    "  \(name)  \(metric) " + Self.figure(row.baseline).leftPadded(to: 13, with: " ") + " "
                        + Self.figure(row.current).leftPadded(to: 13, with: " ") + "  \(ratio)  \(verdict)")
            }
        }
        if !settingsDifferences.isEmpty {
            lines.append("Run with other settings than the baseline (compared anyway; a difference may be the settings'):")
            for difference in settingsDifferences { lines.append("  " + TextExcerpt.escaped(difference)) }
        }
        if !onlyInBaseline.isEmpty {
            lines.append("Only in the baseline (not run now): " + onlyInBaseline.map(TextExcerpt.escaped).joined(separator: ", "))
        }
        if !onlyInCurrent.isEmpty {
            lines.append("Only in this run (no baseline yet): " + onlyInCurrent.map(TextExcerpt.escaped).joined(separator: ", "))
        }
        for failure in integrityFailures {
            lines.append(
                "LOST OR DUPLICATED: \(TextExcerpt.escaped(failure.scenario)) lost \(failure.lost), duplicated \(failure.duplicated)")
        }
        if passed {
            lines.append(
                "PASSED: no figure worse than the baseline by more than \(limit)" + (machines.matches ? "" : " (on a different machine)"))
        } else {
            var reasons: [String] = []
            if !regressions.isEmpty {
                reasons.append(
                    "\(regressions.count) figure\(regressions.count == 1 ? "" : "s") worse than the baseline by more than \(limit)")
            }
            if !integrityFailures.isEmpty {
                reasons.append("\(integrityFailures.count) scenario\(integrityFailures.count == 1 ? "" : "s") lost or duplicated events")
            }
            lines.append("FAILED: " + reasons.joined(separator: "; ") + (machines.matches ? "" : " (on a different machine)"))
        }
        return lines.joined(separator: "\n")
    }

    /// `12,345` for large figures, `123.4` and `1.23` for smaller ones.
    static func figure(_ value: Double) -> String {
        guard value.isFinite else { return String(value) }
        if abs(value) >= 1000 {
            let digits = String(Int64(value.rounded()).magnitude)
            var grouped = ""
            for (index, digit) in digits.enumerated() {
                if index > 0, (digits.count - index) % 3 == 0 { grouped.append(",") }
                grouped.append(digit)
            }
            return (value < 0 ? "-" : "") + grouped
        }
        return String(format: abs(value) >= 10 ? "%.1f" : "%.2f", value)
    }

    /// `10%`, `2.5%`.
    static func percent(_ value: Double) -> String {
        value == value.rounded() ? String(format: "%.0f%%", value) : String(format: "%g%%", value)
    }

    /// `12.3% worse`, `4.0% better`.
    static func change(_ worsePercent: Double) -> String {
        worsePercent > 0
            ? String(format: "%.1f%% worse", worsePercent)
            : worsePercent < 0 ? String(format: "%.1f%% better", -worsePercent) : "same"
    }
}
