public import struct Foundation.Date

/// One event read from a durable source (the journal, a user table), ready for the pipeline.
public struct SourceEvent: Sendable, Hashable {
    /// Its position in the source: the journal's `seq`, or the table's key. Unique within its `batch`.
    public var seq: Int64
    /// The source's batch it was read in (the journal numbers its snapshot batches; a table has one, 0).
    /// Batches are delivered one after the other, so `(batch, seq)` orders every event a consumer delivers,
    /// and a replay reads the same events at the same positions.
    public var batch: Int64
    /// The channel it was emitted on.
    public var channel: String
    /// The payload, as emitted.
    public var payload: String
    /// When it was appended (the writing transaction's clock).
    public var createdAt: Date

    public init(seq: Int64, batch: Int64 = 0, channel: String, payload: String, createdAt: Date) {
        self.seq = seq
        self.batch = batch
        self.channel = channel
        self.payload = payload
        self.createdAt = createdAt
    }
}

/// The name of earlier versions.
@available(*, deprecated, renamed: "SourceEvent")
public typealias JournalEvent = SourceEvent
