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
                    if next == "'" {
                        result.append("'")
                        index += 1
                    } else {
                        inString = false
                    }
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
                        if cursor + 1 < original.count && original[cursor + 1] == "\"" {
                            name.append("\"")
                            cursor += 2
                            continue
                        }
                        break
                    }
                    name.append(original[cursor])
                    cursor += 1
                }
            } else {
                while cursor < original.count && isIdentifierCharacter(original[cursor]) {
                    name.append(original[cursor])
                    cursor += 1
                }
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
                    let qualifier = String(
                        lowered[..<(range.lowerBound - 1)].reversed().prefix { isIdentifierCharacter($0) || $0 == "\"" }.reversed()
                    )
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
                    if index + 1 < characters.count && characters[index + 1] == "'" {
                        current.append("'")
                        index += 1
                    } else {
                        inString = false
                    }
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
                    if index + 1 < characters.count && characters[index + 1] == "'" {
                        current.append("'")
                        index += 1
                    } else {
                        inString = false
                    }
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
