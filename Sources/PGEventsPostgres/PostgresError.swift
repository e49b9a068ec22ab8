import PGEventsSystem

/// An error from PostgreSQL or from libpq, with everything the server said about it.
///
/// `description` is safe to log: it never contains a password. Query text is shown as an excerpt.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidConfiguration, connectionFailed, connectionLost, connectionClosed
            case server, invalidArgument, decoding, protocolViolation
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL or conninfo string could not be parsed.
        public static let invalidConfiguration = Self(.invalidConfiguration)
        /// The connection could not be established.
        public static let connectionFailed = Self(.connectionFailed)
        /// An established connection broke (server stopped, backend terminated, network failure).
        public static let connectionLost = Self(.connectionLost)
        /// The connection was closed by this process and cannot be used any more.
        public static let connectionClosed = Self(.connectionClosed)
        /// The server rejected a statement; `sqlState` says why.
        public static let server = Self(.server)
        /// An argument cannot be sent (e.g. a NUL byte in text, an invalid channel name).
        public static let invalidArgument = Self(.invalidArgument)
        /// A value in a result could not be decoded to the requested Swift type.
        public static let decoding = Self(.decoding)
        /// libpq reported a state this wrapper does not expect.
        public static let protocolViolation = Self(.protocolViolation)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// Human-readable primary message.
    public var message: String
    /// The five-character SQLSTATE, for server errors (e.g. `22023`).
    public var sqlState: String?
    /// `ERROR`, `FATAL`, `PANIC` (not localised).
    public var severity: String?
    /// The server's DETAIL line.
    public var detail: String?
    /// The server's HINT line.
    public var hint: String?
    /// 1-based character position in the statement where the error was found.
    public var position: Int?
    /// The server's CONTEXT (the call stack of PL/pgSQL functions and triggers).
    public var context: String?
    /// The statement that failed, if any.
    public var statement: String?
    /// The libpq function that reported the failure.
    public var function: String?

    public init(
        code: Code, message: String, sqlState: String? = nil, severity: String? = nil, detail: String? = nil,
        hint: String? = nil, position: Int? = nil, context: String? = nil, statement: String? = nil,
        function: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.severity = severity
        self.detail = detail
        self.hint = hint
        self.position = position
        self.context = context
        self.statement = statement
        self.function = function
    }

    /// Whether the connection is unusable after this error.
    public var isConnectionError: Bool {
        code == .connectionFailed || code == .connectionLost || code == .connectionClosed
    }

    public var description: String {
        var text = ""
        if let severity { text += severity + " " }
        if let sqlState { text += "\(sqlState) " }
        if text.isEmpty { text = "\(code): " } else { text = text.dropLast() + ": " }
        text += message
        if let detail { text += "\nDETAIL: \(detail)" }
        if let hint { text += "\nHINT: \(hint)" }
        if let context { text += "\nCONTEXT: \(context)" }
        if let statement {
            text += "\nSTATEMENT: \(TextExcerpt.window(of: statement, aroundCharacter: position))"
        }
        return text
    }
}
