import Yams

/// How the row of an event is looked up: the row of `schema.table` whose column `keyColumn` equals the event's
/// value at `valuePath` (`fetch: {table: public.events, key: event_id, from: event.event_id}`).
public struct FetchSpec: Sendable, Hashable {
    public var schema: String
    public var table: String
    public var keyColumn: String
    /// An `event.` path.
    public var valuePath: FieldPath

    public init(schema: String = "public", table: String, keyColumn: String, valuePath: FieldPath) {
        self.schema = schema
        self.table = table
        self.keyColumn = keyColumn
        self.valuePath = valuePath
    }

    /// The key to look up for `context`, as text for `$1`: a string as it is, a number or boolean as its JSON text.
    /// `nil` when the value is missing, null, an array or an object: then there is no row to look up.
    public func parameter(for context: EvaluationContext) -> String? {
        switch context.value(at: valuePath) {
        case .string(let string): string
        case .integer(let integer): String(integer)
        case .number(let number, let literal) where number.isFinite: EventValue.number(number, literal: literal).jsonText
        case .bool(let bool): bool ? "true" : "false"
        default: nil
        }
    }
}

/// How a channel's jobs are batched (`batch: {max_items: 10, max_seconds: 2, group_by: [event.table, event.op]}`).
public struct BatchSpec: Sendable, Hashable {
    public var maxItems: Int
    public var maxAge: Duration
    /// The fields whose values make an event's group; empty: one group.
    public var groupBy: [FieldPath]

    public init(maxItems: Int = 10, maxAge: Duration = .seconds(2), groupBy: [FieldPath] = []) {
        self.maxItems = maxItems
        self.maxAge = maxAge
        self.groupBy = groupBy
    }

    /// The group of `context`: a JSON object of its `groupBy` paths and their values (a missing one is null), so
    /// that different values never make the same key: `{"event.table":"parcels","event.op":"INSERT"}`; `{}` when
    /// `groupBy` is empty.
    public func key(for context: EvaluationContext) -> String {
        EventValue.object(EventObject(groupBy.map { ($0.description, context.value(at: $0) ?? .null) })).jsonText
    }
}

/// What happens to an event that no rule matches.
public enum UnmatchedPolicy: String, Sendable, Hashable, CaseIterable {
    /// Nothing is enqueued.
    case drop
    /// The event goes to the channel's `queue`, its payload as it was emitted (as without rules).
    case defaultQueue = "default_queue"
}

/// One channel's pipeline, from its mapping in the processor's configuration file:
///
/// ```yaml
/// channels:
///   new_event:
///     queue: jobs                  # the channel's list: events without rules, unmatched ones, actions without a queue
///     decode: json                 # json | csv | text (absent: the payload is passed through as text)
///     csv_columns: [op, schema, table, key, value]            # with decode: csv, required
///     fetch: {table: public.events, key: event_id, from: event.event_id}   # the row: column `key` = value at `from`
///     rules:
///       - name: feedback           # default: rules[0], rules[1]…; unique
///         when: {all: [{field: event.event_type, eq: FeedbackGiven}, {field: row.chain_id, in: [1, 137]}]}
///         enqueue: {queue: "jobs:feedback", sink: list, job: {type: process_feedback, id: "{{event.event_id}}"}}
///     rule_mode: first_match       # first_match (default) | all_matches
///     unmatched: drop              # drop | default_queue (default: default_queue when there is a queue, else drop)
///     batch: {max_items: 10, max_seconds: 2, group_by: [event.table, event.op]}
///     sink: list                   # list (default) | stream: the default of the channel's queue and its actions
///     stream: {maxlen: 100000}     # with a stream sink: approximate trimming (XADD MAXLEN ~)
/// ```
///
/// `when` is a condition: `{all: [...]}`, `{any: [...]}`, `{not: ...}`, `{field: <path>, <operator>: <value>}`
/// with one operator of `eq`, `ne`, `in` (a list), `gt`, `gte`, `lt`, `lte`, `exists` (true or false), or a list
/// (all of them). `enqueue` is one action or a list of them. Values in the file are read as in YAML 1.2's core
/// schema: `null`/`~`/nothing, `true`/`false`, decimal integers and numbers (plain, unquoted); anything quoted, and
/// every other scalar (`yes`, `0x1F`, `.inf`), is a string.
///
/// Every path is checked against what the channel has: `event.` fields need `decode: json` or `csv` (and with csv,
/// one of its columns), `row.` fields need `fetch`, `meta.` is `channel`, `seq` or `created_at`.
public struct ChannelPipeline: Sendable, Hashable {
    /// The channel's Redis list (or stream).
    public var queue: String?
    /// `nil`: the payload is not decoded (rules see it as a string).
    public var decoder: PayloadDecoder?
    public var fetch: FetchSpec?
    /// `nil`: no rules, every event goes to `queue`.
    public var rules: RuleSet?
    public var unmatched: UnmatchedPolicy
    public var batch: BatchSpec?
    /// The sink of the channel's queue, and of actions that do not name one.
    public var sink: SinkKind
    /// Streams are trimmed to about this many entries; `nil`: not trimmed.
    public var streamMaxLength: Int?
    /// How often a job Redis refuses (`WRONGTYPE` on its queue) is tried before it goes to the dead-letter list
    /// (`max_attempts`, default 3), and the wait before the second try, doubled for each further one
    /// (`attempt_backoff`, default 0.1 s). A failure that cannot change on another try (an undecodable payload, a
    /// key that is not a value of its column's type, a job larger than Redis takes) is dead-lettered at once.
    public var maxAttempts = 3
    public var attemptBackoff = Duration.milliseconds(100)

