import Foundation
import Testing

@testable import PGEvents

/// One line of the rule matrix: a field, a test, what it gives, and what it reports.
struct RuleCase: Sendable, CustomTestStringConvertible {
    var path: String
    var test: FieldTest
    var expected: Bool
    var diagnostic: EvaluationDiagnostic.Kind?

    init(_ path: String, _ test: FieldTest, _ expected: Bool, _ diagnostic: EvaluationDiagnostic.Kind? = nil) {
        self.path = path
        self.test = test
        self.expected = expected
        self.diagnostic = diagnostic
    }

    var testDescription: String {
        "\(path) \(test) → \(expected)\(diagnostic.map { " (\($0))" } ?? "")"
    }
}

enum RuleFixtures {
    static let createdAt = Date(timeIntervalSince1970: 1_737_712_800.123456)  // 2025-01-24T10:00:00.123456Z

    static let event: EventValue = [
        "n": 5,
        "x": 2.5,
        "s": "abc",
        "accent": "É",
        "b": true,
        "z": .null,
        "o": ["a": 1, "b": [1, 2]],
        "arr": [1, "two", 3.0],
        "big": 9_007_199_254_740_993,
        "event_type": "FeedbackGiven",
        "event_id": "evt-1",
    ]

    static let row: EventValue = ["chain_id": 137, "registry": "reputation", "score": 88.5]

    static let context = EvaluationContext(event: event, row: row, channel: "new_event", seq: 42, createdAt: createdAt)
    static let withoutRow = EvaluationContext(event: event, row: nil, channel: "new_event", seq: 42, createdAt: createdAt)

    static func path(_ text: String) -> FieldPath {
        FieldPath(text)!
    }

    static func field(_ text: String, _ test: FieldTest) -> Condition {
        .field(path(text), test)
    }
}

