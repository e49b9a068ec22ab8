import Foundation
import FoundationXML
import PGEventsSystem
import Testing

@testable import PGEventsCheck
@testable import PGEventsHarness

/// The text, JSON and JUnit renderings of `pgevents check` reports built by hand.
@Suite("Check report rendering")
struct CheckReportTests {
    /// A small report with one check of each kind, one PostgreSQL version and one observed trigger.
    static let small = CheckReport(
        source: "db/pgevents.yml",
        postgresVersions: ["17.2"],
        results: [
            CheckResult(
                group: "public.events", name: "INSERT notifies on new_event", status: .passed, message: "notified once",
                postgresVersion: "17.2"),
            CheckResult(group: "migrations", name: "migrations apply", status: .passed, message: "3 files"),
            CheckResult(
                group: "public.events", name: "payload fits in 8000 bytes", status: .failed, message: "payload is 8,012 bytes",
                payload: "{\"id\":1,\n\"content\":\"xx\"}", row: "content = 'x' × 7,913 bytes", fix: "send the id only",
                postgresVersion: "17.2"),
            CheckResult(group: "public.events", name: "DELETE notifies", status: .skipped, message: "no trigger on DELETE"),
        ],
        observed: [
            ObservedChannel(
                table: "public.events", trigger: "events_notify", operation: "insert", channel: "new_event", samplePayload: "{\"id\":1}")
        ],
        durationSeconds: 2.345)

    /// A message with everything that is hard to carry: markup, quotes, newlines, tabs, carriage returns,
    /// control characters XML cannot hold, emoji, a noncharacter.
    static let nastyMessage = "bad <tag attr=\"x\"> & 'quote' ]]>\nsecond line\tcol\u{1}\u{0}\u{1B}[31mend 🧪👩‍👩‍👧 \r\nlast\u{FFFE}\u{7F}é"
    /// What an XML parser gives back for `nastyMessage`: the same, with the characters XML 1.0 forbids written out.
    static let nastyMessageInXML =
        "bad <tag attr=\"x\"> & 'quote' ]]>\nsecond line\tcol\\u{1}\\u{0}\\u{1B}[31mend 🧪👩‍👩‍👧 \r\nlast\\u{FFFE}\u{7F}é"
    /// 10,000 characters (2,500 × 4), markup included.
    static let longPayload = String(repeating: "é<&>", count: 2_500)

    /// Two versions, nasty and long values, several groups.
    static let nasty = CheckReport(
        source: "/srv/app/pgevents.yml",
        postgresVersions: ["15.18", "17.2"],
        results: [
            CheckResult(group: "migrations", name: "migrations apply", status: .passed, message: "ok", postgresVersion: "15.18"),
            CheckResult(group: "migrations", name: "migrations apply", status: .passed, message: "ok", postgresVersion: "17.2"),
            CheckResult(
                group: "public.events", name: "payload is \"valid\" <JSON> & 'small'", status: .failed, message: nastyMessage,
                payload: longPayload, row: "content = '\u{1}\n'", fix: "use jsonb_build_object(…)\nand cut it", postgresVersion: "15.18"),
            CheckResult(
                group: "public.events", name: "UPDATE notifies", status: .failed, message: "no notification", postgresVersion: "17.2"),
            CheckResult(
                group: "replication", name: "subscriber fires", status: .skipped, message: "no <subscriber> & \"none\"\nconfigured"),
            CheckResult(group: "catalog", name: "trigger is enabled", status: .passed, message: "", row: nil),
        ],
        observed: [
            ObservedChannel(
                table: "public.events", trigger: "events_notify", operation: "update", channel: "events", samplePayload: longPayload),
            ObservedChannel(
                table: "public.orders", trigger: "orders_notify", operation: "INSERT", channel: "orders",
                samplePayload: "a\nb\u{1}\u{2028}\u{2029}\u{202E}🧪"),
        ],
        durationSeconds: 12.96)

    // MARK: Text

    @Test("the text report of a small report, line by line")
    func smallText() {
        let lines = Self.small.text().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(
            lines == [
                "pgevents check db/pgevents.yml — PostgreSQL 17.2",
                "",
                "public.events",
                "  ✓ INSERT notifies on new_event",
                "  ✗ payload fits in 8000 bytes: payload is 8,012 bytes",
                #"    payload: {"id":1,\n"content":"xx"}"#,
                "    row: content = 'x' × 7,913 bytes",
                "    fix: send the id only",
                "  – DELETE notifies (skipped: no trigger on DELETE)",
                "",
                "migrations",
                "  ✓ migrations apply",
                "",
                "What each trigger sends:",
                #"  public.events events_notify INSERT → new_event: {"id":1}"#,
                "",
                "4 checks: 2 passed, 1 failed, 1 skipped in 2.3 s",
                "FAILED",
            ])
    }

