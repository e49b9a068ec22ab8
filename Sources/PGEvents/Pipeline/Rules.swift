// Trigger rules: which events become which jobs on which queues.
//
// Semantics of a field test (`{field: event.chain_id, gt: 100}`):
//
// - A missing field (the path leads nowhere, or `row.` without a row) makes every test false, except
//   `exists: false` (true) and `ne` (true). `ne` is exactly `not eq`, always.
// - `null` is a value: `{eq: null}` matches a null field, `exists: true` matches it too.
// - Numbers compare by value across integers and numbers (`1 == 1.0`), exactly (an Int64 is not rounded to a
//   Double). Strings compare with `gt`/`gte`/`lt`/`lte` in Unicode code point order (the order of their UTF-8
//   bytes, PostgreSQL's "C" collation), and with `eq` by Swift's `==` (canonical equivalence).
// - `eq` on arrays and objects is structural: arrays element by element, objects member by member in any order.
// - `in` is true when the field equals (as `eq`) one of the list's values.
// - Values of different kinds are never equal, so `eq` is false and `ne` true; ordering them (`gt` a string
//   against a number, or a boolean, null, an array or an object against anything) is false. Both are reported as
//   type mismatches (never a crash) when the field is not null; so is an `in` whose list holds nothing of the
//   field's kind. A missing field is reported too, except by `exists`.
// - `all` is true when every condition is (so `all: []` is true), `any` when one is (`any: []` is false); both
//   stop at the first condition that decides, so later conditions report nothing. `not` negates.

import PGEventsSystem

/// One test of a field's value.
public enum FieldTest: Sendable, Hashable {
    case eq(EventValue)
    case ne(EventValue)
    case `in`([EventValue])
    case gt(EventValue)
    case gte(EventValue)
    case lt(EventValue)
    case lte(EventValue)
    /// `exists: true`: the field is there (null counts); `exists: false`: it is missing.
    case exists(Bool)

    /// The operators, as the configuration writes them.
    public static let operatorNames = ["eq", "ne", "in", "gt", "gte", "lt", "lte", "exists"]

    public var operatorName: String {
        switch self {
        case .eq: "eq"
        case .ne: "ne"
        case .in: "in"
        case .gt: "gt"
        case .gte: "gte"
        case .lt: "lt"
        case .lte: "lte"
        case .exists: "exists"
        }
    }
}

/// When a rule applies: a tree of `all`, `any`, `not` and field tests (semantics at the top of this file).
public indirect enum Condition: Sendable, Hashable {
    case all([Condition])
    case any([Condition])
    case not(Condition)
    case field(FieldPath, FieldTest)

    /// Whether the condition holds for `context`; missing fields and type mismatches met on the way are passed to
    /// `report`.
    public func evaluate(_ context: EvaluationContext, report: (EvaluationDiagnostic) -> Void = { _ in }) -> Bool {
        switch self {
        case .all(let conditions):
            return conditions.allSatisfy { $0.evaluate(context, report: report) }
        case .any(let conditions):
            return conditions.contains { $0.evaluate(context, report: report) }
        case .not(let condition):
            return !condition.evaluate(context, report: report)
        case .field(let path, let test):
            return Self.test(test, context.value(at: path), path: path, report: report)
        }
    }

    /// Every field path the condition reads.
    public var fieldPaths: [FieldPath] {
        switch self {
        case .all(let conditions), .any(let conditions): conditions.flatMap(\.fieldPaths)
        case .not(let condition): condition.fieldPaths
        case .field(let path, _): [path]
        }
    }

    private static func test(_ test: FieldTest, _ value: EventValue?, path: FieldPath, report: (EvaluationDiagnostic) -> Void) -> Bool {
        if case .exists(let expected) = test { return (value != nil) == expected }
        guard let value else {
            report(
                EvaluationDiagnostic(
                    kind: .missingField, path: path, message: "\(path) is missing (\(test.operatorName) is \(isNotEqual(test)))"))
            return isNotEqual(test)
        }
        switch test {
        case .eq(let operand):
            return equals(value, operand, test, path, report)
        case .ne(let operand):
            return !equals(value, operand, test, path, report)
        case .in(let list):
            if list.contains(where: { value.semanticallyEquals($0) }) { return true }
            if value != .null, !list.isEmpty, !list.contains(where: { $0.category == value.category }) {
                report(
                    mismatch(
                        value, path, test,
                        "a list of \(Set(list.map(\.kindDescription)).sorted().joined(separator: " and ")) (\(TextExcerpt.excerpt(EventValue.array(list).jsonText, limit: 60)))"
                    ))
            }
            return false
        case .gt(let operand), .gte(let operand), .lt(let operand), .lte(let operand):
            guard let ordering = value.ordering(comparedWith: operand) else {
                let comparable = value.category == operand.category && [.number, .string].contains(value.category)
                if !comparable, value != .null { report(mismatch(value, path, test, describe(operand))) }
                return false
            }
            switch test {
            case .gt: return ordering == .descending
            case .gte: return ordering != .ascending
            case .lt: return ordering == .ascending
            default: return ordering != .descending
            }
        case .exists:
            return true
        }
    }

    private static func isNotEqual(_ test: FieldTest) -> Bool {
        if case .ne = test { return true }
        return false
    }

    private static func equals(
        _ value: EventValue, _ operand: EventValue, _ test: FieldTest, _ path: FieldPath, _ report: (EvaluationDiagnostic) -> Void
    ) -> Bool {
        if value.semanticallyEquals(operand) { return true }
        if value != .null, operand != .null, value.category != operand.category {
            report(mismatch(value, path, test, describe(operand)))
        }
        return false
    }

    private static func mismatch(_ value: EventValue, _ path: FieldPath, _ test: FieldTest, _ operand: String) -> EvaluationDiagnostic {
        EvaluationDiagnostic(
            kind: .typeMismatch, path: path, message: "\(path) is \(describe(value)), compared (\(test.operatorName)) with \(operand)")
    }

    /// `a string ("1")`, `an integer (100)`, `null`.
    private static func describe(_ value: EventValue) -> String {
        value == .null ? "null" : "\(value.kindDescription) (\(TextExcerpt.excerpt(value.jsonText, limit: 60)))"
    }
}

