import Foundation
import FoundationXML
import PGEvents
import Testing

@testable import PGEventsBench
@testable import PGEventsCLI
@testable import PGEventsCheck
@testable import PGEventsHarness

/// `pgevents bench soak`'s logic without servers: the verdict from samples and event counts, which events are
/// poison, how dead letters are matched to rows, the processor's configuration, and the series in JSON and HTML.
@Suite("Soak report")
struct SoakReportTests {
    static func sample(_ t: Double, journal: Int = 1_000, memory: Int = 2_000_000, rss: Double = 50) -> SoakReport.Sample {
        SoakReport.Sample(
            elapsedSeconds: t, journalRows: journal, journalBytes: journal * 200, redisUsedMemory: memory, redisKeys: 10,
            residentMegabytes: rss, committed: Int(t) * 100, delivered: Int(t) * 100, deadLettered: 0, backlog: 0, duplicated: 0)
    }

    static func clean(good: Int = 6_000) -> SoakReport.Events {
        var events = SoakReport.Events()
        events.good = good
        events.delivered = good
        return events
    }

    @Test("flat figures and every event accounted for: passed")
    func passes() {
        let samples = (1...9).map { Self.sample(Double($0) * 10, journal: 1_000 + ($0 % 2) * 50) }
        let report = SoakReport(samples: samples, events: Self.clean(), runFailure: nil, poisonEnabled: false)
        #expect(report.passed, "\(report.failures)")
        #expect(report.growth.map(\.metric) == ["journal rows", "Redis used_memory", "RSS"])
        #expect(report.growth.allSatisfy { !$0.exceeded })
        #expect(report.table(rate: 2_000, duration: 90, sampleInterval: 10, poisonEvery: 0).hasSuffix("PASSED"))
    }

    @Test("growth is the last third's mean over the first third's; beyond 10% fails, naming the figure")
    func growth() throws {
        // 9 samples: thirds of 3. Journal rows 1,000 → 1,150 (+15%), memory +10% exactly (not beyond), RSS +5%.
        let journals = [1_000, 1_000, 1_000, 1_050, 1_100, 1_100, 1_150, 1_150, 1_150]
        let memory = [100, 100, 100, 105, 105, 105, 110, 110, 110]
        let rss = [40.0, 40, 40, 41, 41, 41, 42, 42, 42]
        let samples = (0..<9).map { Self.sample(Double($0 + 1), journal: journals[$0], memory: memory[$0], rss: rss[$0]) }
        let report = SoakReport(samples: samples, events: Self.clean(), runFailure: nil, poisonEnabled: false)
        let growth = Dictionary(uniqueKeysWithValues: report.growth.map { ($0.metric, $0) })
        #expect(abs(try #require(growth["journal rows"]).fraction - 0.15) < 1e-9)
        #expect(try #require(growth["journal rows"]).exceeded)
        #expect(try #require(growth["Redis used_memory"]).exceeded == false)
        #expect(abs(try #require(growth["RSS"]).fraction - 0.05) < 1e-9)
        #expect(report.failures == ["journal rows grew +15.0% from the first third of the samples to the last (limit 10%)"])
        #expect(report.table(rate: 1, duration: 9, sampleInterval: 1, poisonEvery: 0).contains("EXCEEDED"))
        // A shrinking figure is fine.
        let shrinking = (0..<9).map { Self.sample(Double($0 + 1), journal: 2_000 - $0 * 100) }
        #expect(SoakReport(samples: shrinking, events: Self.clean(), runFailure: nil, poisonEnabled: false).passed)
        // From nothing: measured against 1.
        let fromZero = (0..<3).map { Self.sample(Double($0 + 1), journal: $0 == 2 ? 5 : 0) }
        #expect(SoakReport(samples: fromZero, events: Self.clean(), runFailure: nil, poisonEnabled: false).growth.first?.fraction == 5)
    }