    /// The keys of a channel's mapping this pipeline reads, besides `queue`.
    public static let allowedKeys: Set<String> = [
        "decode", "csv_columns", "fetch", "rules", "rule_mode", "unmatched", "batch", "sink", "stream", "max_attempts", "attempt_backoff",
    ]
    /// Every key of a channel's mapping: ``allowedKeys`` and `queue`.
    public static let channelKeys: Set<String> = allowedKeys.union(["queue"])

    public init(
        queue: String?, decoder: PayloadDecoder? = nil, fetch: FetchSpec? = nil, rules: RuleSet? = nil,
        unmatched: UnmatchedPolicy = .defaultQueue, batch: BatchSpec? = nil, sink: SinkKind = .list, streamMaxLength: Int? = nil
    ) {
        self.queue = queue
        self.decoder = decoder
        self.fetch = fetch
        self.rules = rules
        self.unmatched = unmatched
        self.batch = batch
        self.sink = sink
        self.streamMaxLength = streamMaxLength
    }

    /// The payload decoded as `decode:` says; without a decoder, the payload as a string.
    public func decode(_ payload: String) -> Result<EventValue, DecodeFailure> {
        decoder?.decode(payload) ?? .success(.string(payload))
    }

    /// The jobs of one event: the matching rules' actions; or, when no rule matches (or there are no rules) and the
    /// channel sends such events to its queue, the event itself with its `payload` as it was emitted.
    public func route(_ context: EvaluationContext, payload: String, report: (EvaluationDiagnostic) -> Void = { _ in }) -> [MatchedAction] {
        if let rules {
            let matched = rules.evaluate(context, report: report)
            guard matched.isEmpty, unmatched == .defaultQueue else { return matched }
        }
        guard let queue else { return [] }
        return [MatchedAction(rule: nil, queue: queue, sink: sink, job: context.event, body: payload)]
    }
}

// MARK: - Parsing

