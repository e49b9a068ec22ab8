import Dispatch

/// Runs blocking work (waiting for a child process, copying a directory) on a Dispatch thread, so that it
/// never occupies a thread of Swift's cooperative pool.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try body() })
        }
    }
}
