public import Logging
public import PGEventsPostgres

import struct Foundation.Date

/// A reader of the user's own table by a monotonic integer key, with its cursor in
/// `pgevents.table_consumers` (see `sql/pgevents/002_table_source.sql`). Each row becomes one event:
/// `{"op": "INSERT", "schema": …, "table": …, "row": {…}}`, its key the event's sequence number.
///
/// Out-of-order commits are handled with a fence, never with "key greater than the last one seen": `next`
/// notes the highest key of the page and the time, waits until every transaction that started before that
/// time has ended (those are the only ones that can still commit a smaller key), then reads every row up to
/// that key — including rows that committed late, below keys already seen. A rolled-back key leaves a gap
/// that the fence passes as soon as its transaction is over.
///
/// Only inserts are seen (an updated row keeps its key), and the key must come from a sequence used in key
/// order (a `bigserial` or identity column; not keys handed out in blocks by an application).
/// An open transaction that started before a fence delays delivery until it ends; the wait is logged, with
/// the blocking sessions, every `fenceWarningSeconds`.
public struct TableSource: EventSource {
    public let name: String
    /// The table's schema and name, unquoted.
    public let schema: String
    public let table: String
    /// The integer key column.
    public let keyColumn: String
    /// The channel the events are delivered as (it picks the queue).
    public let channel: String
    public var fenceWarningSeconds: Double = 5
    private let logger: Logger

    public init(
        name: String, schema: String = "public", table: String, keyColumn: String, channel: String,
        logger: Logger = EventListener.defaultLogger
    ) {
        self.name = name
        self.schema = schema
        self.table = table
        self.keyColumn = keyColumn
        self.channel = channel
        self.logger = logger
    }

    private var quotedTable: String { "\(PostgresIdentifier.quote(schema)).\(PostgresIdentifier.quote(table))" }
    private var quotedKey: String { PostgresIdentifier.quote(keyColumn) }

    public func prepare(on connection: PostgresConnection, fromStart: Bool) async throws -> String {
        let installed = try await connection.query("SELECT to_regproc('pgevents.register_table_consumer') IS NOT NULL").scalar(Bool.self)
        guard installed else {
            throw ProcessorError(
                code: .journalMissing,
                message:
                    "the pgevents table source is not installed in this database: apply sql/pgevents/ (001_journal.sql, 002_table_source.sql) first"
            )
        }
        return try await connection.query(
            "SELECT pgevents.register_table_consumer($1, $2::regclass, $3, $4)::text",
            [name, quotedTable, keyColumn, fromStart]
        ).scalar(String.self)
    }

    public func next(on connection: PostgresConnection, limit: Int, maxBytes: Int, after: EventChunk?) async throws -> EventChunk {
        // The page and the fence in one statement: clock_timestamp() runs after the statement's snapshot was
        // taken, so every transaction that could still commit a key below the page's last one started before it.
        let page = try await connection.query(
            """
            WITH cursor AS (SELECT coalesce($3, last_key) AS last_key FROM pgevents.table_consumers WHERE name = $1),
                 page AS (SELECT \(quotedKey)::int8 AS k FROM \(quotedTable)
                           WHERE \(quotedKey) > (SELECT last_key FROM cursor) ORDER BY \(quotedKey) LIMIT $2)
            SELECT (SELECT last_key FROM cursor), (SELECT max(k) FROM page), (SELECT count(*) FROM page)::int8,
                   clock_timestamp()::text
            """, [name, limit, after?.position])
        guard let row = page.first, let last = try row.decode(Int64?.self, at: 0) else {
            throw ProcessorError(
                code: .invalidConfiguration,
                message: "table consumer '\(name)' is not registered (its row in pgevents.table_consumers is gone)")
        }
        guard let upTo = try row.decode(Int64?.self, at: 1) else {
            return EventChunk(events: [], completesBatch: true, position: last)
        }
        let pageSize = try row.decode(Int.self, at: 2)
        try await waitForFence(try row.decode(String.self, at: 3), on: connection)

        // Every key up to the fence is final, so a chunk may also end earlier, once it holds about `maxBytes` of
        // payloads (the rest is read by the next call, which fences again).
        let rows = try await connection.query(
            """
            SELECT k, payload FROM (
                SELECT k, payload, sum(octet_length(payload)) OVER (ORDER BY k) - octet_length(payload) AS bytes_before
                  FROM (SELECT \(quotedKey)::int8 AS k,
                               jsonb_build_object('op', 'INSERT', 'schema', $3::text, 'table', $4::text, 'row', to_jsonb(t))::text AS payload
                          FROM \(quotedTable) t WHERE \(quotedKey) > $1 AND \(quotedKey) <= $2) AS page
            ) AS sized WHERE bytes_before < $5 ORDER BY k
            """, [last, upTo, schema, table, maxBytes])
        let now = Date()
        var events: [SourceEvent] = []
        events.reserveCapacity(rows.count)
        var bytes = 0
        for row in rows {
            let payload = try row.decode(String.self, at: 1)
            bytes += payload.utf8.count
            events.append(SourceEvent(seq: try row.decode(Int64.self, at: 0), channel: channel, payload: payload, createdAt: now))
        }
        if bytes >= maxBytes, let lastKey = events.last?.seq, lastKey < upTo {
            return EventChunk(events: events, completesBatch: false, position: lastKey)
        }
        return EventChunk(events: events, completesBatch: pageSize < limit, position: upTo)
    }

    public func ack(_ chunk: EventChunk, on connection: PostgresConnection) async throws {
        try await connection.query("SELECT pgevents.ack_table($1, $2)", [name, chunk.position])
    }

    /// Returns once no transaction that started before `fence` is open (other than this connection's).
    private func waitForFence(_ fence: String, on connection: PostgresConnection) async throws {
        let clock = ContinuousClock()
        let started = clock.now
        var nextWarning = fenceWarningSeconds
        var delay = Duration.microseconds(500)
        while true {
            let waiting = try await connection.query(
                "SELECT pid, xact_start::text, state, application_name FROM pgevents.fence_waits_for($1::timestamptz)", [fence])
            if waiting.isEmpty { return }
            let elapsed = clock.now - started
            if Double(elapsed.components.seconds) >= nextWarning {
                nextWarning += max(fenceWarningSeconds, 30)
                let sessions = try waiting.prefix(5).map { row in
                    "pid \(try row.decode(Int?.self, at: 0).map(String.init) ?? "-") (\(try row.decode(String?.self, at: 3).flatMap { $0.isEmpty ? nil : $0 } ?? "no application_name"), \(try row.decode(String?.self, at: 2) ?? "?") since \(try row.decode(String?.self, at: 1) ?? "?"))"
                }
                logger.warning(
                    "table source waits for older transactions to end before delivering",
                    metadata: [
                        "consumer": "\(name)", "table": "\(schema).\(table)", "seconds": "\(elapsed.components.seconds)",
                        "transactions": "\(waiting.count)", "sessions": "\(sessions.joined(separator: "; "))",
                    ])
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(50))
        }
    }
}

/// The name of earlier versions.
@available(*, deprecated, renamed: "TableSource")
public typealias TableConsumer = TableSource
