import Synchronization

/// The statuses of a ``MultiDatabaseProcessor``: one ``ProcessorStatus`` per database served (the one of its current
/// processor, which is replaced when it is started again), and the state of the whole service.
public final class DatabaseStatuses: Sendable {
    /// The service as a whole.
    public enum State: String, Sendable {
        case starting, running, stopped, failed
    }

    private let entries = Mutex<[String: ProcessorStatus]>([:])
    private let serviceState = Mutex(State.starting)

    public init() {}

    /// The service's state now.
    public var state: State { serviceState.withLock { $0 } }

    /// Each database served and its processor's state now, by name.
    public var snapshots: [(database: String, snapshot: ProcessorStatus.Snapshot)] {
        entries.withLock { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value.snapshot) }
    }

    func setState(_ state: State) {
        serviceState.withLock { $0 = state }
    }

    func set(_ status: ProcessorStatus, for database: String) {
        entries.withLock { $0[database] = status }
    }

    func remove(_ database: String) {
        _ = entries.withLock { $0.removeValue(forKey: database) }
    }

    /// Removes `database`'s entry if it is still `status` (not that of a processor started since).
    func remove(_ database: String, ifStill status: ProcessorStatus) {
        entries.withLock { entries in
            if entries[database] === status { entries.removeValue(forKey: database) }
        }
    }
}
