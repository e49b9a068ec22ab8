/// A failure of the test harness: a missing binary, a server that would not start, a migration that failed.
///
/// Carries what a user needs to act on it: the message, the tail of the server log when a server was
/// involved, and a hint (usually which setup step to run).
public struct HarnessError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// A server binary (`initdb`, `postgres`, `redis-server`, …) was not found.
        public static let binaryNotFound = Self("binaryNotFound")
        /// A server did not start or did not become ready in time.
        public static let startupFailed = Self("startupFailed")
        /// A helper program (`initdb`, `cp`, …) failed.
        public static let commandFailed = Self("commandFailed")
        /// A server did not stop.
        public static let shutdownFailed = Self("shutdownFailed")
        /// An argument or file given to the harness is wrong.
        public static let invalidInput = Self("invalidInput")
        /// A migration file failed to apply.
        public static let migrationFailed = Self("migrationFailed")
        /// The server was already shut down.
        public static let alreadyShutDown = Self("alreadyShutDown")
        /// A directory the harness would keep servers in is not safe: another user owns it, or others can write to it.
        public static let unsafeDirectory = Self("unsafeDirectory")
        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The last lines of the server's log, when a server was involved.
    public var logTail: String?
    /// What to do about it.
    public var hint: String?
    /// The underlying error, if any.
    public var underlying: (any Error & Sendable)?

    public init(code: Code, message: String, logTail: String? = nil, hint: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.logTail = logTail
        self.hint = hint
        self.underlying = underlying
    }

    public var description: String {
        var text = message
        if let underlying { text += ": \(underlying)" }
        if let hint { text += "\nhint: \(hint)" }
        if let logTail, !logTail.isEmpty {
            text +=
                "\nserver log (last lines):\n"
                + logTail.split(separator: "\n", omittingEmptySubsequences: false).map { "  | " + $0 }.joined(separator: "\n")
        }
        return text
    }

    static let setupHint =
        "install the servers — on Debian/Ubuntu: apt-get install postgresql redis-server (building needs libpq-dev libhiredis-dev pkg-config); on macOS: brew install postgresql redis hiredis — or point PGEVENTS_POSTGRES_BIN / PGEVENTS_REDIS_SERVER at them (in pgevents' own checkout, ci/setup does it)"
}

/// An error known only by its text.
struct DescribedError: Error, Sendable, CustomStringConvertible {
    var description: String
}
