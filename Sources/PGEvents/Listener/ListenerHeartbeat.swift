import Synchronization

/// The heartbeats of one connection that have been sent and not yet come back.
///
/// Heartbeats are sent one after the other on one connection, so they are committed — and echoed — in
/// order: the echo of heartbeat `n` accounts for every earlier one too. Written by the task that sends
/// heartbeats and by the task that reads notifications; the Mutex guards it.
final class ListenerHeartbeat: Sendable {
    private struct Sent {
        var sequence: Int
        var at: ContinuousClock.Instant
    }
    private let generation: Int
    private let pending = Mutex<[Sent]>([])

    /// A tracker for the heartbeats of connection `generation`.
    init(generation: Int) {
        self.generation = generation
    }

    /// The payload of heartbeat `sequence`: `<generation>.<sequence>`.
    func payload(_ sequence: Int) -> String {
        "\(generation).\(sequence)"
    }

    /// Records that heartbeat `sequence` is about to be sent (before sending: the echo may beat the reply).
    func willSend(_ sequence: Int, at instant: ContinuousClock.Instant = .now) {
        pending.withLock { $0.append(Sent(sequence: sequence, at: instant)) }
    }

    /// Records a heartbeat notification as it arrives; returns its round trip, or nil when the payload is
    /// not a pending heartbeat of this connection.
    func echoed(_ payload: String, at instant: ContinuousClock.Instant = .now) -> Duration? {
        let parts = payload.split(separator: ".")
        guard parts.count == 2, Int(parts[0]) == generation, let sequence = Int(parts[1]) else { return nil }
        return pending.withLock { pending in
            guard let echoed = pending.first(where: { $0.sequence == sequence }) else { return nil }
            pending.removeAll { $0.sequence <= sequence }
            return echoed.at.duration(to: instant)
        }
    }

    /// When the oldest heartbeat still waiting for its echo was sent, if any.
    var oldestPending: ContinuousClock.Instant? {
        pending.withLock { $0.first?.at }
    }
}