extension ChannelPipeline {
    /// Reads one channel's mapping (`channels.<name>`); keys other than ``channelKeys`` are refused. Every error
    /// names the file, line, column and key path.
    public init(configuration node: ConfigurationNode) throws {
        let fields = try node.mapping(allowed: Self.channelKeys)
        self.init(queue: nil)
        if let queueNode = fields["queue"] {
            let queue = try queueNode.string()
            if queue.isEmpty { throw queueNode.error("the queue name is empty") }
            self.queue = queue
        }

        // decode and csv_columns
        let decodeName = try fields["decode"]?.string()
        switch (decodeName, fields["csv_columns"]) {
        case ("csv", let columnsNode?):
            decoder = PayloadDecoder(format: .csv(columns: try Self.columns(columnsNode)))
        case ("csv", nil):
            throw fields["decode"]!.error("'csv_columns' is missing: decode: csv needs the record's column names, e.g. [op, schema, table, key, value]")
        case (_, let columnsNode?):
            throw columnsNode.error("'csv_columns' is only read with decode: csv")
        case ("json", nil):
            decoder = PayloadDecoder(format: .json)
        case ("text", nil):
            decoder = PayloadDecoder(format: .text)
        case (let name?, nil):
            throw fields["decode"]!.error("unknown decode '\(name)' (expected json, csv or text)")
        case (nil, nil):
            break
        }
        let paths = PathRules(decoder: decoder, hasFetch: fields["fetch"] != nil)
        if let attemptsNode = fields["max_attempts"] { maxAttempts = try attemptsNode.int(in: 1...100) }
        if let backoffNode = fields["attempt_backoff"] {
            let seconds = try backoffNode.seconds()
            if seconds > 60 { throw backoffNode.error("\(seconds) seconds is more than a minute: every later event of the chunk waits for it") }
            attemptBackoff = .milliseconds(Int((seconds * 1000).rounded()))
        }

        if let fetchNode = fields["fetch"] {
            fetch = try Self.fetch(fetchNode, paths)
        }
        if let sinkNode = fields["sink"] {
            sink = try Self.sink(sinkNode)
        }

        // rules, rule_mode, unmatched
        if let rulesNode = fields["rules"] {
            var mode = RuleSet.Mode.firstMatch
            if let modeNode = fields["rule_mode"] {
                let name = try modeNode.string()
                guard let value = RuleSet.Mode(rawValue: name) else {
                    throw modeNode.error("unknown rule_mode '\(name)' (expected first_match or all_matches)")
                }
                mode = value
            }
            rules = RuleSet(rules: try Self.rules(rulesNode, queue: queue, sink: sink, paths), mode: mode)
            unmatched = queue == nil ? .drop : .defaultQueue
            if let unmatchedNode = fields["unmatched"] {
                let name = try unmatchedNode.string()
                guard let value = UnmatchedPolicy(rawValue: name) else {
                    throw unmatchedNode.error("unknown unmatched '\(name)' (expected drop or default_queue)")
                }
                if value == .defaultQueue, queue == nil {
                    throw unmatchedNode.error("unmatched: default_queue sends unmatched events to the channel's 'queue', and there is none")
                }
                unmatched = value
            }
        } else {
            for key in ["rule_mode", "unmatched"] {
                if let other = fields[key] { throw other.error("'\(key)' is only read with 'rules'") }
            }
            if queue == nil {
                throw node.error("'queue' is missing: the Redis list for this channel's events (or give 'rules' whose actions name their queues)")
            }
        }

        if let batchNode = fields["batch"] {
            batch = try Self.batch(batchNode, paths)
        }

        if let streamNode = fields["stream"] {
            let usesStreams = sink == .stream || (rules?.rules ?? []).contains { $0.actions.contains { $0.sink == .stream } }
            guard usesStreams else {
                throw streamNode.error("'stream' is only read when events go to a stream (sink: stream)")
            }
            let streamFields = try streamNode.mapping(allowed: ["maxlen"])
            if let maxlen = streamFields["maxlen"] { streamMaxLength = try maxlen.int(in: 1...1_000_000_000) }
        }
    }

    private static func columns(_ node: ConfigurationNode) throws -> [String] {
        let items = try node.items()
        if items.isEmpty { throw node.error("'csv_columns' is empty: name the record's columns") }
        var columns: [String] = []
        for item in items {
            let column = try item.string()
            if column.isEmpty { throw item.error("a column name is empty") }
            if columns.contains(column) { throw item.error("the column '\(column)' is named twice") }
            columns.append(column)
        }
        return columns
    }

    private static func sink(_ node: ConfigurationNode) throws -> SinkKind {
        let name = try node.string()
        guard let sink = SinkKind(rawValue: name) else { throw node.error("unknown sink '\(name)' (expected list or stream)") }
        return sink
    }

