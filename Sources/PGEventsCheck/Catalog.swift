public import PGEventsHarness
public import PGEventsPostgres

/// Where a notifying function sends: a channel name, found by reading the function's source.
public enum ChannelSource: Sendable, Hashable, CustomStringConvertible {
    /// A literal: `pg_notify('orders', …)` or `NOTIFY orders`.
    case literal(String)
    /// The trigger's argument: `pg_notify(TG_ARGV[0], …)`.
    case argument(Int)
    /// `'prefix_' || TG_TABLE_NAME` and the like: literals, `TG_TABLE_NAME`, `TG_TABLE_SCHEMA` and `TG_ARGV[n]`
    /// joined by `||`.
    case concatenation([ChannelSource])
    /// The table the trigger is on (`TG_TABLE_NAME`) or its schema (`TG_TABLE_SCHEMA`).
    case tableName, tableSchema
    /// The operation that fired the trigger (`TG_OP`: `INSERT`, `UPDATE`, `DELETE`), as in pgmq's
    /// `'pgmq.' || TG_TABLE_NAME || '.' || TG_OP`.
    case operation
    /// Anything else (a variable, a lookup): known only by watching.
    case dynamic(String)

    public var description: String {
        switch self {
        case .literal(let name): "'\(name)'"
        case .argument(let index): "TG_ARGV[\(index)]"
        case .concatenation(let parts): parts.map(\.description).joined(separator: " || ")
        case .tableName: "TG_TABLE_NAME"
        case .tableSchema: "TG_TABLE_SCHEMA"
        case .operation: "TG_OP"
        case .dynamic(let expression): expression
        }
    }

    /// The channel for a trigger with `arguments` on `table`, fired by `operation`; nil when it cannot be known
    /// from the catalog (or depends on `TG_OP` and no operation is given).
    public func resolve(arguments: [String], table: QualifiedName, operation: TableOperation? = nil) -> String? {
        switch self {
        case .operation: operation?.keyword
        case .literal(let name): name
        case .argument(let index): arguments.indices.contains(index) ? arguments[index] : nil
        case .tableName: table.name
        case .tableSchema: table.schema
        case .concatenation(let parts):
            parts.reduce(Optional("")) { text, part in
                guard let text, let value = part.resolve(arguments: arguments, table: table, operation: operation) else { return nil }
                return text + value
            }
        case .dynamic: nil
        }
    }
}

/// A user trigger, as the catalog describes it, with the channels its function notifies on.
public struct TriggerInfo: Sendable, Hashable {
    public enum Timing: String, Sendable, Hashable { case before = "BEFORE", after = "AFTER", insteadOf = "INSTEAD OF" }

    public var table: QualifiedName
    public var name: String
    /// `schema.function`.
    public var function: String
    public var timing: Timing
    public var operations: Set<TableOperation>
    public var firesOnTruncate: Bool
    public var forEachRow: Bool
    /// `pg_trigger.tgenabled`: `O` (origin and local), `D` (disabled), `R` (replica only), `A` (always).
    public var enabled: Character
    public var arguments: [String]
    /// Where its function (or a function it calls with the channel) notifies; empty: it does not notify.
    public var channelSources: [ChannelSource]
    /// Its `WHEN (…)` condition, as PostgreSQL prints it; nil without one.
    public var condition: String? = nil
    /// The columns of `UPDATE OF a, b`; empty: any UPDATE.
    public var updateColumns: [String] = []

    /// The channels known from the catalog.
    public var channels: [String] {
        var found: [String] = []
        for source in channelSources {
            for channel in resolutions(of: source) where !found.contains(channel) { found.append(channel) }
        }
        return found
    }
    /// Whether some channel can be known only by watching.
    public var hasUnresolvedChannel: Bool { channelSources.contains { resolutions(of: $0).isEmpty } }

    /// The channels `source` names: one, or one per operation the trigger fires on when it uses `TG_OP`.
    public func resolutions(of source: ChannelSource) -> [String] {
        if let channel = source.resolve(arguments: arguments, table: table) { return [channel] }
        return operations.sorted().compactMap { source.resolve(arguments: arguments, table: table, operation: $0) }
    }
    public var notifies: Bool { !channelSources.isEmpty }

    /// `O`/`A` fire for ordinary sessions; `R`/`A` for the logical replication apply worker.
    public var firesLocally: Bool { enabled == "O" || enabled == "A" }
    public var firesOnReplica: Bool { enabled == "R" || enabled == "A" }

