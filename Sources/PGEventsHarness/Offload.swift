import PGEventsSystem

/// Runs blocking work (waiting for a child process, copying a directory) on a thread of its own
/// (``onBlockingThread(_:)``), so that it never occupies a thread of Swift's cooperative pool.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await onBlockingThread(body)
}
