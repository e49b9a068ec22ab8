public import PGEventsPostgres

/// A durable source of events with a cursor in PostgreSQL: the journal (`JournalSource`) or a user table
/// (`TableSource`). `EventDelivery` drives one: `prepare`, then `next` → pipeline → writer → `ack`, over and over.
///
/// A source hands out events in an order that a replay repeats — `(batch, seq)` ascending — which is what lets the
/// writer keep one delivered position per destination instead of a key per event.
public protocol EventSource: Sendable {
    /// The consumer's name: its cursor row, its leader lock, the first part of its Redis key space.
    var name: String { get }

    /// Checks that the source is installed and usable, registers the consumer if it is new, and returns its
    /// instance id (random per registration; part of the consumer's Redis key space).
    func prepare(on connection: PostgresConnection, fromStart: Bool) async throws -> String

    /// The next undelivered events, at most about `limit` events and `maxBytes` payload bytes (at least one
    /// event); with `after`, the ones that follow that chunk (read while it is still being delivered, before its `ack`).
    func next(on connection: PostgresConnection, limit: Int, maxBytes: Int, after: EventChunk?) async throws -> EventChunk

    /// Records that `chunk` was delivered: the cursor moves past it.
    func ack(_ chunk: EventChunk, on connection: PostgresConnection) async throws

    /// `ack(acknowledging)` (when given), then `next(on:limit:maxBytes:after:)`, in one round trip where the source
    /// can (the journal): the delivery acknowledges one chunk and reads the next while Redis takes the current one.
    func next(on connection: PostgresConnection, limit: Int, maxBytes: Int, after: EventChunk?, acknowledging: EventChunk?)
        async throws -> EventChunk

    /// A read sees everything ready at that moment (a query: the journal, a table), so the delivery reads the next
    /// chunk while Redis takes the current one. The WAL stream's read takes only what has arrived on its socket, so
    /// it reads after the delivery instead, taking everything that arrived meanwhile.
    var readsAhead: Bool { get }
}

/// What `EventSource.next` returned.
public struct EventChunk: Sendable {
    public var events: [SourceEvent]
    /// Nothing more is ready after these: acknowledging them finishes the current catch-up.
    public var completesBatch: Bool
    /// Where the cursor moves on `ack` (the source decides what it means; the table's last key).
    public var position: Int64

    public init(events: [SourceEvent], completesBatch: Bool, position: Int64) {
        self.events = events
        self.completesBatch = completesBatch
        self.position = position
    }
}

extension EventSource {
    public var readsAhead: Bool { true }

    public func next(on connection: PostgresConnection, limit: Int, maxBytes: Int, after: EventChunk?, acknowledging: EventChunk?)
        async throws -> EventChunk
    {
        if let acknowledging { try await ack(acknowledging, on: connection) }
        return try await next(on: connection, limit: limit, maxBytes: maxBytes, after: after)
    }

    /// The next undelivered events after the cursor, at most `limit` of them (16 MB of payloads at most).
    public func next(on connection: PostgresConnection, limit: Int) async throws -> EventChunk {
        try await next(on: connection, limit: limit, maxBytes: 16 << 20, after: nil)
    }
}