    public var enabledDescription: String {
        switch enabled {
        case "O": "enabled"
        case "D": "disabled"
        case "R": "enabled for replica sessions only (ENABLE REPLICA)"
        case "A": "enabled always (ENABLE ALWAYS)"
        default: "tgenabled = \(enabled)"
        }
    }
}

/// Reads the triggers of a database and finds which of them notify, and on which channel.
public enum Catalog {
    /// Every user trigger on every table (not the internal ones behind foreign keys), with its channels.
    public static func triggers(on connection: PostgresConnection) async throws -> [TriggerInfo] {
        let functions = try await notifyingFunctions(on: connection)
        let rows = try await connection.query("""
            SELECT n.nspname, c.relname, t.tgname, pn.nspname || '.' || p.proname, t.tgtype::int, t.tgenabled::text,
                   encode(t.tgargs, 'hex'), t.tgnargs::int, p.oid::int8, pg_get_triggerdef(t.oid), t.tgqual IS NOT NULL,
                   coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                              WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])), '{}')::text
              FROM pg_trigger t
              JOIN pg_class c ON c.oid = t.tgrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_proc p ON p.oid = t.tgfoid
              JOIN pg_namespace pn ON pn.oid = p.pronamespace
             WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             ORDER BY 1, 2, 3
            """)
        return try rows.map { row in
            let type = try row.decode(Int.self, at: 4)
            var operations = Set<TableOperation>()
            if type & 4 != 0 { operations.insert(.insert) }
            if type & 8 != 0 { operations.insert(.delete) }
            if type & 16 != 0 { operations.insert(.update) }
            let timing: TriggerInfo.Timing = type & 64 != 0 ? .insteadOf : (type & 2 != 0 ? .before : .after)
            let arguments = splitArguments(hex: try row.decode(String.self, at: 6), count: try row.decode(Int.self, at: 7))
            return TriggerInfo(
                table: QualifiedName(schema: try row.decode(String.self, at: 0), name: try row.decode(String.self, at: 1)),
                name: try row.decode(String.self, at: 2),
                function: try row.decode(String.self, at: 3),
                timing: timing, operations: operations, firesOnTruncate: type & 32 != 0, forEachRow: type & 1 != 0,
                enabled: try row.decode(String.self, at: 5).first ?? "O",
                arguments: arguments,
                channelSources: functions[try row.decode(Int64.self, at: 8)] ?? [],
                condition: try row.decode(Bool.self, at: 10) ? TriggerCoverage.condition(inDefinition: try row.decode(String.self, at: 9)) : nil,
                updateColumns: parseTextArray(try row.decode(String.self, at: 11)))
        }
    }

    /// The user functions (by oid) whose source calls `pg_notify` or runs `NOTIFY` — directly, or by calling
    /// such a function (one level: a trigger function that calls `emit(TG_ARGV[0], …)`, whose `pg_notify` takes
    /// that parameter) — with where they send.
    static func notifyingFunctions(on connection: PostgresConnection) async throws -> [Int64: [ChannelSource]] {
        let rows = try await connection.query("""
            SELECT p.oid::int8, pn.nspname, p.proname, p.prosrc, coalesce(p.proargnames, '{}')::text[]
              FROM pg_proc p
              JOIN pg_namespace pn ON pn.oid = p.pronamespace
              JOIN pg_language l ON l.oid = p.prolang
             WHERE pn.nspname NOT IN ('pg_catalog', 'information_schema') AND l.lanname IN ('plpgsql', 'sql')
            """)
        struct Function { var oid: Int64; var schema: String; var name: String; var source: String; var parameters: [String] }
        let all = try rows.map { row in
            Function(oid: try row.decode(Int64.self, at: 0), schema: try row.decode(String.self, at: 1), name: try row.decode(String.self, at: 2),
                     source: NotifySourceScanner.stripComments(try row.decode(String.self, at: 3)),
                     parameters: parseTextArray(try row.decode(String.self, at: 4)))
        }
        var direct: [Int64: [ChannelSource]] = [:]
        for function in all {
            let sources = NotifySourceScanner.channels(in: function.source)
            if !sources.isEmpty { direct[function.oid] = sources }
        }
        // Helpers that notify on one of their parameters: map a call's argument to the trigger's context.
        var result = direct
        for function in all {
            for helper in all where helper.oid != function.oid {
                guard let helperSources = direct[helper.oid] else { continue }
                for call in NotifySourceScanner.calls(to: helper.name, schema: helper.schema, in: function.source) {
                    for source in helperSources {
                        var mapped = source
                        if case .dynamic(let expression) = source,
                           let index = helper.parameters.firstIndex(where: { $0.lowercased() == expression.lowercased() }) ?? NotifySourceScanner.positionalParameter(expression) {
                            mapped = call.indices.contains(index) ? NotifySourceScanner.classify(call[index]) : .dynamic(expression)
                        }
                        if !(result[function.oid] ?? []).contains(mapped) { result[function.oid, default: []].append(mapped) }
                    }
                }
            }
        }
        return result
    }

