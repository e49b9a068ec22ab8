import ArgumentParser
import Foundation
import FoundationXML
import Testing

@testable import PGEventsBench
@testable import PGEventsCLI
@testable import PGEventsHarness

/// Benchmark output: the comparison with a baseline, the results table, the HTML report, and the CLI options.
@Suite("Bench reports")
struct BenchReportTests {
    static let machine = BenchResult.Machine(cores: 2, memoryGB: 23.4, os: "Debian GNU/Linux 12 (bookworm)")
    static let started = Date(timeIntervalSince1970: 1_790_000_000)

    /// A result with the given figures (latency in microseconds; no latency when `p99` is nil).
    static func result(
        _ scenario: String, eventsPerSecond: Double = 1_000, p99: Double? = 2_000, lost: Int = 0, duplicated: Int = 0,
        machine: BenchResult.Machine = machine, postgres: String = "15.18", note: String? = nil,
        distribution: [BenchResult.LatencyPoint]? = nil
    ) -> BenchResult {
        BenchResult(
            scenario: scenario, events: 10_000, durationSeconds: 10_000 / eventsPerSecond, eventsPerSecond: eventsPerSecond,
            latencyMicroseconds: p99.map { .init(p50: $0 / 4, p90: $0 / 2, p99: $0, p999: $0 * 2, max: $0 * 3) },
            stages: p99 == nil ? [:] : ["commit→notified": .init(p50: 100, p90: 200, p99: 300, p999: 400, max: 500)],
            lost: lost, duplicated: duplicated, errors: 0, postgresVersion: postgres, redisVersion: "7.0.15", machine: machine,
            gitCommit: String(repeating: "ab", count: 20), startedAt: started, note: note, settings: ["rate": "1000"],
            distribution: distribution)
    }

    static let baseline = [
        Self.result("throughput", eventsPerSecond: 10_000, p99: nil), Self.result("latency", p99: 2_000), Self.result("replication"),
    ]

    // MARK: Comparison

    @Test("throughput lower than the baseline by more than the threshold is a regression")
    func throughputRegression() throws {
        let current = [Self.result("throughput", eventsPerSecond: 8_000, p99: nil), Self.result("latency"), Self.result("replication")]
        let comparison = BenchComparison(current: current, baseline: Self.baseline, maxRegressionPercent: 10)
        #expect(!comparison.passed)
        let row = try #require(comparison.regressions.first)
        #expect(comparison.regressions.count == 1)
        #expect(row.scenario == "throughput" && row.metric == .throughput)
        #expect(row.baseline == 10_000 && row.current == 8_000)
        #expect(abs((row.ratio ?? 0) - 0.8) < 1e-9)
        #expect(abs((row.worsePercent ?? 0) - 20) < 1e-9)
        let text = comparison.text()
        #expect(text.contains("10,000") && text.contains("8,000") && text.contains("0.80×"))
        #expect(text.contains("REGRESSED (20.0% worse, limit 10%)"))
        #expect(text.hasSuffix("FAILED: 1 figure worse than the baseline by more than 10%"))
    }

    @Test("p99 higher than the baseline by more than the threshold is a regression; within it is not")
    func p99Regression() throws {
        let current = [
            Self.result("throughput", eventsPerSecond: 10_000, p99: nil), Self.result("latency", p99: 2_400), Self.result("replication"),
        ]
        let strict = BenchComparison(current: current, baseline: Self.baseline, maxRegressionPercent: 10)
        let row = try #require(strict.regressions.first)
        #expect(strict.regressions.count == 1)
        #expect(row.scenario == "latency" && row.metric == .p99 && abs((row.ratio ?? 0) - 1.2) < 1e-9)
        #expect(strict.text().contains("1.20×"))
        let lenient = BenchComparison(current: current, baseline: Self.baseline, maxRegressionPercent: 25)
        #expect(lenient.passed && lenient.regressions.isEmpty)
    }

