/// Quoting of SQL identifiers and literals, for the few statements that cannot take parameters
/// (`LISTEN`, `CREATE DATABASE`, …).
public enum PostgresIdentifier {
    /// The longest identifier PostgreSQL keeps (NAMEDATALEN − 1 bytes); longer ones are truncated by the server.
    public static let maximumLength = 63

    /// `name` as a quoted identifier: wrapped in double quotes, inner double quotes doubled.
    ///
    /// Any name is safe, including mixed case, spaces, quotes and multi-byte characters.
    public static func quote(_ name: String) -> String {
        "\"" + doubling("\"", in: name) + "\""
    }

    /// A schema-qualified name, each part quoted: `"schema"."table"`.
    public static func quote(schema: String, name: String) -> String {
        quote(schema) + "." + quote(name)
    }

    /// `value` as a standard-conforming string literal (`'…'`, inner quotes doubled). Prefer parameters.
    public static func literal(_ value: String) -> String {
        "'" + doubling("'", in: value) + "'"
    }

    /// `text` with every `quote` doubled, scalar by scalar. Not `replacing(_:with:)`, which compares whole
    /// Characters: a quote followed by a combining mark (`'\u{301}`) is one Character that is not a quote, so it
    /// stayed single and ended the literal early — SQL injection through a name in a configuration file
    /// (found while fuzzing the parsers that read those names).
    static func doubling(_ quote: Unicode.Scalar, in text: String) -> String {
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            result.append(scalar)
            if scalar == quote { result.append(scalar) }
        }
        return String(result)
    }

    /// Checks that `channel` can be used with `LISTEN` and `pg_notify` without being changed by the server.
    public static func validateChannel(_ channel: String) throws(PostgresError) {
        if channel.isEmpty {
            throw PostgresError(code: .invalidArgument, message: "channel name is empty")
        }
        if channel.utf8.contains(0) {
            throw PostgresError(code: .invalidArgument, message: "channel name contains a NUL byte")
        }
        if channel.utf8.count > maximumLength {
            throw PostgresError(
                code: .invalidArgument,
                message: "channel name '\(channel.prefix(20))…' is \(channel.utf8.count) bytes; PostgreSQL allows at most \(maximumLength)")
        }
    }
}