    /// `tgargs` is the arguments, each followed by a NUL byte; read as hex to keep every byte.
    static func splitArguments(hex: String, count: Int) -> [String] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for character in hex.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            default: continue
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        let arguments = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        return Array(arguments.prefix(count))
    }

    /// A one-dimensional text array literal (`{a,"b c"}`) as strings.
    static func parseTextArray(_ literal: String) -> [String] {
        var items: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        var inQuotes = false
        for character in literal.dropFirst().dropLast() {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                inQuotes.toggle()
                quoted = true
            } else if character == "," && !inQuotes {
                items.append(current)
                current = ""
                quoted = false
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty || quoted { items.append(current) }
        return items
    }
}

/// Reads function source text for `pg_notify(…)` calls and `NOTIFY` statements.
enum NotifySourceScanner {
    /// The source without `--` and `/* */` comments (string literals are kept whole).
    static func stripComments(_ source: String) -> String {
        var result = ""
        var characters = Array(source)
        var index = 0
        var inString = false
        while index < characters.count {
            let character = characters[index]
            let next = index + 1 < characters.count ? characters[index + 1] : nil
            if inString {
                result.append(character)
                if character == "'" {
                    if next == "'" { result.append("'"); index += 1 } else { inString = false }
                }
            } else if character == "'" {
                inString = true
                result.append(character)
            } else if character == "-" && next == "-" {
                while index < characters.count && characters[index] != "\n" { index += 1 }
                continue
            } else if character == "/" && next == "*" {
                index += 2
                while index + 1 < characters.count && !(characters[index] == "*" && characters[index + 1] == "/") { index += 1 }
                index += 2
                result.append(" ")
                continue
            } else {
                result.append(character)
            }
            index += 1
        }
        characters = []
        return result
    }

    /// Every channel a source sends on.
    static func channels(in source: String) -> [ChannelSource] {
        var found: [ChannelSource] = []
        for call in calls(to: "pg_notify", schema: "pg_catalog", in: source) where !call.isEmpty {
            let channel = classify(call[0])
            if !found.contains(channel) { found.append(channel) }
        }
        // NOTIFY channel [, 'payload'] as a statement.
        let lowered = Array(source.lowercased())
        let original = Array(source)
        var index = 0
        while let range = find("notify", in: lowered, from: index) {
            index = range.upperBound
            let before = range.lowerBound > 0 ? lowered[range.lowerBound - 1] : " "
            guard !isIdentifierCharacter(before), range.upperBound < lowered.count, lowered[range.upperBound].isWhitespace else { continue }
            var cursor = range.upperBound
            while cursor < original.count && original[cursor].isWhitespace { cursor += 1 }
            var name = ""
            if cursor < original.count && original[cursor] == "\"" {
                cursor += 1
                while cursor < original.count {
                    if original[cursor] == "\"" {
                        if cursor + 1 < original.count && original[cursor + 1] == "\"" { name.append("\""); cursor += 2; continue }
                        break
                    }
                    name.append(original[cursor])
                    cursor += 1
                }
            } else {
                while cursor < original.count && isIdentifierCharacter(original[cursor]) { name.append(original[cursor]); cursor += 1 }
                name = name.lowercased()
            }
            if !name.isEmpty {
                let channel = ChannelSource.literal(name)
                if !found.contains(channel) { found.append(channel) }
            }
        }
        return found
    }

    /// The argument lists (as source text) of every call to `name` (optionally schema-qualified) in `source`.
    static func calls(to name: String, schema: String, in source: String) -> [[String]] {
        let lowered = Array(source.lowercased())
        let original = Array(source)
        let target = name.lowercased()
        var result: [[String]] = []
        var index = 0
        while let range = find(target, in: lowered, from: index) {
            index = range.upperBound
            // A whole identifier: not part of a longer name; `schema.name` is fine.
            if range.lowerBound > 0 {
                let before = lowered[range.lowerBound - 1]
                if isIdentifierCharacter(before) { continue }
                if before == "." {
                    let qualifier = String(lowered[..<(range.lowerBound - 1)].reversed().prefix { isIdentifierCharacter($0) || $0 == "\"" }.reversed())
                        .replacingOccurrences(of: "\"", with: "")
                    if qualifier != schema.lowercased() { continue }
                }
            }
            var cursor = range.upperBound
            while cursor < lowered.count && lowered[cursor].isWhitespace { cursor += 1 }
            guard cursor < lowered.count, lowered[cursor] == "(" else { continue }
            if let arguments = splitArguments(original, openParenthesis: cursor) { result.append(arguments) }
        }
        return result
    }

