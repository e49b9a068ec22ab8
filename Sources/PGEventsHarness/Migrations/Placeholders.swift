import Foundation

/// Values for the placeholders migration files leave to their tool (`--define NAME=VALUE`):
///
/// - Flyway's `${name}`, replaced wherever it appears (Flyway replaces inside string literals and function bodies
///   too); `${flyway:defaultSchema}` is `public`, `${flyway:filename}` the script's name,
///   `${flyway:table}` `flyway_schema_history`, unless defined.
/// - psql's `:name` (the value as written), `:'name'` (as a string literal) and `:"name"` (as a quoted
///   identifier), in plain and sqitch layouts — only where psql substitutes them: not inside string literals,
///   quoted identifiers, dollar-quoted bodies or comments, and not in `::type` casts, PL/pgSQL's `:=`, or an
///   array slice such as `a[lo:hi]` (a `:` right after a name, a digit, `]` or `)` is not a placeholder).
///
/// A placeholder that is not defined is an error naming it, with its line and column.
public struct Placeholders: Sendable, Hashable {
    /// Each placeholder's value, by name (without `${}` or `:`).
    public var values: [String: String]
    /// False when the project turns substitution off (Flyway's `placeholderReplacement=false`): files run as written.
    public var replaces = true

    /// Placeholders with these values; none by default (then any placeholder in a file is an error).
    public init(_ values: [String: String] = [:]) {
        self.values = values
    }