@Suite("Rules")
struct RuleTests {
    @Test(
        "the rule matrix: every operator × match, no match, missing field, type mismatch",
        arguments: [
            // eq
            RuleCase("event.n", .eq(5), true),
            RuleCase("event.n", .eq(5.0), true),
            RuleCase("event.n", .eq(6), false),
            RuleCase("event.missing", .eq(5), false, .missingField),
            RuleCase("event.s", .eq(5), false, .typeMismatch),
            RuleCase("event.s", .eq("abc"), true),
            RuleCase("event.z", .eq(.null), true),
            RuleCase("event.n", .eq(.null), false),  // null is a value, not a mismatch
            RuleCase("event.z", .eq(5), false),
            RuleCase("event.b", .eq(true), true),
            RuleCase("event.b", .eq(1), false, .typeMismatch),
            RuleCase("event.o", .eq(["b": [1, 2.0], "a": 1]), true),  // structural, any key order, numbers by value
            RuleCase("event.o", .eq(["a": 1]), false),
            RuleCase("event.o", .eq("a"), false, .typeMismatch),
            RuleCase("event.arr", .eq([1, "two", 3]), true),
            RuleCase("event.arr", .eq([1, 3, "two"]), false),
            RuleCase("event.big", .eq(9_007_199_254_740_992.0), false),  // exact beyond 2^53
            RuleCase("event.o.b.1", .eq(2), true),
            // ne: always `not eq`
            RuleCase("event.n", .ne(6), true),
            RuleCase("event.n", .ne(5), false),
            RuleCase("event.missing", .ne(5), true, .missingField),
            RuleCase("event.s", .ne(5), true, .typeMismatch),
            RuleCase("event.z", .ne(.null), false),
            // in
            RuleCase("event.n", .in([1, 5]), true),
            RuleCase("event.n", .in([1, 5.0]), true),
            RuleCase("event.n", .in([1, 2]), false),
            RuleCase("event.missing", .in([1, 2]), false, .missingField),
            RuleCase("event.s", .in([1, 2]), false, .typeMismatch),
            RuleCase("event.s", .in([1, "abc"]), true),
            RuleCase("event.s", .in([1, "xyz"]), false),  // the list has strings: no mismatch
            RuleCase("event.z", .in([.null]), true),
            RuleCase("event.n", .in([]), false),
            RuleCase("row.chain_id", .in([1, 137]), true),
            // gt
            RuleCase("event.n", .gt(4), true),
            RuleCase("event.n", .gt(5), false),
            RuleCase("event.n", .gt(4.99), true),
            RuleCase("event.x", .gt(2), true),
            RuleCase("event.missing", .gt(4), false, .missingField),
            RuleCase("event.s", .gt(4), false, .typeMismatch),
            RuleCase("event.s", .gt("abb"), true),
            RuleCase("event.s", .gt("abd"), false),
            RuleCase("event.s", .gt("ab"), true),  // a prefix sorts first
            RuleCase("event.b", .gt(0), false, .typeMismatch),
            RuleCase("event.z", .gt(0), false),  // null: false, not reported
            RuleCase("event.o", .gt(0), false, .typeMismatch),
            RuleCase("event.big", .gt(9_007_199_254_740_992.0), true),
            // gte
            RuleCase("event.n", .gte(5), true),
            RuleCase("event.n", .gte(5.0), true),
            RuleCase("event.n", .gte(6), false),
            RuleCase("event.missing", .gte(5), false, .missingField),
            RuleCase("event.s", .gte(1), false, .typeMismatch),
            RuleCase("event.s", .gte("abc"), true),
            // lt
            RuleCase("event.n", .lt(6), true),
            RuleCase("event.n", .lt(5), false),
            RuleCase("event.missing", .lt(6), false, .missingField),
            RuleCase("event.n", .lt("6"), false, .typeMismatch),
            RuleCase("event.s", .lt("b"), true),
            RuleCase("event.accent", .lt("F"), false),  // code point order: É (U+00C9) after F
            RuleCase("event.x", .lt(2.5), false),
            // lte
            RuleCase("event.n", .lte(5), true),
            RuleCase("event.n", .lte(4.99), false),
            RuleCase("event.missing", .lte(5), false, .missingField),
            RuleCase("event.arr", .lte(5), false, .typeMismatch),
            RuleCase("event.x", .lte(2.5), true),
            // exists: never reports
            RuleCase("event.n", .exists(true), true),
            RuleCase("event.n", .exists(false), false),
            RuleCase("event.missing", .exists(true), false),
            RuleCase("event.missing", .exists(false), true),
            RuleCase("event.z", .exists(true), true),  // null is there
            RuleCase("event.o.b.5", .exists(false), true),
            // meta and row
            RuleCase("meta.channel", .eq("new_event"), true),
            RuleCase("meta.seq", .gt(41), true),
            RuleCase("meta.seq", .eq("42"), false, .typeMismatch),
            RuleCase("meta.created_at", .gt("2025-01-24T09:59:59Z"), true),
            RuleCase("meta.created_at", .eq("2025-01-24T10:00:00.123456Z"), true),
            RuleCase("row.score", .gte(88), true),
            RuleCase("row.registry", .ne("identity"), true),
        ])
    func matrix(rule: RuleCase) {
        var diagnostics: [EvaluationDiagnostic] = []
        let result = RuleFixtures.field(rule.path, rule.test).evaluate(RuleFixtures.context) { diagnostics.append($0) }
        #expect(result == rule.expected)
        #expect(diagnostics.map(\.kind) == (rule.diagnostic.map { [$0] } ?? []))
        #expect(diagnostics.allSatisfy { $0.path == RuleFixtures.path(rule.path) && $0.message.hasPrefix(rule.path + " ") })
    }

