import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Every server this process started and has not shut down, so they can be stopped when the process exits.
///
/// An `atexit` handler stops them (immediately) and removes their directories. A process killed by a
/// signal runs no handler; each server's `ServerWatchdog` stops it then, and the next run reaps anything left
/// (`ScratchDirectory.reapLeftovers`).
enum LiveServers {
    private struct State {
        var stops: [Int: @Sendable () -> Void] = [:]
        var nextID = 0
        var installed = false
    }
    private static let state = Mutex(State())

    /// Registers a synchronous stop-and-delete action; returns the id to unregister with.
    static func register(_ stop: @escaping @Sendable () -> Void) -> Int {
        let (id, install) = state.withLock { state -> (Int, Bool) in
            let id = state.nextID
            state.nextID += 1
            state.stops[id] = stop
            defer { state.installed = true }
            return (id, !state.installed)
        }
        if install { atexit { LiveServers.stopAll() } }
        return id
    }

    static func unregister(_ id: Int) {
        _ = state.withLock { $0.stops.removeValue(forKey: id) }
    }

    /// Stops every registered server now.
    static func stopAll() {
        let stops = state.withLock { state -> [@Sendable () -> Void] in
            defer { state.stops.removeAll() }
            return Array(state.stops.values)
        }
        for stop in stops { stop() }
    }
}