    @Test("figures within the threshold, and better ones, pass")
    func withinThreshold() {
        let current = [
            Self.result("throughput", eventsPerSecond: 9_100, p99: nil), Self.result("latency", eventsPerSecond: 2_000, p99: 2_150),
            Self.result("replication", p99: 1_000),
        ]
        let comparison = BenchComparison(current: current, baseline: Self.baseline, maxRegressionPercent: 10)
        #expect(comparison.passed)
        // throughput: one row each; p99 only where both sides have it (not for "throughput").
        #expect(
            comparison.rows.map { "\($0.scenario) \($0.metric.rawValue)" }
                == ["throughput events/s", "latency events/s", "latency p99 µs", "replication events/s", "replication p99 µs"])
        #expect(comparison.rows.allSatisfy { $0.verdict == .ok })
        let text = comparison.text()
        #expect(text.contains("9.0% worse") && text.contains("100.0% better") && text.contains("50.0% better"))
        #expect(text.hasSuffix("PASSED: no figure worse than the baseline by more than 10%"))
    }

    @Test("scenarios on one side only are listed, not failed")
    func missingScenarios() {
        let current = [Self.result("latency"), Self.result("writers/journal/4")]
        let comparison = BenchComparison(current: current, baseline: Self.baseline, maxRegressionPercent: 10)
        #expect(comparison.passed)
        #expect(comparison.onlyInBaseline == ["throughput", "replication"])
        #expect(comparison.onlyInCurrent == ["writers/journal/4"])
        let text = comparison.text()
        #expect(text.contains("Only in the baseline (not run now): throughput, replication"))
        #expect(text.contains("Only in this run (no baseline yet): writers/journal/4"))
    }

    @Test("a scenario run with other settings than its baseline is compared, and the differences are listed")
    func settingsDiffer() {
        var current = Self.result("latency", p99: 2_000)
        current.settings = ["rate": "500", "pipeline": "rules"]
        let comparison = BenchComparison(current: [current], baseline: Self.baseline, maxRegressionPercent: 10)
        #expect(comparison.passed)
        #expect(comparison.settingsDifferences == ["latency: pipeline rules (baseline -), rate 500 (baseline 1000)"])
        #expect(comparison.text().contains("Run with other settings than the baseline"))
        #expect(
            BenchComparison(current: [Self.result("latency")], baseline: Self.baseline, maxRegressionPercent: 10).settingsDifferences
                .isEmpty)
    }

    @Test("different machines are said prominently, and the figures are still compared")
    func machineMismatch() {
        let other = BenchResult.Machine(cores: 4, memoryGB: 16, os: "Ubuntu 24.04 LTS")
        let current = [Self.result("latency", p99: 3_000, machine: other, postgres: "17.2")]
        let comparison = BenchComparison(current: current, baseline: Self.baseline, maxRegressionPercent: 10)
        #expect(!comparison.machines.matches)
        #expect(comparison.machines.differences.contains("cores: 2 (baseline) vs 4 (current)"))
        #expect(comparison.machines.differences.contains("PostgreSQL: 15.18 (baseline) vs 17.2 (current)"))
        #expect(comparison.machines.differences.contains("memory: 23.4 GB (baseline) vs 16.0 GB (current)"))
        #expect(comparison.machines.differences.contains { $0.hasPrefix("os:") })
        let text = comparison.text()
        #expect(text.hasPrefix("!!! MACHINES DIFFER"))
        #expect(!comparison.passed && text.hasSuffix("(on a different machine)"))

        // The same machine, memory read a little differently: a match.
        let same = BenchComparison(
            current: [Self.result("latency", machine: .init(cores: 2, memoryGB: 23.5, os: Self.machine.os))],
            baseline: Self.baseline, maxRegressionPercent: 10)
        #expect(same.machines.matches)
        #expect(same.text().hasPrefix("Machines match: 2 cores, 23.5 GB, Debian GNU/Linux 12 (bookworm); PostgreSQL 15.18; Redis 7.0.15"))
    }

    @Test("a current result that lost or duplicated events fails, whatever its figures")
    func lostFails() {
        let current = [
            Self.result("throughput", eventsPerSecond: 10_000, p99: nil), Self.result("latency", lost: 3),
            Self.result("faults/kill", duplicated: 1),
        ]
        let comparison = BenchComparison(current: current, baseline: Self.baseline, maxRegressionPercent: 10)
        #expect(comparison.regressions.isEmpty)
        #expect(!comparison.passed)
        #expect(comparison.integrityFailures.map(\.scenario) == ["latency", "faults/kill"])
        let text = comparison.text()
        #expect(text.contains("LOST OR DUPLICATED: latency lost 3, duplicated 0"))
        #expect(text.hasSuffix("FAILED: 2 scenarios lost or duplicated events"))
    }

    @Test("a baseline figure of zero is not comparable, not a division by zero")
    func zeroBaseline() {
        let comparison = BenchComparison(
            current: [Self.result("x", eventsPerSecond: 5)], baseline: [Self.result("x", eventsPerSecond: 0)], maxRegressionPercent: 10)
        #expect(comparison.rows.first?.verdict == .notComparable)
        #expect(comparison.passed)
    }

    // MARK: Table

    @Test("the table has a line per scenario, its stages, and the machine, versions and commit")
    func table() {
        let text = BenchResult.table([Self.result("latency", note: "line\none"), Self.result("throughput", p99: nil)])
        let lines = text.split(separator: "\n").map(String.init)
        #expect(
            lines[0].hasPrefix(
                "2 cores, 23.4 GB, Debian GNU/Linux 12 (bookworm); PostgreSQL 15.18; Redis 7.0.15; commit abababababab; started "))
        #expect(lines.contains { $0.hasPrefix("latency ") && $0.contains("2,000") && $0.hasSuffix(#"line\none"#) })
        #expect(lines.contains { $0.hasPrefix("  commit→notified") })
        #expect(lines.contains { $0.hasPrefix("throughput ") && $0.contains("       -") })
        #expect(BenchResult.table([]) == "no results")
    }

    // MARK: HTML

    static func parse(_ html: String) throws -> XMLElement {
        let document = try XMLDocument(xmlString: html, options: [])
        return try #require(document.rootElement())
    }

    static func elements(_ element: XMLElement, named name: String) -> [XMLElement] {
        let children = (element.children ?? []).compactMap { $0 as? XMLElement }
        return children.filter { $0.localName == name } + children.flatMap { elements($0, named: name) }
    }

    static let distribution: [BenchResult.LatencyPoint] = [
        .init(percentile: 0, value: 300), .init(percentile: 50, value: 800), .init(percentile: 90, value: 1_200),
        .init(percentile: 99, value: 2_000), .init(percentile: 99.9, value: 4_000), .init(percentile: 100, value: 6_000),
    ]

    @Test("the HTML report is XML, with a header, the table, and one line per series on one chart")
    func html() throws {
        let results = [
            Self.result("latency", distribution: Self.distribution), Self.result("throughput", p99: nil),
            Self.result("replication", distribution: Self.distribution.map { .init(percentile: $0.percentile, value: $0.value * 2) }),
        ]
        let html = BenchHTML.render(results)
        let root = try Self.parse(html)
        #expect(root.localName == "html")
        #expect(Self.elements(root, named: "svg").count == 1)
        let lines = Self.elements(root, named: "polyline")
        #expect(lines.count == 2)
        let points = lines.map { line in (line.attributes ?? []).first { $0.name == "points" }?.stringValue ?? "" }
        #expect(points.map { $0.split(separator: " ").count } == [Self.distribution.count, Self.distribution.count])
        let texts = Self.elements(root, named: "text").compactMap(\.stringValue)
        for tick in ["50%", "90%", "99%", "99.9%"] { #expect(texts.contains(tick)) }
        #expect(texts.contains("percentile") && texts.contains("latency (ms)"))
        #expect(texts.contains("latency") && texts.contains("replication"))  // the legend
        let rows = Self.elements(root, named: "tr")
        #expect(rows.contains { $0.stringValue?.contains("throughput") == true })
        let header = try #require(Self.elements(root, named: "dl").first?.stringValue)
        #expect(
            header.contains("2 cores") && header.contains("15.18") && header.contains("7.0.15")
                && header.contains(String(repeating: "ab", count: 20)) && header.contains("rate = 1000"))
        #expect(
            !html.contains("<script") && !html.contains("src=") && !html.contains("href=") && !html.contains("http://www.w3.org/1999/xlink")
        )
    }

    @Test("one series: no legend; microsecond latencies on a µs axis")
    func htmlOneSeries() throws {
        let small = Self.distribution.map { BenchResult.LatencyPoint(percentile: $0.percentile, value: $0.value / 100) }
        let root = try Self.parse(BenchHTML.render([Self.result("micro/x", p99: 20, distribution: small)]))
        #expect(Self.elements(root, named: "polyline").count == 1)
        let texts = Self.elements(root, named: "text").compactMap(\.stringValue)
        #expect(texts.contains("latency (µs)") && !texts.contains("micro/x"))
    }

    @Test("text in the HTML report is escaped")
    func htmlEscapes() throws {
        let note = "a <b>bold</b> & \"quoted\" note\u{1}"
        let html = BenchHTML.render([Self.result("writers/<none>/4", note: note, distribution: Self.distribution)])
        #expect(!html.contains("<b>") && html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"))
        let root = try Self.parse(html)
        let cells = Self.elements(root, named: "td").compactMap(\.stringValue)
        #expect(cells.contains("a <b>bold</b> & \"quoted\" note\\u{1}"))
        #expect(cells.contains("writers/<none>/4"))
    }

    @Test("results without a distribution have no plot; no results is a page that says so")
    func htmlWithoutPlot() throws {
        let root = try Self.parse(BenchHTML.render([Self.result("throughput", p99: nil)]))
        #expect(Self.elements(root, named: "svg").isEmpty)
        #expect(Self.elements(root, named: "tr").count == 4)  // the results table and the settings table: a header row and the result each
        let empty = try Self.parse(BenchHTML.render([]))
        #expect(Self.elements(empty, named: "table").isEmpty)
        #expect(empty.stringValue?.contains("No results.") == true)
    }

    @Test("the plot's x axis is log(1/(1−p)) and its y ticks are round")
    func plotScales() {
        #expect(BenchHTML.logPercentile(0, cap: 3) == 0)
        #expect(abs(BenchHTML.logPercentile(99, cap: 3) - 2) < 1e-9)
        #expect(BenchHTML.logPercentile(99.99, cap: 3) == 3)
        #expect(BenchHTML.logPercentile(100, cap: 3) == 3)
        #expect(BenchHTML.niceTicks(upTo: 6) == [0, 2, 4, 6])
        #expect(BenchHTML.niceTicks(upTo: 0) == [0, 1])
        #expect(BenchHTML.niceTicks(upTo: 0.37).last.map { $0 >= 0.37 } == true)
    }

    // MARK: Options

    @Test("--max-regression needs --baseline and a percentage from 0 to 1000")
    func optionValidation() throws {
        #expect(throws: (any Error).self) { try BenchOutputOptions.parse(["--max-regression", "5"]) }
        #expect(throws: (any Error).self) { try BenchOutputOptions.parse(["--baseline", "b.json", "--max-regression", "1001"]) }
        #expect(throws: (any Error).self) { try BenchOutputOptions.parse(["--baseline", "b.json", "--max-regression=-1"]) }
        #expect(throws: (any Error).self) { try BenchOutputOptions.parse(["--baseline", "b.json", "--max-regression", "nan"]) }
        #expect(throws: (any Error).self) { try BenchOutputOptions.parse(["--json", ""]) }
        let options = try BenchOutputOptions.parse(["--baseline", "b.json"])
        #expect(options.maxRegressionPercent == BenchOutputOptions.defaultMaxRegression)
        #expect(try BenchOutputOptions.parse(["--baseline", "b.json", "--max-regression", "0"]).maxRegressionPercent == 0)
        #expect(try BenchOutputOptions.parse(["--baseline", "b.json", "--max-regression", "1000"]).maxRegressionPercent == 1000)
        #expect(try BenchOutputOptions.parse([]).baseline == nil)
    }

    @Test("emit writes the files, and returns 1 on a regression and 0 without one")
    func emit() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let baseline = directory + "/baseline.json"
        try BenchResult.json(Self.baseline).write(toFile: baseline, atomically: true, encoding: .utf8)

        let options = try BenchOutputOptions.parse([
            "--json", directory + "/r.json", "--html", directory + "/r.html", "--baseline", baseline,
        ])
        let worse = [Self.result("throughput", eventsPerSecond: 5_000, p99: nil), Self.result("latency", distribution: Self.distribution)]
        #expect(try options.emit(worse) == 1)
        let written = try BenchResult.decode(json: Data(contentsOf: URL(fileURLWithPath: directory + "/r.json")))
        #expect(written.map(\.scenario) == ["throughput", "latency"])
        #expect(try Self.elements(Self.parse(String(contentsOfFile: directory + "/r.html", encoding: .utf8)), named: "polyline").count == 1)
        #expect(try options.emit(Self.baseline) == 0)
        #expect(try BenchOutputOptions.parse(["--baseline", baseline, "--max-regression", "60"]).emit(worse) == 0)
        #expect(try BenchOutputOptions.parse([]).emit(worse) == 0)
        // Lost or duplicated events fail with a baseline and without one.
        #expect(try BenchOutputOptions.parse([]).emit([Self.result("latency", lost: 1)]) == 1)
        #expect(try options.emit(Self.baseline + [Self.result("faults/kill", duplicated: 2)]) == 1)
    }

    @Test("a missing, malformed or empty baseline is exit status 2, before anything is written")
    func badBaseline() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "{\"scenario\": \"x\"}".write(toFile: directory + "/malformed.json", atomically: true, encoding: .utf8)
        try "[]".write(toFile: directory + "/empty.json", atomically: true, encoding: .utf8)
        try "not json".write(toFile: directory + "/text.json", atomically: true, encoding: .utf8)
        for name in ["missing.json", "malformed.json", "empty.json", "text.json"] {
            let options = try BenchOutputOptions.parse(["--baseline", directory + "/" + name, "--json", directory + "/out.json"])
            #expect(throws: ExitCode(2)) { try options.emit([Self.result("latency")]) }
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.json"))
        #expect(throws: ExitCode(2)) {
            try BenchOutputOptions.parse(["--json", directory + "/no/such/dir/out.json"]).emit([Self.result("latency")])
        }
    }

    @Test("a decoding error says what is missing and where")
    func decodingErrorText() {
        do {
            _ = try BenchResult.decode(json: Data("[{\"scenario\": \"x\"}]".utf8))
            Issue.record("decoded")
        } catch {
            #expect(BenchOutput.describe(error) == "'events' is missing at [0]")
        }
    }
}