    @Test("without a row, every row field is missing")
    func noRow() {
        var diagnostics: [EvaluationDiagnostic] = []
        let report = { (diagnostic: EvaluationDiagnostic) in diagnostics.append(diagnostic) }
        #expect(!RuleFixtures.field("row.chain_id", .in([1, 137])).evaluate(RuleFixtures.withoutRow, report: report))
        #expect(RuleFixtures.field("row.chain_id", .ne(1)).evaluate(RuleFixtures.withoutRow, report: report))
        #expect(RuleFixtures.field("row", .exists(false)).evaluate(RuleFixtures.withoutRow, report: report))
        #expect(diagnostics.map(\.message) == ["row.chain_id is missing (in is false)", "row.chain_id is missing (ne is true)"])
    }

    @Test("mismatches are reported in words")
    func mismatchMessages() {
        var messages: [String] = []
        _ = RuleFixtures.field("event.s", .gt(100)).evaluate(RuleFixtures.context) { messages.append($0.message) }
        _ = RuleFixtures.field("event.n", .in(["1", "2"])).evaluate(RuleFixtures.context) { messages.append($0.message) }
        _ = RuleFixtures.field("event.o", .eq(true)).evaluate(RuleFixtures.context) { messages.append($0.message) }
        #expect(
            messages == [
                #"event.s is a string ("abc"), compared (gt) with an integer (100)"#,
                #"event.n is an integer (5), compared (in) with a list of a string (["1","2"])"#,
                #"event.o is an object ({"a":1,"b":[1,2]}), compared (eq) with a boolean (true)"#,
            ])
    }

    @Test("all, any and not nest; empty all is true, empty any is false")
    func nesting() {
        let yes = RuleFixtures.field("event.n", .eq(5))
        let no = RuleFixtures.field("event.n", .eq(6))
        let missing = RuleFixtures.field("event.missing", .gt(1))
        let cases: [(Condition, Bool)] = [
            (.all([]), true),
            (.any([]), false),
            (.all([yes, yes]), true),
            (.all([yes, no]), false),
            (.any([no, yes]), true),
            (.any([no, no]), false),
            (.not(yes), false),
            (.not(no), true),
            (.not(missing), true),  // `not` negates: a missing field's false becomes true
            (.not(.not(yes)), true),
            (.all([.any([no, yes]), .not(.all([yes, no]))]), true),
            (.any([.all([yes, no]), .not(.any([yes]))]), false),
            (.all([yes, .any([missing, .not(no)]), .not(missing)]), true),
            (
                .all([RuleFixtures.field("event.event_type", .eq("FeedbackGiven")), RuleFixtures.field("row.chain_id", .in([1, 137]))]),
                true
            ),
        ]
        for (condition, expected) in cases {
            #expect(condition.evaluate(RuleFixtures.context) == expected, "\(condition)")
        }
        // Evaluation stops at the first condition that decides: nothing after it is reported.
        var reported = 0
        #expect(Condition.any([yes, missing]).evaluate(RuleFixtures.context) { _ in reported += 1 })
        #expect(!Condition.all([no, missing]).evaluate(RuleFixtures.context) { _ in reported += 1 })
        #expect(reported == 0)
        #expect(!Condition.all([yes, missing]).evaluate(RuleFixtures.context) { _ in reported += 1 })
        #expect(reported == 1)
        #expect(Condition.all([yes, .not(missing), .any([no])]).fieldPaths.map(\.description) == ["event.n", "event.missing", "event.n"])
    }

    @Test("ne is exactly not eq, for random values and operands")
    func neIsNotEq() {
        var random = SplitMix64(seed: 1_001)
        for _ in 0..<2_000 {
            let value = random.value(depth: 2)
            let operand = Bool.random(using: &random) ? value : random.value(depth: 2)
            let context = EvaluationContext(event: ["f": value])
            let path = Bool.random(using: &random) ? "event.f" : "event.g"
            let eq = RuleFixtures.field(path, .eq(operand)).evaluate(context)
            let ne = RuleFixtures.field(path, .ne(operand)).evaluate(context)
            #expect(eq != ne)
            // Ordering never crashes, whatever the kinds.
            for test in [FieldTest.gt(operand), .gte(operand), .lt(operand), .lte(operand), .in([operand, value])] {
                _ = RuleFixtures.field(path, test).evaluate(context)
            }
        }
    }

    @Test("field paths start with event, row or meta")
    func paths() throws {
        #expect(try FieldPath(validating: "event.a.0.b") == FieldPath(root: .event, components: ["a", "0", "b"]))
        #expect(try FieldPath(validating: "row") == FieldPath(root: .row))
        #expect(FieldPath("meta.seq")?.description == "meta.seq")
        let cases: [(String, String)] = [
            ("evnt.x", "a field path starts with event, row or meta, found 'evnt.x'"),
            ("", "a field path starts with event, row or meta, found ''"),
            ("event..x", "the field path 'event..x' has an empty component"),
            ("event.", "the field path 'event.' has an empty component"),
            ("meta.time", "meta has the fields channel, seq, created_at, database; 'meta.time' is not one of them"),
            ("meta.seq.x", "meta has the fields channel, seq, created_at, database; 'meta.seq.x' is not one of them"),
        ]
        for (text, message) in cases {
            let error = #expect(throws: FieldPath.Invalid.self) { try FieldPath(validating: text) }
            #expect(error?.message == message)
            #expect(FieldPath(text) == nil)
        }
    }

    @Test(
        "meta.created_at is ISO 8601 in UTC with microseconds",
        arguments: [
            (0.0, "1970-01-01T00:00:00.000000Z"),
            (1_737_712_800.123456, "2025-01-24T10:00:00.123456Z"),
            (-1.5, "1969-12-31T23:59:58.500000Z"),
            (951_782_400, "2000-02-29T00:00:00.000000Z"),
            (-62_135_596_800, "0001-01-01T00:00:00.000000Z"),
            (253_402_300_799, "9999-12-31T23:59:59.000000Z"),
            (1e300, "9999-12-31T23:59:59.999999Z"),
            (-1e300, "0001-01-01T00:00:00.000000Z"),
        ])
    func timestamps(seconds: Double, expected: String) {
        #expect(EvaluationContext.timestamp(Date(timeIntervalSince1970: seconds)) == expected)
    }

    @Test("a journal event gives its channel, seq and time as meta")
    func journalContext() {
        let event = SourceEvent(seq: 7, channel: "new_event", payload: "{}", createdAt: RuleFixtures.createdAt)
        let context = EvaluationContext(event, decoded: [:])
        #expect(context.meta == ["channel": "new_event", "seq": 7, "created_at": "2025-01-24T10:00:00.123456Z"])
        #expect(context.row == nil)
    }
}

