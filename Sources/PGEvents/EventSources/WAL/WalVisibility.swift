import Logging
public import PGEventsPostgres

/// Waits until the transactions a WAL read decoded are visible to new snapshots, before their rows are fetched.
///
/// A committing backend writes and flushes its commit record, and only then leaves the list of running transactions
/// (the ProcArray). The walsender can decode the commit and send it in between: a lookup of the row made at once
/// then does not find it, and a rule that reads the row sees nothing — on a loaded machine, for tens of
/// milliseconds. So when the pipeline fetches rows, the source asks first whether each transaction of the chunk is
/// visible in a fresh snapshot, and waits (1 ms at a time) until it is.
enum WalVisibility {
    /// How many of `transactionIDs` (the 32-bit IDs pgoutput sends, all recent) a new snapshot does not see yet.
    /// The 64-bit ID is the snapshot's epoch with the 32 bits, or the epoch before when the ID is above the
    /// snapshot's own low 32 bits (the counter wrapped since).
    static let invisibleSQL = """
        SELECT count(*) AS invisible
        FROM (SELECT pg_current_snapshot() AS snapshot) AS current,
             LATERAL (SELECT pg_snapshot_xmax(snapshot)::text::bigint AS xmax) AS top,
             unnest($1::bigint[]) AS xid
        WHERE NOT pg_visible_in_snapshot(
            ((CASE WHEN xid <= (xmax & 4294967295) THEN xmax & ~4294967295 ELSE (xmax & ~4294967295) - 4294967296 END) | xid)
                ::text::xid8,
            snapshot)
        """

    /// Returns once every transaction is visible, or after `timeout` with a warning (the lookups then run anyway).
    static func waitUntilVisible(
        _ transactionIDs: [UInt32], on connection: PostgresConnection, timeout: Duration = .seconds(5), logger: Logger
    ) async throws {
        guard !transactionIDs.isEmpty else { return }
        let list = "{" + transactionIDs.map(String.init).joined(separator: ",") + "}"
        let deadline = ContinuousClock.now + timeout
        while true {
            let rows = try await connection.query(invisibleSQL, [list])
            let invisible = try rows.first?.decode(Int64.self, column: "invisible") ?? 0
            guard invisible > 0 else { return }
            guard ContinuousClock.now < deadline else {
                logger.warning(
                    "decoded transactions are still not visible to new snapshots; looking up their rows anyway",
                    metadata: ["transactions": "\(invisible)", "waited": "\(timeout)"])
                return
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