    @Test("with fewer than 3 samples growth is not judged, and the table says so")
    func tooFewSamples() {
        let report = SoakReport(
            samples: [Self.sample(10, journal: 1), Self.sample(20, journal: 1_000_000)], events: Self.clean(), runFailure: nil,
            poisonEnabled: false)
        #expect(report.growth.isEmpty && report.passed)
        #expect(report.table(rate: 1, duration: 20, sampleInterval: 10, poisonEvery: 0).contains("growth: not judged (2 samples"))
    }

    @Test("lost, duplicated, poison or WRONGTYPE events not dead-lettered, bad events delivered, a failed processor: each fails, in words")
    func eventFailures() {
        var events = Self.clean(good: 10_000)
        events.delivered = 9_990
        events.lost = 10
        events.duplicated = 2
        events.poison = 10
        events.poisonDeadLettered = 9
        events.wrongType = 10
        events.wrongTypeDeadLettered = 0
        events.badDelivered = 1
        let report = SoakReport(samples: [], events: events, runFailure: "the processor stopped with an error: 22007", poisonEnabled: true)
        #expect(
            report.failures == [
                "the processor stopped with an error: 22007",
                "10 of 10000 good events lost (never delivered)",
                "2 good events delivered more than once",
                "1 of 10 poison events (fetch key not a date) not dead-lettered",
                "10 of 10 WRONGTYPE events (queue key holding a string) not dead-lettered",
                "1 jobs delivered for events that should have been dead-lettered",
            ])
        let table = report.table(rate: 2_000, duration: 5, sampleInterval: 10, poisonEvery: 1_000)
        #expect(table.contains("no samples") && table.contains("poison 9/10 dead-lettered; WRONGTYPE 0/10 dead-lettered"))
        #expect(table.contains("FAILED:\n  - the processor stopped with an error: 22007"))
    }

    @Test("every N-th event is poison, the one half-way is WRONGTYPE; 0 turns both off")
    func eventKinds() {
        typealias Kind = ScenarioBench.SoakEventKind
        #expect(Kind.of(index: 1_000, poisonEvery: 1_000) == .poison && Kind.of(index: 2_000, poisonEvery: 1_000) == .poison)
        #expect(Kind.of(index: 500, poisonEvery: 1_000) == .wrongType && Kind.of(index: 1_500, poisonEvery: 1_000) == .wrongType)
        #expect(Kind.of(index: 1, poisonEvery: 1_000) == .good && Kind.of(index: 999, poisonEvery: 1_000) == .good)
        #expect((1...5_000).allSatisfy { Kind.of(index: $0, poisonEvery: 0) == .good })
        let kinds = (1...10_000).map { Kind.of(index: $0, poisonEvery: 1_000) }
        #expect(kinds.filter { $0 == .poison }.count == 10 && kinds.filter { $0 == .wrongType }.count == 10)
        #expect((1...10).allSatisfy { Kind.of(index: $0, poisonEvery: 1) == .poison })
        #expect(Kind.of(index: 1, poisonEvery: 2) == .wrongType && Kind.of(index: 2, poisonEvery: 2) == .poison)
        #expect(
            ScenarioBench.soakDays.count == 365 && ScenarioBench.soakDays.first == "2026-01-01"
                && ScenarioBench.soakDays.last == "2026-12-31")
        #expect(ScenarioBench.soakDays.contains("2026-02-28") && !ScenarioBench.soakDays.contains("2026-02-29"))
    }

    @Test("a dead letter is matched to its row by the id in its payload, a job in it, or anywhere in it")
    func deadLetterRows() {
        let journalPayload =
            #"{"op": "INSERT", "row": {"id": 4711, "day": "not-a-date", "kind": "poison"}, "table": "soak_events", "schema": "public"}"#
        let today = "{\"reason\": \"fetch failed\", \"channel\": \"soak_event\", \"seq\": 99, \"payload\": \(jsonString(journalPayload))}"
        #expect(ScenarioBench.deadLetterRowID(Array(today.utf8)) == 4711)
        #expect(ScenarioBench.deadLetterRowID(Array(#"{"error": "WRONGTYPE", "job": "{\"id\":12,\"kind\":\"wrongtype\"}"}"#.utf8)) == 12)
        #expect(ScenarioBench.deadLetterRowID(Array(#"{"error": "WRONGTYPE", "job": {"id": 13}}"#.utf8)) == 13)
        #expect(ScenarioBench.deadLetterRowID(Array(#"not json, but "id": 14"#.utf8)) == 14)
        #expect(ScenarioBench.deadLetterRowID(Array(#"{"reason": "x", "seq": 3}"#.utf8)) == nil)
    }

    @Test("the soak's processor configuration parses; with poison it has the WRONGTYPE rule first, without it only the job rule")
    func processorConfiguration() throws {
        let (yaml, jobs, dead, wrongType) = ScenarioBench.soakProcessorYAML(keyPrefix: "p", poisonEvery: 1_000)
        let configuration = try ProcessorConfiguration(yaml: yaml)
        #expect(configuration.deadLetterQueue == dead && configuration.channels.map(\.name) == ["soak_event"])
        #expect(configuration.channels[0].queue == jobs)
        #expect(yaml.contains(wrongType) && yaml.contains("name: misrouted") && yaml.contains("fetch: {table: public.soak_days, key: day"))
        let plain = ScenarioBench.soakProcessorYAML(keyPrefix: "p", poisonEvery: 0).yaml
        _ = try ProcessorConfiguration(yaml: plain)
        #expect(!plain.contains("misrouted") && !plain.contains(wrongType))
    }

    @Test("series points are flat JSON objects with t_s, and read back; the HTML plots each figure and stays XML")
    func series() throws {
        let point = BenchResult.SeriesPoint(elapsedSeconds: 10, values: ["journal_rows": 5, "rss_mb": 40.5])
        let encoded = String(decoding: try JSONEncoder().encode(point), as: UTF8.self)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(encoded.utf8)) as? [String: Double])
        #expect(object == ["t_s": 10, "journal_rows": 5, "rss_mb": 40.5])
        #expect(try JSONDecoder().decode(BenchResult.SeriesPoint.self, from: Data(encoded.utf8)) == point)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(BenchResult.SeriesPoint.self, from: Data(#"{"rss_mb": 1}"#.utf8)) }

        let samples = (1...4).map { Self.sample(Double($0) * 10, journal: 1_000 * $0) }
        let result = BenchResult(
            scenario: "soak", events: 100, durationSeconds: 40, eventsPerSecond: 2.5, lost: 0, duplicated: 0, errors: 0,
            postgresVersion: "15", redisVersion: "7", startedAt: Date(timeIntervalSince1970: 0), series: samples.map(\.seriesPoint))
        let decoded = try BenchResult.decode(json: Data(BenchResult.json([result]).utf8))
        #expect(decoded.first?.series == result.series)
        let html = BenchHTML.render([result])
        #expect(html.contains("Series: soak") && html.contains("journal rows") && html.contains("Redis used_memory (MB)"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 10, "one chart per figure")
        _ = try XMLDocument(data: Data(html.utf8))
    }

    @Test("pgevents bench soak parses as the scenario run, with its options and their defaults")
    func commandLine() throws {
        let parsed = try #require(
            try BenchCommand.parseAsRoot(["soak", "--rate", "500", "--poison-every", "0", "--sample-interval", "2", "--stall-timeout", "5"])
                as? ScenariosCommand)
        #expect(
            parsed.scenario == "soak" && parsed.rate == 500 && parsed.poisonEvery == 0 && parsed.sampleInterval == 2
                && parsed.stallTimeout == 5)
        let defaults = try #require(try BenchCommand.parseAsRoot(["soak"]) as? ScenariosCommand)
        #expect(
            defaults.rate == nil && defaults.duration == nil && defaults.poisonEvery == 1_000 && defaults.sampleInterval == 10
                && defaults.stallTimeout == 30)
        let options = ScenarioBench.Options(sqlDirectory: "/sql")
        #expect(options.soak.rate == 2_000 && options.rate == 1_000 && ScenarioBench.defaultSoakDuration == 600)
        #expect(!ScenarioBench.Scenario.all.contains(.soak) && ScenarioBench.Scenario.allCases.contains(.soak))
    }

    private func jsonString(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed), as: UTF8.self)
    }
}