@Suite("Job templates")
struct JobTemplateTests {
    static func render(_ template: EventValue, _ context: EvaluationContext = RuleFixtures.context) throws -> (EventValue, [String]) {
        var messages: [String] = []
        let value = try JobTemplate(template).render(context) { messages.append($0.message) }
        return (value, messages)
    }

    @Test(
        "a string that is one placeholder keeps the value's type",
        arguments: [
            ("{{event.n}}", EventValue.integer(5)),
            ("{{event.x}}", .number(2.5)),
            ("{{event.b}}", .bool(true)),
            ("{{event.z}}", .null),
            ("{{event.o}}", ["a": 1, "b": [1, 2]]),
            ("{{event.arr}}", [1, "two", 3.0]),
            ("{{ event.s }}", "abc"),
            ("{{row.chain_id}}", 137),
            ("{{row}}", RuleFixtures.row),
            ("{{event}}", RuleFixtures.event),
            ("{{meta.channel}}", "new_event"),
            ("{{meta.seq}}", 42),
            ("{{event.o.b.1}}", 2),
        ] as [(String, EventValue)])
    func typed(template: String, expected: EventValue) throws {
        let (value, messages) = try Self.render(.string(template))
        #expect(value == expected)
        #expect(messages.isEmpty)
    }

    @Test(
        "placeholders inside longer strings interpolate text",
        arguments: [
            ("evt-{{event.n}}-{{event.s}}", "evt-5-abc"),
            ("{{event.o}}!", #"{"a":1,"b":[1,2]}!"#),
            ("[{{event.arr}}]", #"[[1,"two",3.0]]"#),
            ("flag={{event.b}}, none={{event.z}}.", "flag=true, none=."),
            (" {{event.n}}", " 5"),
            ("{{event.n}}{{event.n}}", "55"),
            ("jobs:{{meta.channel}}:{{row.chain_id}}", "jobs:new_event:137"),
            ("no placeholders", "no placeholders"),
            ("a }} b", "a }} b"),
            ("", ""),
        ])
    func interpolated(template: String, expected: String) throws {
        let (value, messages) = try Self.render(.string(template))
        #expect(value == .string(expected))
        #expect(messages.isEmpty)
    }

    @Test("a missing field renders as null (typed) or nothing (in text), and is reported")
    func missing() throws {
        let (value, messages) = try Self.render(
            ["id": "{{event.nope}}", "label": "id-{{event.nope}}", "chain": "{{row.chain_id}}"], RuleFixtures.withoutRow)
        #expect(value == ["id": .null, "label": "id-", "chain": .null])
        #expect(value.jsonText == #"{"id":null,"label":"id-","chain":null}"#)
        #expect(
            messages == [
                "event.nope is missing (the job's placeholder {{event.nope}} becomes null)",
                "event.nope is missing (the job's placeholder {{event.nope}} is left empty)",
                "row.chain_id is missing (the job's placeholder {{row.chain_id}} becomes null)",
            ])
    }

    @Test("objects and arrays are templates too; keys are not; literals stay literals")
    func structure() throws {
        let template: EventValue = [
            "type": "process_feedback",
            "id": "{{event.event_id}}",
            "chain": "{{row.chain_id}}",
            "{{event.s}}": 1,
            "nested": ["list": ["{{event.n}}", 2, ["deep": "{{event.x}}"]], "fixed": [true, .null]],
        ]
        let (value, _) = try Self.render(template)
        #expect(
            value.jsonText
                == #"{"type":"process_feedback","id":"evt-1","chain":137,"{{event.s}}":1,"nested":{"list":[5,2,{"deep":2.5}],"fixed":[true,null]}}"#
        )
        #expect(try JobTemplate(["a": [1, "b"], "c": .null]) == .literal(["a": [1, "b"], "c": .null]))
        #expect(try JobTemplate(5) == .literal(5))
        #expect(try JobTemplate("{{event.n}}") == .field(RuleFixtures.path("event.n")))
        #expect(try JobTemplate("x{{event.n}}") == .text([.text("x"), .field(RuleFixtures.path("event.n"))]))
        #expect(try JobTemplate(template).fieldPaths.map(\.description) == ["event.event_id", "row.chain_id", "event.n", "event.x"])
    }

