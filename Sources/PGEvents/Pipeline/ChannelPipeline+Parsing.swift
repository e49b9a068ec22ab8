import PGEventsSystem
import Yams

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
            throw fields["decode"]!.error(
                "'csv_columns' is missing: decode: csv needs the record's column names, e.g. [op, schema, table, key, value]")
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
            if seconds > 60 {
                throw backoffNode.error("\(seconds) seconds is more than a minute: every later event of the chunk waits for it")
            }
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
                throw node.error(
                    "'queue' is missing: the Redis list for this channel's events (or give 'rules' whose actions name their queues)")
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
        guard let tableNode = fields["table"] else {
            throw node.error("'table' is missing: the table to read the row from (name or schema.name)")
        }
        guard let keyNode = fields["key"] else { throw node.error("'key' is missing: the column that identifies the row") }
        guard let fromNode = fields["from"] else { throw node.error("'from' is missing: the event's field that holds the key (event.…)") }
        let tableText = try tableNode.string()
        let parts = tableText.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 }) else {
            throw tableNode.error(
                "'\(TextExcerpt.excerpt(tableText, limit: 80))' is not a table name (name or schema.name, each of 1 to 63 bytes)")
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
                throw entries[1].keyNode.error(
                    "a condition has one of all, any or not (found \(entries.map(\.key).joined(separator: " and "))): nest them to combine")
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
            throw operators[1].keyNode.error(
                "one operator per field test (found \(operators.map(\.key).joined(separator: " and "))): combine tests with all: […]")
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
