import Foundation
public import PGEventsHarness
public import PGEventsPostgres

/// A value for one column of a generated row.
public enum GeneratedValue: Sendable, Hashable, CustomStringConvertible {
    /// Leave the column out: its default (or identity, or generated expression) applies.
    case `default`
    case null
    /// A value written as text and cast to the column's type by the server.
    case text(String)

    public var description: String {
        switch self {
        case .default: "DEFAULT"
        case .null: "NULL"
        case .text(let text): Self.describe(text)
        }
    }

    /// A readable form of a value: short ones quoted, long ones summarised (`'x' × 20,000 bytes`).
    static func describe(_ text: String) -> String {
        let bytes = text.utf8.count
        if bytes > 60 {
            let first = text.first.map(String.init) ?? ""
            if text.allSatisfy({ String($0) == first }) { return "'\(first)' × \(bytes.formatted()) bytes" }
            return "'\(String(text.prefix(40)).replacingOccurrences(of: "\n", with: "\\n"))…' (\(bytes.formatted()) bytes)"
        }
        return "'" + text.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// What the catalog says about a table: enough to generate rows the schema accepts.
public struct TableShape: Sendable {
    public struct Column: Sendable {
        public var name: String
        /// `format_type` output, e.g. `character varying(20)`: safe to use in a cast.
        public var type: String
        /// The base type's name after domains, e.g. `varchar`, `int4`, `timestamptz`.
        public var baseType: String
        /// `pg_type.typcategory` of the base type: `S` string, `N` numeric, `B` boolean, `D` date/time, `E` enum, `A` array, `U` user (uuid, json…).
        public var category: Character
        public var notNull: Bool
        public var hasDefault: Bool
        /// Identity (`a`/`d`) or generated (`s`): never written.
        public var isIdentity: Bool
        public var isGenerated: Bool
        /// `varchar(n)`/`char(n)`: n.
        public var maxLength: Int?
        /// `numeric(p, s)`.
        public var precision: Int?
        public var scale: Int?
        public var enumLabels: [String]
        /// Literals found in CHECK constraints on this column alone: values the schema is likely to accept.
        public var checkLiterals: [String]
        /// Patterns of CHECK constraints on this column alone (`code ~ '^[A-Z]{3}$'`, `code LIKE 'C%'`), which a
        /// generated value must match, with the constraint's name and definition (to say which one stopped a row).
        var checkPatterns: [CheckPattern] = []
    }

    /// A pattern a column's values must match.
    struct CheckPattern: Sendable, Equatable {
        enum Kind: Sendable, Equatable { case regex, like }
        var kind: Kind
        var pattern: String
        var constraint: String
        var definition: String
    }

    public struct ForeignKey: Sendable {
        public var columns: [String]
        public var parent: QualifiedName
        public var parentColumns: [String]
    }

    public var table: QualifiedName
    public var columns: [Column]
    public var foreignKeys: [ForeignKey]
    public var primaryKey: [String]

    public var quotedName: String { "\(PostgresIdentifier.quote(table.schema)).\(PostgresIdentifier.quote(table.name))" }

    /// Reads a table's shape; nil when it does not exist.
    public static func read(_ table: QualifiedName, on connection: PostgresConnection) async throws -> TableShape? {
        let quoted = "\(PostgresIdentifier.quote(table.schema)).\(PostgresIdentifier.quote(table.name))"
        guard let oid = try await connection.query("SELECT to_regclass($1)::oid::int8", [quoted]).scalar(Int64?.self) else { return nil }
        let columnRows = try await connection.query(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), bt.typname, bt.typcategory::text,
                   a.attnotnull OR coalesce(t.typnotnull, false), a.atthasdef OR t.typdefault IS NOT NULL,
                   a.attidentity <> '', a.attgenerated <> '',
                   CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
                   coalesce((SELECT array_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = bt.oid), '{}')::text[],
                   a.attnum::int, CASE WHEN t.typtype = 'd' THEN t.oid::int8 END
              FROM pg_attribute a
              JOIN pg_type t ON t.oid = a.atttypid
              JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
             WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum
            """, [oid])
        var columns: [Column] = []
        var names: [Int: String] = [:]
        var domains: [String: Int64] = [:]
        for row in columnRows {
            let name = try row.decode(String.self, at: 0)
            let baseType = try row.decode(String.self, at: 2)
            let modifier = try row.decode(Int.self, at: 8)
            var column = Column(
                name: name, type: try row.decode(String.self, at: 1), baseType: baseType,
                category: try row.decode(String.self, at: 3).first ?? "U",
                notNull: try row.decode(Bool.self, at: 4), hasDefault: try row.decode(Bool.self, at: 5),
                isIdentity: try row.decode(Bool.self, at: 6), isGenerated: try row.decode(Bool.self, at: 7),
                maxLength: nil, precision: nil, scale: nil,
                enumLabels: Catalog.parseTextArray(try row.decode(String.self, at: 9)), checkLiterals: [])
            if ["varchar", "bpchar"].contains(baseType), modifier > 4 { column.maxLength = modifier - 4 }
            if baseType == "numeric", modifier > 4 {
                column.precision = ((modifier - 4) >> 16) & 0xFFFF
                column.scale = (modifier - 4) & 0xFFFF
            }
            names[try row.decode(Int.self, at: 10)] = name
            if let domain = try row.decode(Int64?.self, at: 11) { domains[name] = domain }
            columns.append(column)
        }
        // CHECK constraints on one column (the table's, and its domain's): their literals are good candidates.
        let checks = try await connection.query(
            """
            SELECT conkey::int[]::text, pg_get_constraintdef(oid), conname::text FROM pg_constraint WHERE conrelid = $1::oid AND contype = 'c'
            """, [oid])
        for row in checks {
            let keys = Catalog.parseTextArray(try row.decode(String.self, at: 0)).compactMap(Int.init)
            guard keys.count == 1, let name = names[keys[0]], let index = columns.firstIndex(where: { $0.name == name }) else { continue }
            let definition = try row.decode(String.self, at: 1)
            columns[index].checkLiterals += literals(in: definition)
            columns[index].checkPatterns += patterns(in: definition, constraint: try row.decode(String.self, at: 2))
        }
        for (name, domain) in domains {
            let rows = try await connection.query(
                "SELECT pg_get_constraintdef(oid), conname::text FROM pg_constraint WHERE contypid = $1::oid AND contype = 'c'", [domain])
            guard let index = columns.firstIndex(where: { $0.name == name }) else { continue }
            for row in rows {
                let definition = try row.decode(String.self, at: 0)
                columns[index].checkLiterals += literals(in: definition)
                columns[index].checkPatterns += patterns(in: definition, constraint: try row.decode(String.self, at: 1))
            }
        }
        let keys = try await connection.query(
            """
            SELECT contype::text, conkey::int[]::text, confrelid::regclass::text, coalesce(confkey::int[]::text, '{}'),
                   (SELECT nspname FROM pg_namespace WHERE oid = (SELECT relnamespace FROM pg_class WHERE oid = confrelid)),
                   (SELECT relname FROM pg_class WHERE oid = confrelid), confrelid::int8
              FROM pg_constraint WHERE conrelid = $1::oid AND contype IN ('p', 'f')
            """, [oid])
        var primaryKey: [String] = []
        var foreignKeys: [ForeignKey] = []
        for row in keys {
            let kind = try row.decode(String.self, at: 0)
            let columnNames = Catalog.parseTextArray(try row.decode(String.self, at: 1)).compactMap(Int.init).compactMap { names[$0] }
            if kind == "p" {
                primaryKey = columnNames
            } else if let schema = try row.decode(String?.self, at: 4), let parentName = try row.decode(String?.self, at: 5) {
                let parentOID = try row.decode(Int64.self, at: 6)
                let parentNumbers = Catalog.parseTextArray(try row.decode(String.self, at: 3)).compactMap(Int.init)
                var parentColumns: [String] = []
                for number in parentNumbers {
                    let name = try await connection.query(
                        "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::oid AND attnum = $2", [parentOID, number]
                    ).scalar(String.self)
                    parentColumns.append(name)
                }
                foreignKeys.append(
                    ForeignKey(columns: columnNames, parent: QualifiedName(schema: schema, name: parentName), parentColumns: parentColumns))
            }
        }
        return TableShape(table: table, columns: columns, foreignKeys: foreignKeys, primaryKey: primaryKey)
    }

    /// String and number literals of a constraint definition: `CHECK (status = ANY (ARRAY['open'::text, 'done'::text]))`.
    static func literals(in definition: String) -> [String] {
        var found: [String] = []
        let characters = Array(definition)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "'" {
                // The pattern of `~`, `LIKE` or `SIMILAR TO` is not a value the column takes (`slug ~ '^[a-z]+$'`).
                let isPattern = isPatternOperand(characters, quoteAt: index)
                var value = ""
                index += 1
                while index < characters.count {
                    if characters[index] == "'" {
                        if index + 1 < characters.count && characters[index + 1] == "'" {
                            value.append("'")
                            index += 2
                            continue
                        }
                        break
                    }
                    value.append(characters[index])
                    index += 1
                }
                if !isPattern { found.append(value) }
            } else if character.isNumber, index == 0 || !(characters[index - 1].isLetter || characters[index - 1] == "_") {
                var value = ""
                while index < characters.count && (characters[index].isNumber || characters[index] == ".") {
                    value.append(characters[index])
                    index += 1
                }
                found.append(value)
                continue
            }
            index += 1
        }
        return found
    }

    /// The patterns a value must match in a constraint definition: `(code ~ '^[A-Z]+$'::text)`, `~*`, and LIKE/ILIKE
    /// as `pg_get_constraintdef` writes them (`~~`, `~~*`); negated ones (`!~`, `!~~`) are not patterns to match.
    static func patterns(in definition: String, constraint: String) -> [CheckPattern] {
        var found: [CheckPattern] = []
        let characters = Array(definition)
        var index = 0
        while index < characters.count {
            guard characters[index] == "'" else {
                index += 1
                continue
            }
            var end = index
            while end > 0, characters[end - 1].isWhitespace { end -= 1 }
            let before = String(characters[max(0, end - 4)..<end])
            var value = ""
            let quote = index
            index += 1
            while index < characters.count {
                if characters[index] == "'" {
                    if index + 1 < characters.count && characters[index + 1] == "'" {
                        value.append("'")
                        index += 2
                        continue
                    }
                    break
                }
                value.append(characters[index])
                index += 1
            }
            index += 1
            guard isPatternOperand(characters, quoteAt: quote), !before.hasSuffix("!~"), !before.hasSuffix("!~*"), !before.hasSuffix("!~~"),
                !before.hasSuffix("!~~*")
            else { continue }
            let kind: CheckPattern.Kind = before.hasSuffix("~~") || before.hasSuffix("~~*") ? .like : .regex
            found.append(CheckPattern(kind: kind, pattern: value, constraint: constraint, definition: definition))
        }
        return found
    }

    /// A value of a string column that matches its CHECK patterns (the first that can be generated and fits), for
    /// row `serial`; nil when there are none, or none can be generated.
    func patternValue(_ column: Column, serial: Int) -> String? {
        for check in column.checkPatterns {
            let value =
                check.kind == .like
                ? RegexSample.like(check.pattern, variant: serial) : RegexSample.generate(check.pattern, variant: serial)
            if let value, column.maxLength.map({ value.count <= $0 }) ?? true { return value }
        }
        return nil
    }

    /// Whether the string literal whose opening quote is at `quote` is the right-hand side of a pattern match:
    /// `~`, `~*`, `!~`, `!~*`, `LIKE`, `ILIKE`, `SIMILAR TO` (as `pg_get_constraintdef` writes them, `~~` for LIKE).
    static func isPatternOperand(_ characters: [Character], quoteAt quote: Int) -> Bool {
        var end = quote
        while end > 0, characters[end - 1].isWhitespace { end -= 1 }
        let before = String(characters[max(0, end - 12)..<end]).uppercased()
        if before.hasSuffix("~") || before.hasSuffix("~*") { return true }
        for word in ["LIKE", "ILIKE", "SIMILAR TO"] where before.hasSuffix(word) {
            let start = before.index(before.endIndex, offsetBy: -word.count)
            if start == before.startIndex || !(before[before.index(before: start)].isLetter || before[before.index(before: start)] == "_") {
                return true
            }
        }
        return false
    }

    // MARK: Values

    /// A value the schema accepts for `column`, different for each `serial` (so UNIQUE holds).
    func normalValue(_ column: Column, serial: Int) -> GeneratedValue? {
        if column.category == "S", let value = patternValue(column, serial: serial) { return .text(value) }
        if let literal = column.checkLiterals.first(where: { !$0.isEmpty }) {
            let strings = column.checkLiterals.filter { !$0.isEmpty }
            if column.category == "S" { return .text(strings[serial % strings.count]) }
            if column.category == "N", let number = Double(literal) {
                // `CHECK (amount > 0)`, `CHECK (x BETWEEN 1 AND 10)`: the literal itself, or just above it.
                return .text(String(Int(number) + 1 + serial % 5))
            }
        }
        if !column.enumLabels.isEmpty { return .text(column.enumLabels[serial % column.enumLabels.count]) }
        switch column.baseType {
        case "int2": return .text(String(serial % Int(Int16.max)))  // a smallint holds at most 32,767
        case "int4", "int8": return .text(String(serial))
        case "numeric":
            if let precision = column.precision, let scale = column.scale {
                let digits = precision - scale
                if digits <= 0 { return .text("0") }
                if digits < 18 { return .text(String(serial % Int(pow(10, Double(digits))))) }
            }
            return .text(String(serial))
        case "float4", "float8": return .text("\(serial).5")
        case "money": return .text("\(serial).25")
        case "bool": return .text("true")
        case "text", "varchar", "bpchar", "name", "citext":
            let value = "v\(serial)"
            if let limit = column.maxLength { return .text(String(value.suffix(limit))) }
            return .text(value)
        case "uuid": return .text(UUID().uuidString.lowercased())
        case "json", "jsonb": return .text("{\"n\": \(serial)}")
        // Different for each row, so that a UNIQUE column of these types takes two rows.
        case "timestamp", "timestamptz":
            return .text(String(format: "2024-01-15 %02d:%02d:%02d+00", serial / 3600 % 24, serial / 60 % 60, serial % 60))
        case "date": return .text(String(format: "%04d-01-15", 2000 + serial % 1000))
        case "time", "timetz": return .text(String(format: "%02d:%02d:%02d", serial / 3600 % 24, serial / 60 % 60, serial % 60))
        case "interval": return .text("\(serial % 100_000 + 1) minutes")
        case "bytea": return .text("\\x" + String(format: "%04x", serial % 65536))
        case "inet", "cidr": return .text("10.0.\(serial / 250 % 250).\(serial % 250 + 1)")
        case "macaddr": return .text(String(format: "08:00:2b:01:%02x:%02x", serial / 256 % 256, serial % 256))
        case "xid8", "xid": return .text(String(serial))
        case "geometry", "geography":
            // PostGIS: a point with the usual SRID, which a `geometry(Point, 4326)` column takes too.
            return .text("SRID=4326;POINT(\(serial % 360 - 180) \(serial % 180 - 90))")
        default:
            if column.category == "A" { return .text("{}") }
            if column.category == "S" { return .text("v\(serial)") }
            if column.category == "N" { return .text(String(serial)) }
            return nil
        }
    }

    /// Edge values for `column` that its type and bounds allow, each with a label.
    func edgeValues(_ column: Column) -> [(label: String, value: GeneratedValue)] {
        var edges: [(String, GeneratedValue)] = []
        if !column.notNull { edges.append(("NULL", .null)) }
        for label in column.enumLabels.dropFirst() { edges.append(("enum value '\(label)'", .text(label))) }
        for literal in column.checkLiterals.dropFirst() where column.category == "S" {
            edges.append(("allowed value '\(literal)'", .text(literal)))
        }
        if !column.enumLabels.isEmpty || (column.category == "S" && !column.checkLiterals.isEmpty) { return edges }
        switch column.baseType {
        case "text", "varchar", "bpchar", "citext":
            let limit = column.maxLength
            func fits(_ text: String) -> Bool { limit.map { text.count <= $0 } ?? true }
            let samples: [(String, String)] = [
                ("empty string", ""), ("quotes", "it's \"quoted\""), ("backslashes", #"C:\path\to\file \n not a newline"#),
                ("commas", "one, two,three"), ("newlines", "line one\nline two\r\nline three"),
                ("multi-byte UTF-8 and emoji", "héllo wörld — ✓ 日本語 🎉👩‍💻"), ("JSON-looking text", #"{"key": [1, "two"]}"#),
            ]
            for (label, text) in samples where fits(text) && !(column.baseType == "bpchar" && text.isEmpty) {
                edges.append((label, .text(text)))
            }
            let long = min(limit ?? 20_000, 20_000)
            if long > 8 { edges.append(("long text", .text(String(repeating: "x", count: long)))) }
        case "int2": edges += [("largest smallint", .text("32767")), ("smallest smallint", .text("-32768")), ("zero", .text("0"))]
        case "int4": edges += [("largest integer", .text("2147483647")), ("smallest integer", .text("-2147483648")), ("zero", .text("0"))]
        case "int8":
            edges += [
                ("largest bigint", .text("9223372036854775807")), ("smallest bigint", .text("-9223372036854775808")), ("zero", .text("0")),
            ]
        case "numeric":
            if let precision = column.precision, let scale = column.scale {
                let whole = String(repeating: "9", count: max(0, precision - scale))
                let fraction = String(repeating: "9", count: scale)
                let largest = (whole.isEmpty ? "0" : whole) + (fraction.isEmpty ? "" : "." + fraction)
                edges += [
                    ("largest numeric(\(precision),\(scale))", .text(largest)),
                    ("smallest numeric(\(precision),\(scale))", .text("-" + largest)),
                ]
            } else {
                edges += [
                    ("a 40-digit numeric", .text("1234567890123456789012345678901234567890.0123456789")),
                    ("negative numeric", .text("-0.000000001")),
                ]
            }
        case "float4", "float8":
            edges += [
                ("huge float", .text(column.baseType == "float4" ? "3.4e38" : "1.7e308")), ("NaN", .text("NaN")),
                ("Infinity", .text("Infinity")),
            ]
        case "timestamp", "timestamptz":
            edges += [
                ("far-future timestamp", .text("9999-12-31 23:59:59+00")), ("ancient timestamp", .text("0001-01-01 00:00:00+00")),
                ("infinity", .text("infinity")),
            ]
        case "date":
            edges += [("far-future date", .text("9999-12-31")), ("ancient date", .text("0001-01-01")), ("infinity", .text("infinity"))]
        case "bool": edges.append(("false", .text("false")))
        case "json", "jsonb":
            edges += [
                ("empty object", .text("{}")), ("array", .text("[1, \"two\", null]")),
                ("nested JSON with quotes", .text(#"{"a": {"b": ["it's", "\"q\"", "back\\slash"]}, "emoji": "🎉"}"#)),
                ("large JSON", .text("{\"blob\": \"" + String(repeating: "y", count: 20_000) + "\"}")),
            ]
        case "uuid": edges.append(("nil UUID", .text("00000000-0000-0000-0000-000000000000")))
        case "bytea": edges.append(("20,000 bytes", .text("\\x" + String(repeating: "ab", count: 20_000))))
        default: break
        }
        return edges
    }

    /// Inserts one row (`.default` columns left out, text cast to each column's type); returns its ctid.
    func insert(_ values: [String: GeneratedValue], on connection: PostgresConnection) async throws -> String {
        var names: [String] = []
        var placeholders: [String] = []
        var parameters: [(any PostgresEncodable)?] = []
        for column in columns {
            guard let value = values[column.name] else { continue }
            switch value {
            case .default: continue
            case .null:
                names.append(PostgresIdentifier.quote(column.name))
                placeholders.append("NULL")
            case .text(let text):
                names.append(PostgresIdentifier.quote(column.name))
                parameters.append(text)
                placeholders.append("$\(parameters.count)::\(column.type)")
            }
        }
        let sql =
            names.isEmpty
            ? "INSERT INTO \(quotedName) DEFAULT VALUES RETURNING ctid::text"
            : "INSERT INTO \(quotedName) (\(names.joined(separator: ", "))) VALUES (\(placeholders.joined(separator: ", "))) RETURNING ctid::text"
        return try await connection.query(sql, parameters).scalar(String.self)
    }

    /// A row of ordinary values (`serial` keeps UNIQUE columns apart); nil when a NOT NULL column has no default
    /// and no value can be generated for it. Columns with defaults are left to them; `fixed` values win.
    func ordinaryRow(serial: Int, fixed: [String: String] = [:]) -> [String: GeneratedValue]? {
        var values: [String: GeneratedValue] = [:]
        for column in columns {
            if let value = fixed[column.name] {
                values[column.name] = .text(value)
            } else if column.isIdentity || column.isGenerated || column.hasDefault {
                values[column.name] = .default
            } else if let value = normalValue(column, serial: serial) {
                values[column.name] = value
            } else if !column.notNull {
                values[column.name] = .null
            } else {
                return nil
            }
        }
        return values
    }
}
