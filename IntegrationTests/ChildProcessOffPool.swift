import PGEventsSystem

/// `ChildProcess.run` on a thread of its own: waiting for a child (a `pgevents check` or `bench` run, seconds
/// long) must not hold one of the cooperative pool's few threads, which the other tests running at the same time
/// need — a processor whose heartbeat cannot run misses a freeze it should detect.
func runChild(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> (
    termination: ChildProcess.Termination, output: String
) {
    try await onBlockingThread { try ChildProcess.run(executable, arguments, environment: environment) }
}

extension ChildProcess {
    /// `wait()` on a thread of its own: a `pgevents process` stopping gracefully takes seconds, for which a
    /// blocking wait would hold one of the cooperative pool's two threads.
    func waitOffPool() async -> ChildProcess.Termination {
        let child = self
        // A thread that cannot be started (no more threads) waits here instead.
        return (try? await onBlockingThread { child.wait() }) ?? child.wait()
    }
}
