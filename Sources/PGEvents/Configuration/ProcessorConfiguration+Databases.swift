extension ProcessorConfiguration {
    /// The databases of `databases:`: one processor serves each, in one process, each with its own cursor (the
    /// consumer's row in that database's journal, and its own key space in Redis).
    ///
    /// ```yaml
    /// databases: [gis, shop]                                   # these databases of the server
    /// databases: {include: ["gc2_*"], exclude: ["*_test"], refresh: 60}   # every database the server has that
    ///                                                          # matches, looked up again every refresh seconds
    /// ```
    ///
    /// Patterns are whole names with `*` (any characters) and `?` (one); discovery skips templates and databases
    /// that do not allow connections. The URL's own database is where discovery asks; it is served only when a
    /// list names it or a pattern matches it.
    public enum Databases: Sendable, Equatable {
        /// These databases.
        case named([String])
        /// The server's databases whose names match one of `include` and none of `exclude`, looked up again every
        /// `refresh` seconds (databases created later are served, dropped ones stop).
        case discovered(include: [String], exclude: [String], refresh: Double)

        /// Whether `name` is one of these databases (for `.named`) or matches the patterns (for `.discovered`).
        public func selects(_ name: String) -> Bool {
            switch self {
            case .named(let names):
                names.contains(name)
            case .discovered(let include, let exclude, _):
                include.contains { Self.matches(name, pattern: $0) } && !exclude.contains { Self.matches(name, pattern: $0) }
            }
        }

        /// `*` is any run of characters (none included), `?` exactly one; every other character is itself.
        public static func matches(_ name: String, pattern: String) -> Bool {
            let text = Array(name.unicodeScalars)
            let pattern = Array(pattern.unicodeScalars)
            var (t, p) = (0, 0)
            var star: (pattern: Int, text: Int)?
            while t < text.count {
                if p < pattern.count, pattern[p] == "?" || pattern[p] == text[t] {
                    t += 1
                    p += 1
                } else if p < pattern.count, pattern[p] == "*" {
                    star = (p, t)
                    p += 1
                } else if let last = star {
                    // Let the last star take one more character.
                    p = last.pattern + 1
                    t = last.text + 1
                    star = (last.pattern, last.text + 1)
                } else {
                    return false
                }
            }
            while p < pattern.count, pattern[p] == "*" { p += 1 }
            return p == pattern.count
        }
    }

    mutating func parseDatabases(_ node: ConfigurationNode?) throws {
        guard let node else { return }
        if source == .wal || source == .notify {
            throw node.error(
                "'databases' is read with source: journal or table; for source: \(source.rawValue) run one processor per database (a replication slot belongs to one database, and notify keeps no cursor)"
            )
        }
        if node.isList {
            let names = try node.strings()
            if names.isEmpty { throw node.error("name at least one database") }
            for (index, name) in names.enumerated() {
                if name.isEmpty || name.utf8.count > 63 || name.utf8.contains(0) {
                    throw node.error("database \(index + 1): a database name has 1 to 63 bytes, none of them NUL")
                }
                if names[..<index].contains(name) { throw node.error("the database '\(name)' is named twice") }
            }
            databases = .named(names)
            return
        }
        let fields = try node.mapping(allowed: ["include", "exclude", "refresh"])
        let include = try fields["include"].map { try Self.patterns($0) } ?? ["*"]
        let exclude = try fields["exclude"].map { try Self.patterns($0) } ?? []
        if include.isEmpty { throw (fields["include"] ?? node).error("'include' is empty: give at least one pattern, e.g. \"*\"") }
        let refresh = try fields["refresh"]?.seconds(in: 1...86_400) ?? 60
        databases = .discovered(include: include, exclude: exclude, refresh: refresh)
    }

    /// A pattern or a list of them.
    private static func patterns(_ node: ConfigurationNode) throws -> [String] {
        node.isList ? try node.strings() : [try node.string()]
    }
}
