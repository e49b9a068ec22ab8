// What the spec says about a channel's payloads.

/// What the spec says about one channel's payloads.
public struct ChannelSpec: Sendable, Hashable {
    public var name: String
    public var format: PayloadFormat
    /// JSON: the fields every payload must have, in the order written in the spec.
    public var fields: [(name: String, type: JSONFieldType)]
    /// CSV: the column names (their count is what is checked).
    public var columns: [String]?
    /// No payload may be longer than this many bytes; nil: the server's limit (7,999 bytes).
    public var maxBytes: Int?
    /// Words that must never appear as a JSON key or in a value (case-insensitive).
    public var forbid: [String]

    public init(
        name: String, format: PayloadFormat, fields: [(name: String, type: JSONFieldType)] = [], columns: [String]? = nil,
        maxBytes: Int? = nil, forbid: [String] = []
    ) {
        self.name = name
        self.format = format
        self.fields = fields
        self.columns = columns
        self.maxBytes = maxBytes
        self.forbid = forbid
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.format == b.format && a.fields.map(\.name) == b.fields.map(\.name)
            && a.fields.map(\.type) == b.fields.map(\.type) && a.columns == b.columns && a.maxBytes == b.maxBytes && a.forbid == b.forbid
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(format)
    }
}

/// How a channel's payloads are written.
public enum PayloadFormat: String, Sendable, Hashable, Codable {
    case json, csv, text
}

/// The declared type of a JSON field: `string`, `integer`, `number`, `boolean`, `object`, `array`; a `?` suffix
/// allows null.
public struct JSONFieldType: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case string, integer, number, boolean, object, array
    }

    public var kind: Kind
    public var nullable: Bool

    public init(kind: Kind, nullable: Bool = false) {
        self.kind = kind
        self.nullable = nullable
    }

    /// Parses `integer`, `string?`, …; nil for anything else.
    public init?(parsing text: String) {
        let nullable = text.hasSuffix("?")
        guard let kind = Kind(rawValue: nullable ? String(text.dropLast()) : text) else { return nil }
        self.init(kind: kind, nullable: nullable)
    }

    public var description: String { kind.rawValue + (nullable ? "?" : "") }
}
