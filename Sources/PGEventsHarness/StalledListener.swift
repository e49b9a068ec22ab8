import PGEventsPostgres

/// A listener that stops reading: it LISTENs, then sits inside an open transaction, where a session does not
/// consume notifications — so the server's NOTIFY queue cannot advance past it and fills as others notify.
/// The fault behind "the queue is 50 % full" warnings, and behind `NOTIFY` failing ("too many notifications
/// in the NOTIFY queue") once it is full.
///
/// ```swift
/// let stalled = try await StalledListener.start(on: database, channels: ["orders"])
/// try await stalled.fill(bytes: 8 << 20)                  // 8 MB of notifications on its first channel
/// let usage = try await stalled.queueUsage()              // pg_notification_queue_usage(), 0…1
/// try await stalled.release()                             // commits: the queue drains
/// ```
public final class StalledListener: Sendable {
    private let listener: PostgresConnection
    private let sender: PostgresConnection
    public let channels: [String]

    private init(listener: PostgresConnection, sender: PostgresConnection, channels: [String]) {
        self.listener = listener
        self.sender = sender
        self.channels = channels
    }

    /// Connects to `database`, LISTENs on `channels` and opens the transaction that stops it reading.
    public static func start(on database: TemporaryDatabase, channels: [String]) async throws -> StalledListener {
        guard !channels.isEmpty else { throw HarnessError(code: .invalidInput, message: "a stalled listener needs at least one channel") }
        let listener = try await database.connect()
        let sender = try await database.connect()
        do {
            for channel in channels { try await listener.listen(channel) }
            try await listener.execute("BEGIN")
            try await listener.query("SELECT 1")  // inside a transaction: incoming notifications wait
        } catch {
            await listener.close()
            await sender.close()
            throw error
        }
        return StalledListener(listener: listener, sender: sender, channels: channels)
    }

    /// Sends about `bytes` of notifications (7,900-byte payloads, one transaction per 1,000) on the first
    /// channel; returns the queue usage afterwards.
    @discardableResult
    public func fill(bytes: Int) async throws -> Double {
        let payload = String(repeating: "x", count: 7_900)
        var remaining = max(1, bytes / 7_900)
        while remaining > 0 {
            let count = min(remaining, 1_000)
            try await sender.query("SELECT count(pg_notify($1, $2 || g)) FROM generate_series(1, $3) g", [channels[0], payload, count])
            remaining -= count
        }
        return try await queueUsage()
    }

    /// `pg_notification_queue_usage()`: the fraction of the server's queue in use (0…1).
    public func queueUsage() async throws -> Double {
        try await sender.query("SELECT pg_notification_queue_usage()").scalar(Double.self)
    }

    /// Ends the transaction and closes both connections: the queue can drain again.
    public func release() async {
        _ = try? await listener.execute("COMMIT")
        await listener.close()
        await sender.close()
    }
}
