public import Logging
public import PGEventsPostgres

/// Whether the processor's connections are sessions of their own, checked at start.
///
/// LISTEN and the leader's session advisory lock belong to a server session. Behind a pooler that hands server
/// connections out per transaction or per statement (PgBouncer's `pool_mode = transaction`), they stay on a
/// server connection the pool gives to other clients: notifications go to nobody, heartbeats time out, two
/// processors both become leader, and a lock outlives its processor in the pool. So the processor looks before it
/// starts: two connections of its own each ask, in turn, which backend serves them. Direct connections, and a
/// pooler in session mode, never share one; a pooler that moves statements does.
public enum SessionCheck {
    /// Throws ``ProcessorError`` (`sharedSession`) when two of the processor's connections were served by one
    /// backend. A server that cannot be reached, or a connection lost during the check, is not an answer: the
    /// processor's own retries deal with them.
    public static func requireSessions(_ configuration: PostgresConfiguration, logger: Logger, rounds: Int = 4) async throws {
        let first: PostgresConnection
        let second: PostgresConnection
        do {
            first = try await PostgresConnection.connect(configuration, logger: logger)
        } catch {
            logger.debug("session check skipped: cannot connect yet", metadata: ["error": "\(error)"])
            return
        }
        do {
            second = try await PostgresConnection.connect(configuration, logger: logger)
        } catch {
            await first.close()
            logger.debug("session check skipped: cannot connect yet", metadata: ["error": "\(error)"])
            return
        }
        var shared: Int32?
        do {
            var seenByFirst = Set<Int32>()
            var seenBySecond = Set<Int32>()
            for _ in 0..<rounds where shared == nil {
                // Each statement is a transaction of its own: a transaction pooler may put the next one on the server
                // connection the other client just released.
                seenByFirst.insert(try await first.query("SELECT pg_backend_pid()").scalar(Int32.self))
                seenBySecond.insert(try await second.query("SELECT pg_backend_pid()").scalar(Int32.self))
                shared = seenByFirst.intersection(seenBySecond).first
            }
        } catch {
            // A connection lost or a statement refused is not an answer either: the processor's own retries deal with
            // the server; the check only stops it on evidence.
            await first.close()
            await second.close()
            logger.debug("session check not finished", metadata: ["error": "\(error)"])
            return
        }
        await first.close()
        await second.close()
        if let shared {
            throw ProcessorError(
                code: .sharedSession,
                message: """
                    two of the processor's connections to \(configuration) were served by the same server backend (pid \(shared)): \
                    a pooler that hands out server connections per transaction or statement (PgBouncer pool_mode = transaction) \
                    is in between. LISTEN and the leader's session advisory lock need sessions of their own, or notifications \
                    are lost and two processors both lead. Give pgevents a direct URL to PostgreSQL, or one through a \
                    session-mode pool (pool_mode = session); your application's own connections may stay on the transaction pool
                    """)
        }
    }
}
