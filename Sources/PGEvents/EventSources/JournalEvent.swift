public import struct Foundation.Date

/// One event read from a durable source (the journal, or a user table), ready to be delivered.
public struct JournalEvent: Sendable, Hashable {
    /// Its position in the source: the journal's `seq` (or the table's key). Unique and stable, so it is
    /// also the event's idempotency key.
    public var seq: Int64
    /// The channel it was emitted on.
    public var channel: String
    /// The payload, as emitted.
    public var payload: String
    /// When it was appended (the writing transaction's clock).
    public var createdAt: Date

    public init(seq: Int64, channel: String, payload: String, createdAt: Date) {
        self.seq = seq
        self.channel = channel
        self.payload = payload
        self.createdAt = createdAt
    }
}