    private static func fetch(_ node: ConfigurationNode, _ paths: PathRules) throws -> FetchSpec {
        let fields = try node.mapping(allowed: ["table", "key", "from"])
        guard let tableNode = fields["table"] else { throw node.error("'table' is missing: the table to read the row from (name or schema.name)") }
        guard let keyNode = fields["key"] else { throw node.error("'key' is missing: the column that identifies the row") }
        guard let fromNode = fields["from"] else { throw node.error("'from' is missing: the event's field that holds the key (event.…)") }
        let tableText = try tableNode.string()
        let parts = tableText.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 }) else {
            throw tableNode.error("'\(TextExcerpt.excerpt(tableText, limit: 80))' is not a table name (name or schema.name, each of 1 to 63 bytes)")
        }
        let keyColumn = try keyNode.string()
        guard !keyColumn.isEmpty, keyColumn.utf8.count <= 63 else { throw keyNode.error("a column name must have 1 to 63 bytes") }
        let fromText = try fromNode.string()
        let path = try fromNode.fieldPath()
        guard path.root == .event, !path.components.isEmpty else {
            throw fromNode.error("'from' must be a field of the event (event.…), found '\(TextExcerpt.excerpt(fromText, limit: 80))'")
        }
        try paths.check(path, at: fromNode)
        return FetchSpec(schema: parts.count == 2 ? parts[0] : "public", table: parts.last!, keyColumn: keyColumn, valuePath: path)
    }

    private static func batch(_ node: ConfigurationNode, _ paths: PathRules) throws -> BatchSpec {
        let fields = try node.mapping(allowed: ["max_items", "max_seconds", "group_by"])
        var batch = BatchSpec()
        if let maxItems = fields["max_items"] { batch.maxItems = try maxItems.int(in: 1...100_000) }
        if let maxSeconds = fields["max_seconds"] {
            let seconds = try maxSeconds.seconds()
            if seconds > 86_400 { throw maxSeconds.error("\(seconds) seconds is more than a day") }
            batch.maxAge = .seconds(seconds)
        }
        if let groupBy = fields["group_by"] {
            batch.groupBy = try groupBy.items().map { item in
                let path = try item.fieldPath()
                try paths.check(path, at: item)
                return path
            }
        }
        return batch
    }

    private static func rules(_ node: ConfigurationNode, queue: String?, sink: SinkKind, _ paths: PathRules) throws -> [Rule] {
        let items = try node.items()
        if items.isEmpty { throw node.error("the list of rules is empty: give at least one rule, or leave 'rules' out") }
        var rules: [Rule] = []
        var names: [String: String] = [:]
        for (index, item) in items.enumerated() {
            let fields = try item.mapping(allowed: ["name", "when", "enqueue"])
            var name = "rules[\(index)]"
            if let nameNode = fields["name"] {
                name = try nameNode.string()
                if name.isEmpty { throw nameNode.error("the rule name is empty") }
                if let other = names[name] { throw nameNode.error("the rule name '\(name)' is already used by \(other)") }
            }
            names[name] = "rules[\(index)]"
            let condition = try fields["when"].map { try $0.condition(paths) }
            guard let enqueue = fields["enqueue"] else {
                throw item.error("'enqueue' is missing: what the rule enqueues, {queue: …, job: {…}} (or a list of them)")
            }
            let actionNodes = enqueue.isList ? try enqueue.items() : [enqueue]
            if actionNodes.isEmpty { throw enqueue.error("'enqueue' is empty: give at least one {queue: …, job: {…}}") }
            var actions: [Rule.Action] = []
            for actionNode in actionNodes {
                let actionFields = try actionNode.mapping(allowed: ["queue", "sink", "job"])
                var actionQueue = queue
                if let queueNode = actionFields["queue"] {
                    actionQueue = try queueNode.string()
                    if actionQueue?.isEmpty == true { throw queueNode.error("the queue name is empty") }
                }
                guard let actionQueue else {
                    throw actionNode.error("'queue' is missing, and the channel has no 'queue' to default to")
                }
                let actionSink = try actionFields["sink"].map(Self.sink) ?? sink
                guard let jobNode = actionFields["job"] else {
                    throw actionNode.error("'job' is missing: the job to enqueue, e.g. {type: process, id: \"{{event.id}}\"}")
                }
                actions.append(Rule.Action(queue: actionQueue, job: try jobNode.jobTemplate(paths), sink: actionSink))
            }
            rules.append(Rule(name: name, when: condition, actions: actions))
        }
        return rules
    }
}

