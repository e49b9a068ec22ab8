import Foundation
public import PGEventsPostgres
public import PGEventsRedis
import PGEventsSystem
import Synchronization

/// A wait that ran out of time: what was awaited, for how long, and what arrived meanwhile.
public struct TimeoutError: Error, Sendable, CustomStringConvertible {
    public var seconds: Double
    /// What was awaited, for the message.
    public var awaited: String
    /// What arrived that did not match (notifications, jobs), for the message.
    public var seen: [String]

    public init(seconds: Double, awaited: String = "", seen: [String] = []) {
        self.seconds = seconds
        self.awaited = awaited
        self.seen = seen
    }

    public var description: String {
        var text = awaited.isEmpty ? "timed out after \(seconds) s" : "\(awaited): nothing within \(seconds) s"
        if !seen.isEmpty { text += "; received instead: " + seen.prefix(10).joined(separator: ", ") }
        return text
    }
}

/// Runs `body`, failing with `TimeoutError` if it takes longer than `seconds`; the body is cancelled then. A guard
/// against hangs in tests (a trigger that never fires), not a performance assertion.
public func withTimeout<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1_000)))
            throw TimeoutError(seconds: seconds)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        return first
    }
}

extension PostgresNotificationSequence {
    /// The next notification on `channel` (that `matching` accepts), within `seconds`; throws `TimeoutError` naming
    /// the channel and what arrived instead, so a test never hangs and never passes with nothing checked.
    ///
    /// ```swift
    /// try await listener.listen("new_event")
    /// let notifications = await listener.notifications()
    /// try await writer.query("INSERT INTO events (kind) VALUES ('created')")
    /// let notification = try await notifications.expectNotification(channel: "new_event", within: 5)
    /// ```
    public func expectNotification(
        channel: String, within seconds: Double = 5, matching: @escaping @Sendable (PostgresNotification) -> Bool = { _ in true }
    ) async throws -> PostgresNotification {
        let sequence = self
        let seen = SeenItems()
        do {
            return try await withTimeout(seconds) {
                for try await notification in sequence {
                    if notification.channel == channel, matching(notification) { return notification }
                    seen.add("\(notification.channel): \(notification.payload.prefix(60))")
                }
                throw PostgresError(
                    code: .connectionClosed, message: "the connection's notifications ended before one arrived on \(channel)")
            }
        } catch let error as TimeoutError {
            throw TimeoutError(seconds: error.seconds, awaited: "a notification on \(channel)", seen: seen.items)
        }
    }
}

extension RedisConnection {
    /// Takes jobs from the list `queue` (`BRPOP`, as a worker does) until one that `matching` accepts, within
    /// `seconds`; throws `TimeoutError` naming the queue and the jobs taken that did not match.
    public func expectJob(
        queue: String, within seconds: Double = 5, matching: @escaping @Sendable (String) -> Bool = { _ in true }
    ) async throws -> String {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1_000))
        var seen: [String] = []
        while true {
            let left = deadline - .now
            guard left > .zero else { break }
            let wait = max(0.01, left.inSeconds)
            let reply = try command("BRPOP", RedisArgument(queue), RedisArgument(String(format: "%.3f", wait)))
            guard let job = reply.array?.last?.string else { continue }
            if matching(job) { return job }
            seen.append(String(job.prefix(60)))
        }
        throw TimeoutError(seconds: seconds, awaited: "a job on \(queue)", seen: seen)
    }
}

/// What a wait saw, shared with the task that waits (a Mutex guards it).
private final class SeenItems: Sendable {
    private let stored = Mutex<[String]>([])
    func add(_ item: String) { stored.withLock { $0.append(item) } }
    var items: [String] { stored.withLock { $0 } }
}