    /// The comma-separated arguments after the parenthesis at `start`, respecting nesting and string literals.
    private static func splitArguments(_ characters: [Character], openParenthesis start: Int) -> [String]? {
        var depth = 0
        var current = ""
        var arguments: [String] = []
        var inString = false
        var index = start
        while index < characters.count {
            let character = characters[index]
            if inString {
                current.append(character)
                if character == "'" {
                    if index + 1 < characters.count && characters[index + 1] == "'" { current.append("'"); index += 1 } else { inString = false }
                }
            } else {
                switch character {
                case "'":
                    inString = true
                    current.append(character)
                case "(":
                    depth += 1
                    if depth > 1 { current.append(character) }
                case ")":
                    depth -= 1
                    if depth == 0 {
                        arguments.append(current.trimmed())
                        return arguments
                    }
                    current.append(character)
                case "," where depth == 1:
                    arguments.append(current.trimmed())
                    current = ""
                default:
                    current.append(character)
                }
            }
            index += 1
        }
        return nil
    }

    /// What an argument expression says about the channel.
    static func classify(_ expression: String) -> ChannelSource {
        let text = expression.trimmed()
        let parts = splitConcatenation(text)
        if parts.count > 1 {
            let classified = parts.map { classifyTerm($0) }
            if classified.contains(where: { if case .dynamic = $0 { true } else { false } }) { return .dynamic(text) }
            return .concatenation(classified)
        }
        return classifyTerm(text)
    }

    private static func classifyTerm(_ term: String) -> ChannelSource {
        var text = term.trimmed()
        // Casts that do not change the value: 'x'::text, TG_ARGV[0]::text, TG_TABLE_NAME::varchar.
        while let range = text.range(of: "::", options: .backwards), !text[range.upperBound...].contains("'") {
            text = String(text[..<range.lowerBound]).trimmed()
        }
        if text.hasPrefix("'") && text.hasSuffix("'") && text.count >= 2 {
            return .literal(String(text.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'"))
        }
        let upper = text.uppercased().replacingOccurrences(of: " ", with: "")
        if upper == "TG_TABLE_NAME" || upper == "TG_RELNAME" { return .tableName }
        if upper == "TG_TABLE_SCHEMA" { return .tableSchema }
        if upper == "TG_OP" { return .operation }
        if upper.hasPrefix("TG_ARGV[") && upper.hasSuffix("]"), let index = Int(upper.dropFirst("TG_ARGV[".count).dropLast()) {
            return .argument(index)
        }
        return .dynamic(text)
    }

    /// `a || b || c` at the top level (not inside parentheses or strings).
    private static func splitConcatenation(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        var inString = false
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if inString {
                current.append(character)
                if character == "'" {
                    if index + 1 < characters.count && characters[index + 1] == "'" { current.append("'"); index += 1 } else { inString = false }
                }
            } else if character == "'" {
                inString = true
                current.append(character)
            } else if character == "(" {
                depth += 1
                current.append(character)
            } else if character == ")" {
                depth -= 1
                current.append(character)
            } else if character == "|" && depth == 0 && index + 1 < characters.count && characters[index + 1] == "|" {
                parts.append(current.trimmed())
                current = ""
                index += 1
            } else {
                current.append(character)
            }
            index += 1
        }
        parts.append(current.trimmed())
        return parts
    }

    /// `$2` → 1.
    static func positionalParameter(_ expression: String) -> Int? {
        guard expression.hasPrefix("$"), let number = Int(expression.dropFirst()), number >= 1 else { return nil }
        return number - 1
    }

    private static func isIdentifierCharacter(_ character: Character) -> Bool {
        character.isLetter || character.isNumber || character == "_" || character == "$"
    }

    private static func find(_ needle: String, in haystack: [Character], from start: Int) -> Range<Int>? {
        let pattern = Array(needle)
        guard !pattern.isEmpty, haystack.count >= pattern.count, start <= haystack.count - pattern.count else { return nil }
        var index = start
        while index <= haystack.count - pattern.count {
            if haystack[index] == pattern[0] && Array(haystack[index..<(index + pattern.count)]) == pattern {
                return index..<(index + pattern.count)
            }
            index += 1
        }
        return nil
    }
}
