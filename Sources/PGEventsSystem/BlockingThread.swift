#if canImport(Glibc)
    import Glibc
#endif

/// Runs blocking work (waiting for a child process, a blocking socket read, copying a directory) on a thread of
/// its own, started for it and ended with it.
///
/// Not on Swift's cooperative pool, which has one thread per core (two here), and not on Dispatch's global queue
/// either: on Linux, with the pool's two threads blocked, an item given to Dispatch's global queue waited 1.0 s
/// for a worker (its monitor adds one when it notices the others blocked). Starting a thread is cheap next to
/// the waits this is for.
public func onBlockingThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let work = BlockingWork { continuation.resume(with: Result { try body() }) }
        let box = Unmanaged.passRetained(work)
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<BlockingWork>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, box.toOpaque())
        if created == 0 {
            pthread_detach(thread)
        } else {
            box.release()
            continuation.resume(throwing: SystemError(call: "pthread_create", errno: created))
        }
    }
}

/// The closure a blocking thread runs, boxed to cross `pthread_create`.
private final class BlockingWork: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
