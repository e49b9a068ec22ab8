/// One argument of a Redis command: a binary-safe byte string.
///
/// Strings are sent as UTF-8, integers and doubles in the decimal form Redis parses, and byte arrays as they
/// are, so values may contain NUL and any other byte.
///
/// ```swift
/// try await connection.command("LPUSH", "jobs", RedisArgument(payloadBytes))
/// ```
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    /// The bytes sent to the server.
    public var bytes: [UInt8]

    /// Creates an argument from raw bytes.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Creates an argument from a string's UTF-8 bytes.
    public init(_ string: String) {
        self.bytes = Array(string.utf8)
    }

    /// Creates an argument from an integer in decimal (`-42`).
    public init(_ value: Int) {
        self.bytes = Array(String(value).utf8)
    }

    /// Creates an argument from a double in the shortest form that reads back exactly (`0.5`, `1e-05`, `inf`, `-inf`).
    public init(_ value: Double) {
        self.bytes = Array(value.description.utf8)
    }

    /// Creates an argument from a string literal.
    public init(stringLiteral value: String) {
        self.init(value)
    }

    /// Creates an argument from an integer literal.
    public init(integerLiteral value: Int) {
        self.init(value)
    }
}
