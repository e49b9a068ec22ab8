import Testing

@testable import PGEventsServe

@Suite("StatementQueue: a WebSocket client's statements, bounded, in order")
struct StatementQueueTests {
    @Test("statements come out in the order added; beyond the capacity each is refused in its place, refusals in a row as one count")
    func boundedInOrder() {
        var state = StatementQueue.State(capacity: 2)
        var added: [Bool] = []
        for item in [StatementQueue.Item.statement("a"), .binary, .statement("c"), .statement("d")] { added.append(state.add(item)) }
        #expect(added == [true, true, false, false])
        #expect(state.items == [.statement("a"), .binary, .refused(count: 2)])
        let first = state.take()
        #expect(first == .statement("a"))
        let whileRunning = state.add(.statement("d2"))  // taken, running: still counted
        #expect(!whileRunning)
        state.answered(.statement("a"))
        added = [state.add(.statement("e")), state.add(.statement("f"))]  // one answered: room for one more
        #expect(added == [true, false])
        #expect(state.items == [.binary, .refused(count: 3), .statement("e"), .refused(count: 1)])
        var taken: [StatementQueue.Item] = []
        while let item = state.take() {
            taken.append(item)
            state.answered(item)
        }
        #expect(taken == [.binary, .refused(count: 3), .statement("e"), .refused(count: 1)])
        #expect(state.statements == 0)
    }

    @Test("run hands over what was added before finish, then ends")
    func runDrains() async throws {
        let queue = StatementQueue(capacity: 4)
        queue.add(.statement("one"))
        queue.add(.statement("two"))
        queue.finish()
        var seen: [StatementQueue.Item] = []
        try await queue.run { seen.append($0) }
        #expect(seen == [.statement("one"), .statement("two")])
    }
}
