import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import Synchronization
import Testing

@testable import PGEvents

@Suite("The WAL source waits until decoded transactions are visible before rows are looked up")
struct WalVisibilityTests {
    @Test("a transaction still running is waited for until it commits; committed ones, and none, return at once")
    func waitsForARunningTransaction() async throws {
        let database = try await Shared.database()
        let logger = Logger(label: "test")
        try await PostgresConnection.withConnection(database.configuration) { writer in
            try await PostgresConnection.withConnection(database.configuration) { reader in
                try await writer.execute("CREATE TABLE IF NOT EXISTS visibility_probe (n int)")
                try await writer.execute("BEGIN")
                try await writer.execute("INSERT INTO visibility_probe VALUES (1)")
                let full = try #require(
                    try await writer.query("SELECT pg_current_xact_id()::text AS xid").first?.decode(String.self, column: "xid"))
                let xid = try #require(UInt64(full).map { UInt32(truncatingIfNeeded: $0) })
                let returned = ReturnedFlag()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await WalVisibility.waitUntilVisible([xid], on: reader, timeout: .seconds(60), logger: logger)
                        returned.value.withLock { $0 = true }
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    let early = returned.value.withLock { $0 }
                    #expect(!early, "returned while the transaction was still running")
                    try await writer.execute("COMMIT")
                    try await group.waitForAll()
                }
                let done = returned.value.withLock { $0 }
                #expect(done)
                // Committed (and an older one, and none): no wait.
                try await WalVisibility.waitUntilVisible([xid, xid &- 1], on: reader, timeout: .zero, logger: logger)
                try await WalVisibility.waitUntilVisible([], on: reader, logger: logger)
            }
        }
    }
}

/// Set by the waiting task once it returned.
private final class ReturnedFlag: Sendable {
    let value = Mutex(false)
}
