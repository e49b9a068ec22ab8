import PGEventsSystem
import Testing

/// An actor whose executor is a given thread (as a connection made with `executor:` is).
private actor ThreadBound {
    let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    init(_ executor: ThreadExecutor) { self.executor = executor }
    private(set) var recorded: [Int] = []
    func runsOnThread() -> Bool { executor.isOnThread }
    func record(_ index: Int) { recorded.append(index) }
}

@Suite("ThreadExecutor")
struct ThreadExecutorTests {
    @Test("actors on the thread run there whoever calls, the callers stay on Swift's pool, and every job runs once")
    func actorsOnTheThread() async {
        let thread = ThreadExecutor(name: "pgevents-test-thread")
        defer { thread.shutdown() }
        let first = ThreadBound(thread)
        let second = ThreadBound(thread)
        #expect(!thread.isOnThread)
        for _ in 0..<10 {
            #expect(await first.runsOnThread())
            #expect(await second.runsOnThread())
            // A caller comes back to the pool: its code must not stay on a connection's thread, where it would
            // wait behind the connection's calls.
            #expect(!thread.isOnThread)
        }
        let order = await withTaskGroup(of: Void.self) { group in
            for index in 0..<100 { group.addTask { await first.record(index) } }
            await group.waitForAll()
            return await first.recorded
        }
        #expect(order.sorted() == Array(0..<100))
    }
}
