/// A failure of the processor that is not simply a PostgreSQL or Redis error: bad configuration, a
/// missing journal, a lost leadership.
public struct ProcessorError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The configuration file or a value in it is wrong.
        public static let invalidConfiguration = Self("invalidConfiguration")
        /// `pgevents.journal` is not installed in the database.
        public static let journalMissing = Self("journalMissing")
        /// The sink refused an event for good (not a connection problem).
        public static let sinkRejected = Self("sinkRejected")
        /// `source: wal` cannot stream: a setting, a privilege, the slot or the publication is missing, or the slot was
        /// invalidated. The message names the fix.
        public static let walNotReady = Self("walNotReady")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
