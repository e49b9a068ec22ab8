public import PGEventsPostgres

import struct Foundation.Date

/// A named reader of the `pgevents.journal` (see `sql/pgevents/001_journal.sql`) with its cursor in
/// PostgreSQL: what it has delivered is recorded by `ack`, only after Redis has taken the events.
///
/// Reading is exact under concurrent, out-of-order commits: a batch is every event whose transaction
/// committed between two snapshots (PgQ's technique), never "seq greater than the last one seen".
public struct JournalSource: EventSource {
    /// The consumer's name (its row in `pgevents.consumers`).
    public let name: String

    public init(name: String) {
        self.name = name
    }

    /// Checks that the journal is installed; throws a message that says how to install it.
    public static func checkInstalled(on connection: PostgresConnection) async throws {
        let row = try await connection.query(
            "SELECT to_regproc('pgevents.next_events') IS NOT NULL, to_regproc('pgevents.ack_and_next') IS NOT NULL"
        ).first
        guard try row?.decode(Bool.self, at: 0) == true else {
            throw ProcessorError(
                code: .journalMissing,
                message: "the pgevents journal is not installed in this database: apply sql/pgevents/001_journal.sql (psql -f) first")
        }
        guard try row?.decode(Bool.self, at: 1) == true else {
            throw ProcessorError(
                code: .journalMissing,
                message:
                    "the pgevents journal in this database is older than this processor (no pgevents.ack_and_next): apply sql/pgevents/001_journal.sql again (psql -f; safe to apply more than once)"
            )
        }
    }

    /// Registers the consumer if it is new (from the start of the journal, or from now), and returns its
    /// instance id: random per registration, part of every idempotency key, so that two journals (two
    /// databases, a restored copy) feeding one Redis never share keys.
    @discardableResult
    public func register(on connection: PostgresConnection, fromStart: Bool = true) async throws -> String {
        try await connection.query("SELECT pgevents.register_consumer($1, $2)::text", [name, fromStart]).scalar(String.self)
    }

    /// Checks that the journal is installed and registers the consumer; returns its instance id.
    public func prepare(on connection: PostgresConnection, fromStart: Bool) async throws -> String {
        try await Self.checkInstalled(on: connection)
        return try await register(on: connection, fromStart: fromStart)
    }

    /// The next undelivered events of the current batch (opening a new batch if none is open), at most `limit`
    /// events and about `maxBytes` payload bytes.
    public func next(on connection: PostgresConnection, limit: Int, maxBytes: Int, after: EventChunk?) async throws -> EventChunk {
        let rows = try await connection.query(
            "SELECT seq, channel, payload, extract(epoch FROM created_at)::float8 AS created, batch_id FROM pgevents.next_events($1, $2, $3, $4)",
            [name, limit, after?.position, maxBytes])
        return try chunk(rows, limit: limit, maxBytes: maxBytes)
    }

    /// `acknowledging` recorded and the next events read in one statement, one round trip (`pgevents.ack_and_next`).
    public func next(on connection: PostgresConnection, limit: Int, maxBytes: Int, after: EventChunk?, acknowledging: EventChunk?)
        async throws -> EventChunk
    {
        guard let acknowledging else { return try await next(on: connection, limit: limit, maxBytes: maxBytes, after: after) }
        let rows = try await connection.query(
            "SELECT seq, channel, payload, extract(epoch FROM created_at)::float8 AS created, batch_id FROM pgevents.ack_and_next($1, $2, $3, $4, $5, $6)",
            [name, acknowledging.position, acknowledging.completesBatch, limit, after?.position, maxBytes])
        return try chunk(rows, limit: limit, maxBytes: maxBytes)
    }

    private func chunk(_ rows: PostgresResult, limit: Int, maxBytes: Int) throws -> EventChunk {
        var events: [SourceEvent] = []
        events.reserveCapacity(rows.count)
        var bytes = 0
        for row in rows {
            let payload = try row.decode(String.self, at: 2)
            bytes += payload.utf8.count
            events.append(
                SourceEvent(
                    seq: try row.decode(Int64.self, at: 0),
                    batch: try row.decode(Int64.self, at: 4),
                    channel: try row.decode(String.self, at: 1),
                    payload: payload,
                    createdAt: Date(timeIntervalSince1970: try row.decode(Double.self, at: 3))))
        }
        // Cut by bytes, the batch may go on: only a short chunk under both limits ends it.
        return EventChunk(events: events, completesBatch: events.count < limit && bytes < maxBytes, position: events.last?.seq ?? 0)
    }

    /// Records that `chunk` was delivered.
    public func ack(_ chunk: EventChunk, on connection: PostgresConnection) async throws {
        try await connection.query("SELECT pgevents.ack($1, $2, $3)", [name, chunk.position, chunk.completesBatch])
    }

    /// Deletes events every consumer has delivered, at most `limit`; returns how many.
    @discardableResult
    public static func prune(on connection: PostgresConnection, limit: Int = 10_000) async throws -> Int {
        try await connection.query("SELECT pgevents.prune($1)", [limit]).scalar(Int.self)
    }
}

/// The name of earlier versions.
@available(*, deprecated, renamed: "JournalSource")
public typealias JournalConsumer = JournalSource