    /// A placeholder without a value, or a definition that is not `NAME=VALUE`.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// What is wrong, naming the placeholder and how to define it.
        public var message: String
        /// 1-based line and column in the file (0 for a bad `--define`).
        public var line: Int
        public var column: Int
        /// `LINE:COLUMN: message`.
        public var description: String { "\(line):\(column): \(message)" }
    }

    /// Parses `--define` arguments: `NAME=VALUE` (the value may be empty, and may hold `=`).
    public init(definitions: [String]) throws(Problem) {
        var values: [String: String] = [:]
        for definition in definitions {
            guard let equals = definition.firstIndex(of: "="), equals != definition.startIndex else {
                throw Problem(message: "--define \(definition): expected NAME=VALUE", line: 0, column: 0)
            }
            values[String(definition[..<equals])] = String(definition[definition.index(after: equals)...])
        }
        self.init(values)
    }

    /// `sections` with the placeholders of `layout` replaced (goose, dbmate and golang-migrate have none).
    func substitute(in sections: MigrationSections, layout: MigrationLayout, fileName: String = "") throws(Problem) -> MigrationSections {
        var result = sections
        guard replaces else { return result }
        switch layout {
        case .flyway:
            result.text = try flyway(sections.text, fileName: fileName)
        case .plain, .sqitch:
            result.text = try psql(sections.text)
        case .goose, .dbmate, .golangMigrate:
            break
        }
        return result
    }

    // MARK: Flyway

    /// `${name}` replaced everywhere, as Flyway does.
    public func flyway(_ text: String, fileName: String = "") throws(Problem) -> String {
        guard text.contains("${") else { return text }
        var builtIn = ["flyway:defaultSchema": "public", "flyway:table": "flyway_schema_history"]
        if !fileName.isEmpty { builtIn["flyway:filename"] = fileName }
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var index = 0
        var line = 1
        var column = 1
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "$", index + 1 < scalars.count, scalars[index + 1] == "{",
                let close = scalars[(index + 2)...].firstIndex(where: { $0 == "}" || $0 == "\n" }), scalars[close] == "}"
            {
                let name = String(String.UnicodeScalarView(scalars[(index + 2)..<close]))
                guard let value = values[name] ?? builtIn[name] else {
                    throw Problem(message: "placeholder ${\(name)} is not defined: pass --define \(name)=VALUE", line: line, column: column)
                }
                out.append(contentsOf: value.unicodeScalars)
                column += close + 1 - index
                index = close + 1
                continue
            }
            out.append(scalar)
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            index += 1
        }
        return String(out)
    }

    // MARK: psql

    /// `:name`, `:'name'` and `:"name"` replaced where psql replaces them.
    public func psql(_ text: String) throws(Problem) -> String {
        guard text.contains(":") else { return text }
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var index = 0
        var line = 1
        var column = 1
        func copy(_ count: Int) {
            for _ in 0..<count where index < scalars.count {
                let scalar = scalars[index]
                out.append(scalar)
                if scalar == "\n" {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
                index += 1
            }
        }
        func copy(until end: Int) { copy(max(0, end - index)) }
        func peek(_ offset: Int) -> Unicode.Scalar? { index + offset < scalars.count ? scalars[index + offset] : nil }
        func identifierEnd(from start: Int) -> Int {
            var end = start
            while end < scalars.count, Self.isIdentifier(scalars[end]) { end += 1 }
            return end
        }

        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "-" where peek(1) == "-":
                copy(until: scalars[index...].firstIndex(of: "\n") ?? scalars.count)
            case "/" where peek(1) == "*":
                var depth = 0
                repeat {
                    if peek(0) == "/" && peek(1) == "*" {
                        depth += 1
                        copy(2)
                    } else if peek(0) == "*" && peek(1) == "/" {
                        depth -= 1
                        copy(2)
                    } else {
                        copy(1)
                    }
                } while depth > 0 && index < scalars.count
            case "'", "\"":
                // E'…' literals: a backslash hides the next character; in the others it is an ordinary character.
                let escapes =
                    scalar == "'" && index > 0 && (scalars[index - 1] == "E" || scalars[index - 1] == "e")
                    && (index < 2 || !Self.isIdentifier(scalars[index - 2]))
                copy(1)
                while index < scalars.count {
                    if escapes && scalars[index] == "\\" {
                        copy(2)
                        continue
                    }
                    if scalars[index] == scalar {
                        if peek(1) == scalar {
                            copy(2)
                            continue
                        }
                        copy(1)
                        break
                    }
                    copy(1)
                }
            case "$" where !(index > 0 && Self.isIdentifier(scalars[index - 1])):
                var tagEnd = index + 1
                while tagEnd < scalars.count, Self.isIdentifier(scalars[tagEnd]), !Self.isDigit(scalars[tagEnd]) || tagEnd > index + 1 {
                    tagEnd += 1
                }
                guard tagEnd < scalars.count, scalars[tagEnd] == "$" else {
                    copy(1)
                    continue
                }
                let tag = Array(scalars[index...tagEnd])
                copy(tag.count)
                while index < scalars.count {
                    if scalars[index] == "$", index + tag.count <= scalars.count, Array(scalars[index..<(index + tag.count)]) == tag {
                        copy(tag.count)
                        break
                    }
                    copy(1)
                }
            case ":":
                let previous = index > 0 ? scalars[index - 1] : " "
                let afterName = Self.isIdentifier(previous) || previous == "]" || previous == ")" || previous == ":"
                if afterName || peek(1) == ":" {
                    copy(peek(1) == ":" ? 2 : 1)
                    continue
                }
                if let quote = peek(1), quote == "'" || quote == "\"" {
                    let end = identifierEnd(from: index + 2)
                    if end > index + 2, end < scalars.count, scalars[end] == quote {
                        let name = String(String.UnicodeScalarView(scalars[(index + 2)..<end]))
                        guard let value = values[name] else {
                            throw Problem(
                                message: "psql variable :\(quote)\(name)\(quote) is not defined: pass --define \(name)=VALUE", line: line,
                                column: column)
                        }
                        out.append(contentsOf: (quote == "'" ? Self.literal(value) : Self.identifier(value)).unicodeScalars)
                        column += end + 1 - index
                        index = end + 1
                        continue
                    }
                    copy(1)
                    continue
                }
                let end = identifierEnd(from: index + 1)
                guard end > index + 1, !Self.isDigit(scalars[index + 1]) else {
                    copy(1)
                    continue
                }
                let name = String(String.UnicodeScalarView(scalars[(index + 1)..<end]))
                guard let value = values[name] else {
                    throw Problem(message: "psql variable :\(name) is not defined: pass --define \(name)=VALUE", line: line, column: column)
                }
                out.append(contentsOf: value.unicodeScalars)
                column += end - index
                index = end
            default:
                copy(1)
            }
        }
        return String(out)
    }

    /// `'it''s'`: a string literal holding `value`.
    static func literal(_ value: String) -> String {
        if value.contains("\\") {
            return "E'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''") + "'"
        }
        return "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// `"a ""b"""`: a quoted identifier naming `value`.
    static func identifier(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private static func isIdentifier(_ scalar: Unicode.Scalar) -> Bool {
        !scalar.isASCII || scalar == "_" || scalar.properties.isAlphabetic || isDigit(scalar)
    }

    private static func isDigit(_ scalar: Unicode.Scalar) -> Bool {
        ("0"..."9").contains(scalar)
    }
}
