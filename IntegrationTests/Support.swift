import Logging
import PGEventsHarness
import PGEventsPostgres

/// One server for the whole test process (each test takes its own database from it); stopped at exit.
enum Shared {
    /// Many tests run at once, each with processors (listener, heartbeat, worker) and connections of its own.
    /// Every use of the shared server passes this: the first call starts it.
    static let configuration = TemporaryPostgres.Configuration(settings: [
        "max_connections": "400", "max_replication_slots": "64", "max_wal_senders": "64",
    ])

    static func postgres() async throws -> TemporaryPostgres {
        try await TemporaryPostgres.shared(configuration)
    }

    /// A fresh database of the shared server.
    static func database() async throws -> TemporaryDatabase {
        try await postgres().makeDatabase()
    }
}

/// Collects notifications until one with `payload` arrives (that one excluded).
func collect(
    _ iterator: inout PostgresNotificationSequence.AsyncIterator,
    until payload: String
) async throws -> [PostgresNotification] {
    var received: [PostgresNotification] = []
    while let notification = try await iterator.next() {
        if notification.payload == payload { return received }
        received.append(notification)
    }
    return received
}
