import PGEventsSystem
import Testing

/// An actor whose executor is a given thread (as a connection made with `executor:` is).
private actor ThreadBound {
    let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    init(_ executor: ThreadExecutor) { self.executor = executor }
    func runsOnThread() -> Bool { executor.isOnThread }
}

/// An actor with the default executor.
private actor Unbound {
    func runsOn(_ executor: ThreadExecutor) -> Bool { executor.isOnThread }
}

@Suite("ThreadExecutor as a task executor")
struct ThreadExecutorTests {
    @Test("a task that prefers the thread runs its nonisolated code, its child tasks, default actors and the thread's actors on it")
    func preferredThread() async {
        let thread = ThreadExecutor(name: "pgevents-test-thread", runsTasks: true)
        defer { thread.shutdown() }
        let bound = ThreadBound(thread)
        let unbound = Unbound()
        // Without the preference, nonisolated code runs on Swift's pool, not on the thread.
        #expect(!thread.isOnThread)
        #expect(await unbound.runsOn(thread) == false)
        let (nonisolatedCode, boundActor, defaultActor, childTasks) = await withTaskExecutorPreference(thread) {
            let nonisolatedCode = thread.isOnThread
            let boundActor = await bound.runsOnThread()
            let defaultActor = await unbound.runsOn(thread)
            let childTasks = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { thread.isOnThread } }
                var all = true
                for await onThread in group { all = all && onThread }
                return all
            }
            return (nonisolatedCode, boundActor, defaultActor, childTasks)
        }
        #expect(nonisolatedCode)
        #expect(boundActor)
        #expect(defaultActor)
        #expect(childTasks)
        // The thread's own actor runs on it whoever calls; a caller without the preference comes back to the pool
        // (its code must not stay on a connection's thread, where it would wait behind the connection's calls).
        for _ in 0..<10 {
            #expect(await bound.runsOnThread())
            #expect(!thread.isOnThread)
        }
    }
}
