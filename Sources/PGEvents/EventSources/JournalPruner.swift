import Logging
import PGEventsPostgres

/// Deletes the journal events every registered consumer has delivered, beside delivery rather than in its way: on a
/// connection of its own (`pgevents-pruner`), every `interval`, in short transactions of `batch` events each until
/// caught up — so pruning keeps pace with any rate the processor delivers, and never holds delivery or a lock long.
struct JournalPruner: Sendable {
    var postgres: PostgresConfiguration
    var interval: Duration
    var batch = 5_000
    var queryTimeout: Duration
    var logger: Logger

    /// Prunes until cancelled. Failures are logged and tried again at the next interval.
    func run() async {
        var connection: PostgresConnection?
        while !Task.isCancelled {
            do {
                if connection == nil {
                    var settings = postgres
                    settings["application_name"] = "pgevents-pruner"
                    let opened = try await PostgresConnection.connect(settings, logger: logger)
                    await opened.setQueryTimeout(queryTimeout)
                    connection = opened
                }
                var deleted = 0
                while !Task.isCancelled, let connection {
                    let count = try await JournalSource.prune(on: connection, limit: batch)
                    deleted += count
                    if count < batch { break }
                }
                if deleted > 0 { logger.debug("pruned", metadata: ["events": "\(deleted)"]) }
            } catch {
                logger.warning("pruning the journal failed; trying again at the next interval", metadata: ["error": "\(error)"])
                await connection?.close()
                connection = nil
            }
            try? await Task.sleep(for: interval)
        }
        await connection?.close()
    }
}
