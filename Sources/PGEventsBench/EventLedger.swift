import Synchronization

/// The ledger of a load run: every event the generator committed is recorded by its key, every job that
/// reached the consumer is checked off, and the run then says exactly what was lost and what duplicated.
///
/// Keys are integers (a table's key). `committed` can also be set from the table itself at the end, which is
/// the truth when a commit's outcome was unknown to the writer (its connection broke during COMMIT).
public final class EventLedger: Sendable {
    private struct State {
        var committed: Set<Int64> = []
        var deliveries: [Int64: Int] = [:]
        var firstDelivery: [Int64: ContinuousClock.Instant] = [:]
        /// Keys delivered more than once, kept as deliveries are checked off (so reading it costs nothing).
        var duplicatedKeys = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Makes room for `count` events at once, so that the ledger does not grow (and reallocate) during a long run:
    /// a soak measures the resident size of the process that holds it.
    public func reserveCapacity(_ count: Int) {
        state.withLock { state in
            state.committed.reserveCapacity(count)
            state.deliveries.reserveCapacity(count)
            state.firstDelivery.reserveCapacity(count)
        }
    }

    /// Records a committed event.
    public func committed(_ key: Int64) {
        state.withLock { _ = $0.committed.insert(key) }
    }

    /// Replaces the committed set (e.g. with the keys read back from the table).
    public func setCommitted<S: Sequence>(_ keys: S) where S.Element == Int64 {
        state.withLock { $0.committed = Set(keys) }
    }

    /// Checks off a delivered job.
    public func delivered(_ key: Int64, at instant: ContinuousClock.Instant = .now) {
        state.withLock { state in
            state.deliveries[key, default: 0] += 1
            if state.deliveries[key] == 2 { state.duplicatedKeys += 1 }
            if state.firstDelivery[key] == nil { state.firstDelivery[key] = instant }
        }
    }

    public var committedCount: Int { state.withLock { $0.committed.count } }
    public var deliveredCount: Int { state.withLock { $0.deliveries.count } }
    /// How many keys were delivered more than once so far (what `summary.duplicated` counts, without sorting them).
    public var duplicatedCount: Int { state.withLock { $0.duplicatedKeys } }

    /// Whether every key in `keys` has been delivered at least once.
    public func allDelivered<S: Sequence>(_ keys: S) -> Bool where S.Element == Int64 {
        state.withLock { state in keys.allSatisfy { state.deliveries[$0] != nil } }
    }

    /// The committed keys so far.
    public var committedKeys: Set<Int64> { state.withLock { $0.committed } }

    /// What the run amounts to.
    public struct Summary: Sendable, Codable, Equatable {
        public var sent: Int
        public var delivered: Int
        /// Committed, never delivered (sorted; all of them).
        public var lost: [Int64]
        /// Delivered more than once (sorted).
        public var duplicated: [Int64]
        /// Delivered but never committed (a job for a rolled-back or foreign event).
        public var unexpected: [Int64]
    }

    public var summary: Summary {
        state.withLock { state in
            let delivered = Set(state.deliveries.keys)
            return Summary(
                sent: state.committed.count,
                delivered: delivered.intersection(state.committed).count,
                lost: state.committed.subtracting(delivered).sorted(),
                duplicated: state.deliveries.filter { $0.value > 1 }.map(\.key).sorted(),
                unexpected: delivered.subtracting(state.committed).sorted())
        }
    }
}
