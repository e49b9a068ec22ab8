import Synchronization

public import struct Foundation.Date

/// What a running processor is doing, for probes and dashboards (`pgevents process --http`: `/healthz`, `/readyz`,
/// `/status`). The processor updates it as it goes; anyone may read a `snapshot` from any thread.
public final class ProcessorStatus: Sendable {
    /// The processor's part in its consumer group.
    public enum Role: String, Sendable {
        /// Not yet known: connecting, checking the servers, or before the first try for the leader lock.
        case starting
        /// Holds the consumer's leader lock: this instance delivers.
        case leader
        /// Another instance holds the lock: this one waits to take over.
        case standby
        /// Notify-only mode: no leader lock, no cursor; this instance pushes what it hears.
        case forwarding
        /// Graceful shutdown: finishing the chunk in flight.
        case stopping
        /// `run()` returned.
        case stopped
        /// `run()` ended with an error.
        case failed
    }

    /// The last event Redis took, in the source's order.
    public struct Position: Sendable, Equatable {
        /// The journal's snapshot batch (0 for a table; for the WAL, unused).
        public var batch: Int64
        /// The journal's `seq`, the table's key, or the WAL event's index in its transaction.
        public var seq: Int64
        /// When Redis took it.
        public var at: Date
    }

    /// The processor's state at one moment.
    public struct Snapshot: Sendable {
        public var consumer: String
        /// `journal`, `table`, `wal` or `notify`.
        public var source: String
        public var role: Role = .starting
        /// Whether this processor listens for wake-ups (the WAL source streams instead).
        public var hasListener = true
        /// The listener's state; nil before it started, or without a listener.
        public var listener: ListenerState?
        /// The listener's reconnections since start.
        public var reconnects = 0
        /// Events delivered (written to Redis) since start.
        public var delivered = 0
        public var lastDelivered: Position?
        /// Events of the journal not yet delivered, as last sampled; nil until sampled, or for other sources.
        public var backlog: Int?
        public var backlogSampledAt: Date?
        /// Why delivery is retrying (a server unreachable, a statement that failed), until it goes through again.
        public var problem: String?
        /// Who holds the leader lock, as a standby last saw it.
        public var leaderHolder: String?

        /// A processor of `consumer` on `source` that has not started yet.
        public init(consumer: String, source: String) {
            self.consumer = consumer
            self.source = source
        }

        /// Whether this instance should receive traffic, and why (or why not): ready when it is the leader and
        /// delivering, or a standby in good health, with its listener connected and Redis answering (`redis`: nil
        /// when not checked).
        public func readiness(redis: Result<Void, any Error>?) -> (ready: Bool, reason: String) {
            switch role {
            case .starting: return (false, "starting: not yet leader or standby")
            case .stopping: return (false, "stopping")
            case .stopped: return (false, "stopped")
            case .failed: return (false, "failed: \(problem ?? "the processor ended with an error")")
            case .leader, .standby, .forwarding: break
            }
            if hasListener {
                guard let listener else { return (false, "listener not started") }
                guard listener.isConnected else { return (false, "listener \(listener.description)") }
            }
            if case .failure(let error) = redis { return (false, "Redis does not answer: \(error)") }
            if let problem { return (false, "\(role.rawValue), but delivery is retrying: \(problem)") }
            switch role {
            case .leader: return (true, "leader: delivering")
            case .forwarding:
                return (
                    true, "forwarding: listening, pushing notifications to Redis (notify-only: what is sent while disconnected is lost)"
                )
            default: return (true, "standby: healthy, waiting for the leader lock" + (leaderHolder.map { " (held by \($0))" } ?? ""))
            }
        }
    }

    private let state: Mutex<Snapshot>
    private let listenerBox = Mutex<EventListener?>(nil)

    /// A status for `consumer`, reading `source` (`journal`, `table`, `wal`, `notify`).
    public init(consumer: String, source: String) {
        state = Mutex(Snapshot(consumer: consumer, source: source))
    }

    /// The state now (the listener's read live).
    public var snapshot: Snapshot {
        var snapshot = state.withLock { $0 }
        if let listener = listenerBox.withLock({ $0 }) { snapshot.listener = listener.state }
        return snapshot
    }

    /// Changes the state.
    func update(_ body: (inout Snapshot) -> Void) {
        state.withLock { body(&$0) }
    }

    /// The listener whose state `snapshot` reports.
    func attach(_ listener: EventListener?) {
        listenerBox.withLock { $0 = listener }
        update { $0.hasListener = listener != nil }
    }
}
