import Logging
import PGEventsHarness
import PGEventsPostgres

/// One server for the whole test process (each test takes its own database from it); stopped at exit.
enum Shared {
    // Many tests run at once, each with processors (listener, heartbeat, worker) and connections of its own.
    private static let startup = Task { try await TemporaryPostgres.start(.init(settings: ["max_connections": "400"])) }

    static func postgres() async throws -> TemporaryPostgres {
        try await startup.value
    }

    /// A fresh database of the shared server.
    static func database() async throws -> TemporaryDatabase {
        try await postgres().makeDatabase()
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var seconds: Double
    var description: String { "timed out after \(seconds) s" }
}

/// Runs `body`, failing with `TimeoutError` if it takes longer than `seconds` (a guard against hangs, not a
/// performance assertion).
func withTimeout<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimeoutError(seconds: seconds)
        }
        defer { group.cancelAll() }
        return try await group.next()!
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
