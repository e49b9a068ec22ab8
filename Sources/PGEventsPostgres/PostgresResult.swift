import PGEventsSystem

/// The rows and status of one executed statement, copied out of libpq's `PGresult` (which is freed at once).
///
/// Values are kept in PostgreSQL's text format; `PostgresRow.decode` turns them into Swift types.
public struct PostgresResult: Sendable, RandomAccessCollection {
    /// Name and type of each column.
    public let columns: [PostgresColumn]
    /// The command tag, e.g. `INSERT 0 1`, `SELECT 3`, `LISTEN`.
    public let commandTag: String
    /// Rows affected by INSERT/UPDATE/DELETE/MERGE/SELECT/COPY, when the command reports it.
    public let affectedRows: Int?
    let values: [String?]

    init(columns: [PostgresColumn], values: [String?], commandTag: String, affectedRows: Int?) {
        self.columns = columns
        self.values = values
        self.commandTag = commandTag
        self.affectedRows = affectedRows
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { columns.isEmpty ? 0 : values.count / columns.count }

    public subscript(position: Int) -> PostgresRow {
        let width = columns.count
        return PostgresRow(index: position, columns: columns, values: values[(position * width)..<((position + 1) * width)])
    }

    /// The single value of a one-row, one-column result, decoded; throws if the shape differs.
    public func scalar<T: PostgresDecodable>(_ type: T.Type = T.self) throws(PostgresError) -> T {
        guard count == 1, columns.count == 1 else {
            throw PostgresError(
                code: .decoding,
                message: "expected one row with one column, got \(count) row(s) with \(columns.count) column(s) (\(commandTag))")
        }
        return try self[0].decode(T.self, at: 0)
    }
}

/// A result column: name and the type's OID.
public struct PostgresColumn: Sendable, Hashable {
    public var name: String
    public var typeOID: UInt32
}

/// One row of a `PostgresResult`.
public struct PostgresRow: Sendable {
    /// 0-based row number in its result.
    public let index: Int
    public let columns: [PostgresColumn]
    let values: ArraySlice<String?>

    /// The raw text value of a column by position (nil for SQL NULL).
    public subscript(position: Int) -> String? {
        values[values.startIndex + position]
    }

    /// The raw text value of a column by name (nil for SQL NULL or an unknown column).
    public subscript(name: String) -> String? {
        guard let position = columns.firstIndex(where: { $0.name == name }) else { return nil }
        return self[position]
    }

    /// Decodes the value at `position`; a NULL decodes only into an `Optional`.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at position: Int) throws(PostgresError) -> T {
        guard columns.indices.contains(position) else {
            throw PostgresError(code: .decoding, message: "row \(index) has no column \(position) (it has \(columns.count))")
        }
        let column = columns[position]
        guard let value = try T.decode(postgresText: self[position]) else {
            let shown = self[position].map { "'" + TextExcerpt.window(of: $0, aroundCharacter: nil, width: 40) + "'" } ?? "NULL"
            throw PostgresError(
                code: .decoding,
                message: "column '\(column.name)' (row \(index), type OID \(column.typeOID)): cannot decode \(shown) as \(T.self)")
        }
        return value
    }

    /// Decodes the value of the column called `name`.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, column name: String) throws(PostgresError) -> T {
        guard let position = columns.firstIndex(where: { $0.name == name }) else {
            throw PostgresError(
                code: .decoding,
                message: "no column '\(name)' in the result (columns: \(columns.map(\.name).joined(separator: ", ")))")
        }
        return try decode(T.self, at: position)
    }
}

/// A Swift type that can be read from PostgreSQL's text format.
public protocol PostgresDecodable {
    /// The value for `text` (nil for SQL NULL); nil when `text` is not a valid value of this type.
    static func decode(postgresText text: String?) throws(PostgresError) -> Self?
}

/// A non-optional type decoded from non-NULL text.
public protocol PostgresTextDecodable: PostgresDecodable {
    init?(postgresText: String)
}

extension PostgresTextDecodable {
    public static func decode(postgresText text: String?) throws(PostgresError) -> Self? {
        text.flatMap(Self.init(postgresText:))
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText text: String?) throws(PostgresError) -> Self? {
        guard let text else { return .some(nil) }
        guard let value = try Wrapped.decode(postgresText: text) else { return nil }
        return .some(value)
    }
}

extension String: PostgresTextDecodable {
    public init?(postgresText: String) { self = postgresText }
}

extension Int: PostgresTextDecodable {
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int64: PostgresTextDecodable {
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int32: PostgresTextDecodable {
    public init?(postgresText: String) { self.init(postgresText) }
}

extension UInt32: PostgresTextDecodable {
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Double: PostgresTextDecodable {
    public init?(postgresText: String) {
        switch postgresText {
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        case "NaN": self = .nan
        default: self.init(postgresText)
        }
    }
}

extension Bool: PostgresTextDecodable {
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

/// A Swift value that can be sent as a parameter in PostgreSQL's text format.
public protocol PostgresEncodable: Sendable {
    /// The value's text form, as PostgreSQL's input function expects it.
    var postgresText: String { get }
}

extension String: PostgresEncodable {
    public var postgresText: String { self }
}

extension Int: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension Int64: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension Int32: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension Double: PostgresEncodable {
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return "\(self)"
    }
}

extension Bool: PostgresEncodable {
    public var postgresText: String { self ? "true" : "false" }
}

extension Array: PostgresEncodable where Element == UInt8 {
    /// `bytea` in hex format.
    public var postgresText: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
