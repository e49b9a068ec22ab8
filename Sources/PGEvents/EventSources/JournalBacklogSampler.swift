import Logging
import Metrics
import PGEventsPostgres

import struct Foundation.Date

/// Counts the consumer's undelivered journal events every `interval`, on a connection of its own
/// (`pgevents-monitor`), into the gauge `pgevents_journal_backlog_events{consumer}` and the processor's status —
/// sampled, never per event, so it costs delivery nothing.
///
/// The count is exact: committed events whose transaction the consumer's cursor has not passed (not visible in its
/// done snapshot, and not among the delivered part of the batch in progress). It walks the journal's `txid` index
/// from the cursor's horizon, so it is cheap while the processor keeps up; beyond `cap` events it stops counting
/// and reports `cap`, so a huge backlog cannot make the sample itself expensive.
struct JournalBacklogSampler: Sendable {
    var consumer: String
    var postgres: PostgresConfiguration
    var interval: Duration
    var queryTimeout: Duration
    var cap = 1_000_000
    var status: ProcessorStatus
    /// Labels beside `consumer` (`database` when one process serves several).
    var dimensions: [(String, String)] = []
    var logger: Logger

    static let query = """
        SELECT count(*) FROM (
            SELECT 1 FROM pgevents.consumers AS c JOIN pgevents.journal AS j ON j.txid >= pg_snapshot_xmin(c.done_snapshot)
             WHERE c.name = $1
               AND NOT pg_visible_in_snapshot(j.txid, c.done_snapshot)
               AND NOT (c.batch_snapshot IS NOT NULL AND pg_visible_in_snapshot(j.txid, c.batch_snapshot) AND j.seq <= c.batch_seq)
             LIMIT $2
        ) AS undelivered
        """

    /// Samples until cancelled. Failures are logged at debug level and tried again at the next interval (the
    /// processor's own connections report outages).
    func run() async {
        let gauge = Gauge(label: "pgevents_journal_backlog_events", dimensions: [("consumer", consumer)] + dimensions)
        var connection: PostgresConnection?
        while !Task.isCancelled {
            do {
                if connection == nil {
                    var settings = postgres
                    settings["application_name"] = "pgevents-monitor"
                    let opened = try await PostgresConnection.connect(settings, logger: logger)
                    await opened.setQueryTimeout(queryTimeout)
                    connection = opened
                }
                if let connection {
                    let count = try await connection.query(Self.query, [consumer, cap]).scalar(Int.self)
                    gauge.record(count)
                    status.update {
                        $0.backlog = count
                        $0.backlogSampledAt = Date()
                    }
                }
            } catch {
                logger.debug("sampling the journal's backlog failed; trying again", metadata: ["error": "\(error)"])
                await connection?.close()
                connection = nil
            }
            try? await Task.sleep(for: interval)
        }
        await connection?.close()
    }
}