    @Test(
        "malformed placeholders are refused",
        arguments: [
            ("id-{{event.id", #"'{{' is not closed with '}}' in "id-{{event.id""#),
            ("{{}}", #"an empty placeholder in "{{}}" (write {{event.field}}, {{row.column}} or {{meta.channel}})"#),
            ("{{  }}", "an empty placeholder"),
            ("{{evnt.x}}", "a field path starts with event, row or meta, found 'evnt.x', in the placeholder {{evnt.x}}"),
            (
                "a {{meta.time}}",
                "meta has the fields channel, seq, created_at, database; 'meta.time' is not one of them, in the placeholder {{meta.time}}"
            ),
            ("{{event.a}} {{", "'{{' is not closed"),
        ])
    func malformed(template: String, message: String) {
        let error = #expect(throws: JobTemplate.Invalid.self) { try JobTemplate(["job": ["x": .string(template)]]) }
        #expect(error?.message.hasPrefix(message) == true, "\(error?.message ?? "no error")")
    }
}

@Suite("Rule sets")
struct RuleSetTests {
    static func action(_ queue: String, _ job: EventValue, sink: SinkKind = .list) -> Rule.Action {
        Rule.Action(queue: queue, job: try! JobTemplate(job), sink: sink)
    }

    static let rules = [
        Rule(
            name: "feedback",
            when: .all([RuleFixtures.field("event.event_type", .eq("FeedbackGiven")), RuleFixtures.field("row.chain_id", .in([1, 137]))]),
            actions: [
                action("jobs:feedback", ["type": "process_feedback", "id": "{{event.event_id}}", "chain": "{{row.chain_id}}"]),
                action("audit", ["seq": "{{meta.seq}}"], sink: .stream),
            ]
        ),
        Rule(name: "big", when: RuleFixtures.field("event.n", .gt(3)), actions: [action("jobs:big", ["n": "{{event.n}}"])]),
        Rule(name: "never", when: RuleFixtures.field("event.n", .lt(0)), actions: [action("jobs:never", [:])]),
        Rule(name: "everything", actions: [action("jobs:all", "{{event.event_id}}")]),
    ]

    @Test("first_match: the actions of the first rule that matches, rendered, in order")
    func firstMatch() {
        let matched = RuleSet(rules: Self.rules).evaluate(RuleFixtures.context)
        #expect(
            matched == [
                MatchedAction(
                    rule: "feedback", queue: "jobs:feedback", sink: .list, job: ["type": "process_feedback", "id": "evt-1", "chain": 137],
                    body: #"{"type":"process_feedback","id":"evt-1","chain":137}"#),
                MatchedAction(rule: "feedback", queue: "audit", sink: .stream, job: ["seq": 42], body: #"{"seq":42}"#),
            ])
    }

    @Test("all_matches: every matching rule, in rule order; a rule without a condition matches everything")
    func allMatches() {
        let matched = RuleSet(rules: Self.rules, mode: .allMatches).evaluate(RuleFixtures.context)
        #expect(matched.map(\.queue) == ["jobs:feedback", "audit", "jobs:big", "jobs:all"])
        #expect(matched.last?.body == #""evt-1""#)
        #expect(
            RuleSet(rules: Self.rules, mode: .allMatches).evaluate(EvaluationContext(event: ["n": -1])).map(\.rule) == [
                "never", "everything",
            ])
    }

    @Test("no match: nothing; diagnostics carry the rule's name")
    func noMatch() {
        var diagnostics: [EvaluationDiagnostic] = []
        let set = RuleSet(rules: Array(Self.rules.prefix(3)))
        #expect(
            set.evaluate(RuleFixtures.withoutRow.with(event: ["event_type": "FeedbackGiven", "n": "3"])) { diagnostics.append($0) }.isEmpty)
        #expect(
            diagnostics.map(\.description) == [
                "rule 'feedback': row.chain_id is missing (in is false)",
                #"rule 'big': event.n is a string ("3"), compared (gt) with an integer (3)"#,
                #"rule 'never': event.n is a string ("3"), compared (lt) with an integer (0)"#,
            ])
        #expect(diagnostics.map(\.rule) == ["feedback", "big", "never"])
    }

    @Test("template diagnostics of a matched rule carry its name")
    func templateDiagnostics() {
        var diagnostics: [EvaluationDiagnostic] = []
        let set = RuleSet(rules: [Rule(name: "r", actions: [Self.action("q", ["id": "{{event.nope}}"])])])
        #expect(set.evaluate(RuleFixtures.context) { diagnostics.append($0) }.map(\.body) == [#"{"id":null}"#])
        #expect(diagnostics.map(\.rule) == ["r"])
        #expect(diagnostics.map(\.kind) == [.missingField])
    }
}

extension EvaluationContext {
    func with(event: EventValue) -> EvaluationContext {
        var copy = self
        copy.event = event
        return copy
    }
}
