/// An error from Redis or from hiredis, with the name of the command that failed.
///
/// `description` is safe to log: it never contains a password, and `command` holds only a command's name,
/// never its arguments (they may hold job payloads or secrets).
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidConfiguration, connectionFailed, connectionLost, connectionClosed
            case server, timeout, protocolViolation, invalidArgument
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL or configuration could not be parsed or is out of range.
        public static let invalidConfiguration = Self(.invalidConfiguration)
        /// The connection could not be established (including a failed `AUTH` or `SELECT`).
        public static let connectionFailed = Self(.connectionFailed)
        /// An established connection broke (server closed it, connection reset, or an earlier failure left it unusable).
        public static let connectionLost = Self(.connectionLost)
        /// The connection was closed by this process and cannot be used any more.
        public static let connectionClosed = Self(.connectionClosed)
        /// The server answered with an error reply; `message` is the server's text verbatim (e.g. `WRONGTYPE …`).
        public static let server = Self(.server)
        /// No reply arrived within the configured command timeout; the connection is unusable afterwards.
        public static let timeout = Self(.timeout)
        /// hiredis could not parse what the server sent, or reported a state this wrapper does not expect.
        public static let protocolViolation = Self(.protocolViolation)
        /// A command cannot be sent (e.g. it has no name, or too many arguments).
        public static let invalidArgument = Self(.invalidArgument)

        /// The code's name, e.g. `connectionLost`.
        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// Human-readable message; for `.server` the server's error text verbatim.
    public var message: String
    /// The name of the command that failed (e.g. `LPUSH`), never its arguments.
    public var command: String?

    /// Creates an error; `command` must be a command name only.
    public init(code: Code, message: String, command: String? = nil) {
        self.code = code
        self.message = message
        self.command = command
    }

    /// Whether the connection is unusable after this error.
    public var isConnectionError: Bool {
        code == .connectionFailed || code == .connectionLost || code == .connectionClosed || code == .timeout
    }

    /// The first word of a server error (`WRONGTYPE`, `ERR`, `NOAUTH`, …), which Redis uses as its error kind.
    public var serverErrorPrefix: String? {
        guard code == .server else { return nil }
        let prefix = message.prefix { $0 != " " }
        return prefix.isEmpty ? nil : String(prefix)
    }

    /// `code (COMMAND): message`, safe to log.
    public var description: String {
        if let command { return "\(code) (\(command)): \(message)" }
        return "\(code): \(message)"
    }
}