/// What the paths of a channel may read, given its decoder and fetch.
private struct PathRules {
    var decoder: PayloadDecoder?
    var hasFetch: Bool

    func check(_ path: FieldPath, at node: ConfigurationNode) throws {
        switch path.root {
        case .event:
            guard let first = path.components.first else { return }
            switch decoder?.format {
            case nil, .text?:
                throw node.error("\(path) reads a field of the payload: set decode: json or csv")
            case .csv(let columns)?:
                guard columns.contains(first) else {
                    throw node.error("\(path): '\(first)' is not one of the CSV columns (\(columns.joined(separator: ", ")))")
                }
                if path.components.count > 1 {
                    throw node.error("\(path): a CSV field is text, it has no fields of its own")
                }
            case .json?:
                return
            }
        case .row:
            if !hasFetch { throw node.error("\(path) reads the fetched row: add fetch: {table: …, key: …, from: event.…}") }
        case .meta:
            return
        }
    }
}

extension ConfigurationNode {
    /// What the node is, for messages: `a scalar ('x')`, `a list`, `a mapping`.
    fileprivate var found: String {
        switch node {
        case .scalar(let scalar): "a scalar ('\(TextExcerpt.excerpt(scalar.string, limit: 40))')"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// A field path (a string), checked.
    fileprivate func fieldPath() throws -> FieldPath {
        let text = try string()
        do {
            return try FieldPath(validating: text)
        } catch {
            throw self.error(error.message)
        }
    }

    /// The node as a value (YAML 1.2 core schema: see ``ChannelPipeline``).
    fileprivate func eventValue() throws -> EventValue {
        switch node {
        case .scalar(let scalar):
            return Self.value(of: scalar)
        case .sequence:
            return .array(try items().map { try $0.eventValue() })
        case .mapping:
            return .object(EventObject(try orderedMapping().map { ($0.key, try $0.value.eventValue()) }))
        case .alias:
            throw error("aliases are not read here")
        }
    }

    private static func value(of scalar: Node.Scalar) -> EventValue {
        let text = scalar.string
        guard scalar.style == .plain || scalar.style == .any, scalar.tag.rawValue != Tag.Name.str.rawValue else { return .string(text) }
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        let utf8 = Array(text.utf8)
        var position = 0
        if position < utf8.count, utf8[position] == UInt8(ascii: "-") || utf8[position] == UInt8(ascii: "+") { position += 1 }
        let digitsStart = position
        func digits() -> Int {
            let start = position
            while position < utf8.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(utf8[position]) { position += 1 }
            return position - start
        }
        let integerDigits = digits()
        if position == utf8.count, integerDigits > 0 {
            let unsigned = String(decoding: utf8[digitsStart...], as: UTF8.self)
            let signed = (utf8.first == UInt8(ascii: "-") ? "-" : "") + unsigned
            if let integer = Int64(signed) { return .integer(integer) }
            return Double(signed).map { EventValue.number($0) } ?? .string(text)
        }
        var fractionDigits = 0
        if position < utf8.count, utf8[position] == UInt8(ascii: ".") {
            position += 1
            fractionDigits = digits()
        }
        guard integerDigits + fractionDigits > 0 else { return .string(text) }
        if position < utf8.count, utf8[position] == UInt8(ascii: "e") || utf8[position] == UInt8(ascii: "E") {
            position += 1
            if position < utf8.count, utf8[position] == UInt8(ascii: "-") || utf8[position] == UInt8(ascii: "+") { position += 1 }
            guard digits() > 0 else { return .string(text) }
        }
        guard position == utf8.count, let number = Double(text), number.isFinite else { return .string(text) }
        return .number(number)
    }

    /// A condition: a mapping with `all`, `any`, `not`, or `field` and one operator; or a list (all of them).
    fileprivate func condition(_ paths: PathRules) throws -> Condition {
        let conditionForms = "a condition is {all: […]}, {any: […]}, {not: …}, {field: …, <operator>: …} or a list"
        if isList {
            let items = try items()
            if items.isEmpty { throw error("an empty list of conditions") }
            return .all(try items.map { try $0.condition(paths) })
        }
        guard case .mapping = node else { throw error("expected a condition, found \(found) (\(conditionForms))") }
        let entries = try orderedEntries()
        guard let fieldEntry = entries.first(where: { $0.key == "field" }) else {
            guard let first = entries.first else { throw error("an empty condition (\(conditionForms))") }
            if let unknown = entries.first(where: { !["all", "any", "not"].contains($0.key) }) {
                let hint = FieldTest.operatorNames.contains(unknown.key) ? "; an operator needs a 'field'" : ""
                throw unknown.keyNode.error("unknown condition '\(unknown.key)' (\(conditionForms))\(hint)")
            }
            if entries.count > 1 {
                throw entries[1].keyNode.error("a condition has one of all, any or not (found \(entries.map(\.key).joined(separator: " and "))): nest them to combine")
            }
            switch first.key {
            case "not":
                return .not(try first.value.condition(paths))
            default:
                let items = try first.value.items()
                if items.isEmpty { throw first.value.error("'\(first.key)' needs at least one condition") }
                let conditions = try items.map { try $0.condition(paths) }
                return first.key == "all" ? .all(conditions) : .any(conditions)
            }
        }
        let path = try fieldEntry.value.fieldPath()
        try paths.check(path, at: fieldEntry.value)
        let operators = entries.filter { $0.key != "field" }
        let expected = "expected one of: \(FieldTest.operatorNames.joined(separator: ", "))"
        guard let test = operators.first else {
            throw error("the test of \(path) has no operator (\(expected))")
        }
        if let unknown = operators.first(where: { !FieldTest.operatorNames.contains($0.key) }) {
            throw unknown.keyNode.error("unknown operator '\(unknown.key)' (\(expected))")
        }
        if operators.count > 1 {
            throw operators[1].keyNode.error("one operator per field test (found \(operators.map(\.key).joined(separator: " and "))): combine tests with all: […]")
        }
        let operand = test.value
        switch test.key {
        case "eq": return .field(path, .eq(try operand.eventValue()))
        case "ne": return .field(path, .ne(try operand.eventValue()))
        case "in":
            guard operand.isList else { throw operand.error("'in' takes a list, found \(operand.found)") }
            return .field(path, .in(try operand.items().map { try $0.eventValue() }))
        case "exists":
            return .field(path, .exists(try operand.bool()))
        default:
            let value = try operand.eventValue()
            guard value.category == .number || value.category == .string else {
                throw operand.error("'\(test.key)' compares numbers or strings, found \(value.kindDescription)")
            }
            switch test.key {
            case "gt": return .field(path, .gt(value))
            case "gte": return .field(path, .gte(value))
            case "lt": return .field(path, .lt(value))
            default: return .field(path, .lte(value))
            }
        }
    }

    /// A job template: every string's placeholders are read and their paths checked, each error at its string.
    fileprivate func jobTemplate(_ paths: PathRules) throws -> JobTemplate {
        try checkTemplateStrings(paths)
        do {
            return try JobTemplate(try eventValue())
        } catch let error as JobTemplate.Invalid {
            throw self.error(error.message)
        }
    }

    private func checkTemplateStrings(_ paths: PathRules) throws {
        switch node {
        case .scalar:
            guard case .string(let text) = try eventValue() else { return }
            let template: JobTemplate
            do {
                template = try JobTemplate.parse(text)
            } catch {
                throw self.error(error.message)
            }
            for path in template.fieldPaths { try paths.check(path, at: self) }
        case .sequence:
            for item in try items() { try item.checkTemplateStrings(paths) }
        case .mapping:
            for (_, value) in try orderedMapping() { try value.checkTemplateStrings(paths) }
        case .alias:
            throw error("aliases are not read here")
        }
    }
}