/// Where a job goes in Redis.
public enum SinkKind: String, Sendable, Hashable, CaseIterable {
    /// `LPUSH` onto a list (workers `BRPOP`).
    case list
    /// `XADD` to a stream (consumer groups), trimmed approximately to the channel's `stream.maxlen`.
    case stream
}

/// A named rule: when its condition holds, its actions enqueue jobs.
public struct Rule: Sendable, Hashable {
    /// One job to enqueue.
    public struct Action: Sendable, Hashable {
        /// The Redis list or stream.
        public var queue: String
        public var job: JobTemplate
        public var sink: SinkKind

        public init(queue: String, job: JobTemplate, sink: SinkKind = .list) {
            self.queue = queue
            self.job = job
            self.sink = sink
        }
    }

    public var name: String
    /// `nil`: the rule applies to every event.
    public var when: Condition?
    public var actions: [Action]

    public init(name: String, when: Condition? = nil, actions: [Action]) {
        self.name = name
        self.when = when
        self.actions = actions
    }

    /// Whether the rule applies to `context`.
    public func matches(_ context: EvaluationContext, report: (EvaluationDiagnostic) -> Void = { _ in }) -> Bool {
        guard let when else { return true }
        return when.evaluate(context) { diagnostic in
            var diagnostic = diagnostic
            diagnostic.rule = name
            report(diagnostic)
        }
    }
}

/// A job to enqueue: the rendered job of a matched rule's action (or the event itself, for an unmatched event sent
/// to the channel's queue).
public struct MatchedAction: Sendable, Hashable {
    /// The rule that matched; `nil` for an event no rule matched, sent to the channel's queue (`unmatched: default_queue`,
    /// or a channel without rules).
    public var rule: String?
    public var queue: String
    public var sink: SinkKind
    /// The rendered job (for an unmatched event: the decoded event).
    public var job: EventValue
    /// What is written to Redis: the job's compact JSON text (for an unmatched event: its payload as it was emitted).
    public var body: String

    public init(rule: String?, queue: String, sink: SinkKind, job: EventValue, body: String) {
        self.rule = rule
        self.queue = queue
        self.sink = sink
        self.job = job
        self.body = body
    }
}

/// A channel's rules, in order.
public struct RuleSet: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Only the first rule that matches enqueues.
        case firstMatch = "first_match"
        /// Every rule that matches enqueues, in rule order.
        case allMatches = "all_matches"
    }

    public var rules: [Rule]
    public var mode: Mode

    public init(rules: [Rule], mode: Mode = .firstMatch) {
        self.rules = rules
        self.mode = mode
    }

    /// The jobs `context` makes: the actions of the first matching rule (or of every matching rule), rendered, in
    /// order. Empty when no rule matches. Missing fields and type mismatches met on the way go to `report`, with
    /// the rule's name.
    public func evaluate(_ context: EvaluationContext, report: (EvaluationDiagnostic) -> Void = { _ in }) -> [MatchedAction] {
        var matched: [MatchedAction] = []
        for rule in rules where rule.matches(context, report: report) {
            for action in rule.actions {
                let job = action.job.render(context) { diagnostic in
                    var diagnostic = diagnostic
                    diagnostic.rule = rule.name
                    report(diagnostic)
                }
                matched.append(MatchedAction(rule: rule.name, queue: action.queue, sink: action.sink, job: job, body: job.jsonText))
            }
            if mode == .firstMatch { break }
        }
        return matched
    }
}