    @Test("a passing report without observed triggers ends with PASSED and has no trigger section")
    func passingText() {
        let report = CheckReport(
            source: "migrations", postgresVersions: ["15.18", "16.4"],
            results: [CheckResult(group: "catalog", name: "trigger exists", status: .passed, message: "")], durationSeconds: 0.04)
        #expect(
            report.text() == """
                pgevents check migrations — PostgreSQL 15.18, 16.4

                catalog
                  ✓ trigger exists

                1 check: 1 passed, 0 failed, 0 skipped in 0.0 s
                PASSED
                """)
        #expect(CheckReport(source: "x").text() == "pgevents check x\n\n0 checks: 0 passed, 0 failed, 0 skipped in 0.0 s\nPASSED")
    }

    @Test("with several versions each check names its version; with one it does not")
    func versions() {
        let lines = Self.nasty.text().split(separator: "\n").map(String.init)
        #expect(lines.first == "pgevents check /srv/app/pgevents.yml — PostgreSQL 15.18, 17.2")
        #expect(lines.contains("  ✓ migrations apply [PostgreSQL 15.18]"))
        #expect(lines.contains("  ✓ migrations apply [PostgreSQL 17.2]"))
        #expect(lines.contains("  ✗ UPDATE notifies [PostgreSQL 17.2]: no notification"))
        #expect(lines.contains("  ✓ trigger is enabled"))
        #expect(!Self.small.text().contains("[PostgreSQL"))
    }

    @Test("groups appear in the order of their first result")
    func groupOrder() {
        let lines = Self.nasty.text().split(separator: "\n").map(String.init)
        let groups = lines.filter { ["migrations", "public.events", "replication", "catalog"].contains($0) }
        #expect(groups == ["migrations", "public.events", "replication", "catalog"])
    }

    @Test("nasty values stay on one line each, without control characters; long payloads are cut")
    func nastyText() {
        let text = Self.nasty.text()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The header; 4 × (blank, group); 6 checks and 3 detail lines; blank, section title, 2 triggers; blank, counts, verdict.
        #expect(lines.count == 1 + 4 * 2 + 6 + 3 + 4 + 3)
        for line in lines {
            #expect(!line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }, "\(line)")
        }
        let failure =
            "  ✗ payload is \"valid\" <JSON> & 'small' [PostgreSQL 15.18]: "
            + #"bad <tag attr="x"> & 'quote' ]]>\nsecond line\tcol\u{1}\u{0}\u{1B}[31mend 🧪👩‍👩‍👧 \r\nlast"# + "\u{FFFE}" + #"\u{7F}é"#
        #expect(lines.contains(failure))
        #expect(lines.contains("    payload: " + String(repeating: "é<&>", count: 50) + "…"))
        #expect(lines.contains(#"    row: content = '\u{1}\n'"#))
        #expect(lines.contains(#"    fix: use jsonb_build_object(…)\nand cut it"#))
        #expect(lines.contains(#"  – subscriber fires (skipped: no <subscriber> & "none"\nconfigured)"#))
        #expect(lines.contains("  public.events events_notify UPDATE → events: " + String(repeating: "é<&>", count: 30) + "…"))
        #expect(lines.contains(#"  public.orders orders_notify INSERT → orders: a\nb\u{1}\u{2028}\u{2029}\u{202E}🧪"#))
        #expect(lines.suffix(2) == ["6 checks: 3 passed, 2 failed, 1 skipped in 13.0 s", "FAILED"])
    }

    @Test("an emoji is never split when a payload is cut")
    func cutCharacters() {
        let family = "👩‍👩‍👧"
        #expect(TextExcerpt.excerpt(String(repeating: family, count: 300), limit: 200) == String(repeating: family, count: 200) + "…")
        #expect(TextExcerpt.excerpt(String(repeating: "x", count: 200), limit: 200) == String(repeating: "x", count: 200))
        #expect(TextExcerpt.excerpt("", limit: 200) == "")
    }

    @Test("color paints ✓ and PASSED green, ✗ and FAILED red; without color there is no escape code at all")
    func color() {
        let colored = Self.small.text(color: true)
        #expect(colored.contains("  \u{1B}[32m✓\u{1B}[0m INSERT notifies on new_event"))
        #expect(colored.contains("  \u{1B}[31m✗\u{1B}[0m payload fits in 8000 bytes: payload is 8,012 bytes"))
        #expect(colored.hasSuffix("\n\u{1B}[31mFAILED\u{1B}[0m"))
        let passing = CheckReport(source: "x", results: [CheckResult(group: "catalog", name: "ok", status: .passed, message: "")])
        #expect(passing.text(color: true).hasSuffix("\n\u{1B}[32mPASSED\u{1B}[0m"))
        for report in [Self.small, Self.nasty, passing] {
            #expect(!report.text().contains("\u{1B}"))
            #expect(!report.text(color: false).unicodeScalars.contains("\u{1B}"))
        }
        // Without color, the colored text minus its codes.
        #expect(
            colored.replacingOccurrences(of: "\u{1B}[32m", with: "").replacingOccurrences(of: "\u{1B}[31m", with: "")
                .replacingOccurrences(of: "\u{1B}[0m", with: "") == Self.small.text())
    }

    // MARK: JSON

    /// The extra fields of the JSON report.
    struct Envelope: Decodable {
        struct Summary: Decodable, Equatable {
            var checks: Int
            var passed: Int
            var failed: Int
            var skipped: Int
        }

        var passed: Bool
        var summary: Summary
    }

    @Test("JSON decodes back to the same report")
    func jsonRoundTrip() throws {
        for (label, report) in [("small", Self.small), ("nasty", Self.nasty), ("empty", CheckReport(source: "empty"))] {
            let json = try report.json()
            let decoded = try JSONDecoder().decode(CheckReport.self, from: Data(json.utf8))
            #expect(decoded == report, "\(label)")
        }
    }

    @Test("JSON adds passed and the summary counts, sorted and pretty, with slashes unescaped")
    func jsonExtras() throws {
        let json = try Self.nasty.json()
        let envelope = try JSONDecoder().decode(Envelope.self, from: Data(json.utf8))
        #expect(envelope.passed == false)
        #expect(envelope.summary == .init(checks: 6, passed: 3, failed: 2, skipped: 1))
        #expect(json.contains(#""source" : "/srv/app/pgevents.yml""#))
        let topLevelKeys = json.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { $0.split(separator: "\"")[1] }
        #expect(topLevelKeys == ["durationSeconds", "observed", "passed", "postgresVersions", "results", "source", "summary"])

        let passing = try JSONDecoder().decode(Envelope.self, from: Data(CheckReport(source: "x").json().utf8))
        #expect(passing.passed && passing.summary == .init(checks: 0, passed: 0, failed: 0, skipped: 0))
    }

    // MARK: JUnit

    static func parse(_ xml: String) throws -> XMLElement {
        let document = try XMLDocument(xmlString: xml, options: [])
        return try #require(document.rootElement())
    }

    static func attribute(_ element: XMLElement, _ name: String) -> String? {
        element.attribute(forName: name)?.stringValue
    }

    @Test("JUnit of a small report: declaration, counts, one suite per group, one case per check")
    func junitSmall() throws {
        let xml = Self.small.junit()
        #expect(xml.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"pgevents check\" tests=\"4\" failures=\"1\""))
        let root = try Self.parse(xml)
        #expect(root.name == "testsuites")
        #expect(Self.attribute(root, "name") == "pgevents check")
        #expect(Self.attribute(root, "tests") == "4")
        #expect(Self.attribute(root, "failures") == "1")
        #expect(Self.attribute(root, "skipped") == "1")
        #expect(Self.attribute(root, "time") == "2.345")

        let suites = root.elements(forName: "testsuite")
        #expect(suites.map { Self.attribute($0, "name") } == ["public.events", "migrations"])
        #expect(suites.map { Self.attribute($0, "tests") } == ["3", "1"])
        #expect(suites.map { Self.attribute($0, "failures") } == ["1", "0"])
        #expect(suites.map { Self.attribute($0, "skipped") } == ["1", "0"])

        let cases = suites[0].elements(forName: "testcase")
        #expect(
            cases.map { Self.attribute($0, "name") } == ["INSERT notifies on new_event", "payload fits in 8000 bytes", "DELETE notifies"])
        #expect(cases.allSatisfy { Self.attribute($0, "classname") == "public.events" })
        #expect(cases[0].children == nil || cases[0].children?.isEmpty == true)

        let failure = try #require(cases[1].elements(forName: "failure").first)
        #expect(Self.attribute(failure, "message") == "payload is 8,012 bytes")
        #expect(
            failure.stringValue == """
                payload is 8,012 bytes
                payload: {"id":1,\\n"content":"xx"}
                row: content = 'x' × 7,913 bytes
                fix: send the id only
                """)
        let skipped = try #require(cases[2].elements(forName: "skipped").first)
        #expect(Self.attribute(skipped, "message") == "no trigger on DELETE")
    }

    @Test("JUnit stays well-formed with nasty values, and attributes give the messages back")
    func junitNasty() throws {
        let root = try Self.parse(Self.nasty.junit())
        #expect(Self.attribute(root, "tests") == "6")
        #expect(Self.attribute(root, "failures") == "2")
        #expect(Self.attribute(root, "skipped") == "1")
        #expect(Self.attribute(root, "time") == "12.960")

        let suites = root.elements(forName: "testsuite")
        #expect(suites.map { Self.attribute($0, "name") } == ["migrations", "public.events", "replication", "catalog"])
        #expect(suites.map { Self.attribute($0, "tests") } == ["2", "2", "1", "1"])
        #expect(suites.map { Self.attribute($0, "failures") } == ["0", "2", "0", "0"])
        #expect(suites.map { Self.attribute($0, "skipped") } == ["0", "0", "1", "0"])
        #expect(
            suites[0].elements(forName: "testcase").map { Self.attribute($0, "name") } == [
                "migrations apply [PostgreSQL 15.18]", "migrations apply [PostgreSQL 17.2]",
            ])

        let nastyCase = try #require(suites[1].elements(forName: "testcase").first)
        #expect(Self.attribute(nastyCase, "name") == "payload is \"valid\" <JSON> & 'small' [PostgreSQL 15.18]")
        let failure = try #require(nastyCase.elements(forName: "failure").first)
        #expect(Self.attribute(failure, "message") == Self.nastyMessageInXML)
        let body = try #require(failure.stringValue)
        #expect(body.hasPrefix(Self.nastyMessageInXML + "\npayload: " + String(repeating: "é<&>", count: 50) + "…\n"))
        #expect(body.hasSuffix("\nrow: content = '\\u{1}\\n'\nfix: use jsonb_build_object(…)\\nand cut it"))

        let skipped = try #require(suites[2].elements(forName: "testcase").first?.elements(forName: "skipped").first)
        #expect(Self.attribute(skipped, "message") == "no <subscriber> & \"none\"\nconfigured")
    }

    @Test("JUnit carries every character: those XML forbids are written out, the others come back as they were")
    func junitEveryCharacter() throws {
        let scalars =
            (0...0x2FF).compactMap(Unicode.Scalar.init) + [
                "\u{D7FF}", "\u{E000}", "\u{FFFD}", "\u{FFFE}", "\u{FFFF}", "\u{10000}", "\u{10FFFF}",
            ]
        var message = ""
        var expected = ""
        for scalar in scalars {
            message.unicodeScalars.append(scalar)
            let forbidden =
                (scalar.value < 0x20 && ![0x9, 0xA, 0xD].contains(scalar.value)) || scalar.value == 0xFFFE || scalar.value == 0xFFFF
            if forbidden {
                expected += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                expected.unicodeScalars.append(scalar)
            }
        }
        let report = CheckReport(
            source: message, postgresVersions: [message, "17"],
            results: [
                CheckResult(
                    group: message, name: message, status: .failed, message: message, payload: message, row: message, fix: message,
                    postgresVersion: message),
                CheckResult(group: message, name: message, status: .skipped, message: message),
            ])
        let root = try Self.parse(report.junit())
        let suite = try #require(root.elements(forName: "testsuite").first)
        #expect(Self.attribute(suite, "name") == expected)
        let cases = suite.elements(forName: "testcase")
        #expect(cases.count == 2)
        #expect(Self.attribute(cases[0], "classname") == expected)
        #expect(Self.attribute(cases[0], "name") == expected + " [PostgreSQL " + expected + "]")
        #expect(Self.attribute(try #require(cases[0].elements(forName: "failure").first), "message") == expected)
        #expect(try #require(cases[0].elements(forName: "failure").first?.stringValue).hasPrefix(expected + "\npayload: "))
        #expect(Self.attribute(try #require(cases[1].elements(forName: "skipped").first), "message") == expected)

        // The text report of the same stays on its lines.
        #expect(report.text().split(separator: "\n", omittingEmptySubsequences: false).count == 11)
    }
}
