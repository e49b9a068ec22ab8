import Synchronization

/// True for the first caller of ``claim()`` only: what makes a server's `shutdown()` safe to call more than once.
final class OnceFlag: Sendable {
    private let claimed = Atomic<Bool>(false)

    /// Whether ``claim()`` was called.
    var isClaimed: Bool { claimed.load(ordering: .acquiring) }

    /// Whether this is the first call.
    func claim() -> Bool {
        !claimed.exchange(true, ordering: .acquiringAndReleasing)
    }
}
