/// A table name with its schema, as the spec and the reports write it: `public.events`.
public struct QualifiedName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var schema: String
    public var name: String

    public init(schema: String, name: String) {
        self.schema = schema
        self.name = name
    }

    /// Parses `schema.name` or `name` (schema `public`). No quoting: names with dots are not supported.
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1 where !parts[0].isEmpty: self.init(schema: "public", name: parts[0])
        case 2 where !parts[0].isEmpty && !parts[1].isEmpty: self.init(schema: parts[0], name: parts[1])
        default: return nil
        }
    }

    public var description: String { "\(schema).\(name)" }

    public static func < (a: Self, b: Self) -> Bool { (a.schema, a.name) < (b.schema, b.name) }
}
