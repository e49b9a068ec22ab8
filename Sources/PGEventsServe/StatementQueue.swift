import Synchronization

/// The SQL statements one WebSocket client sent that are not answered yet, in the order sent: the connection's
/// reading loop adds them without ever waiting (so it goes on reading, and answering pings, while a statement
/// runs), and one task per connection runs them one at a time (`run`), so answers go out in order.
///
/// At most `capacity` statements wait or run. One more is not run but answered in its place with an error; refusals in
/// a row are held as one count, so the queue stays bounded whatever the client sends.
final class StatementQueue: Sendable {
    /// What waits: a statement to run, a binary message (answered with an error), or a number of messages
    /// refused because the queue was full.
    enum Item: Sendable, Equatable {
        case statement(String)
        case binary
        case refused(count: Int)
    }

    /// The queue as a value: what `add` and `take` do, without the waiting (unit-tested as is).
    struct State: Sendable, Equatable {
        let capacity: Int
        private(set) var items: [Item] = []
        private(set) var statements = 0
        private(set) var finished = false

        init(capacity: Int) { self.capacity = capacity }

        /// Queues `item` (a statement or a binary message), or a refusal in its place when `capacity` wait;
        /// false when refused.
        mutating func add(_ item: Item) -> Bool {
            if statements < capacity {
                items.append(item)
                statements += 1
                return true
            }
            if case .refused(let count) = items.last {
                items[items.count - 1] = .refused(count: count + 1)
            } else {
                items.append(.refused(count: 1))
            }
            return false
        }

        /// The oldest item, removed; it counts against the capacity until `answered` says it was handled.
        mutating func take() -> Item? {
            guard !items.isEmpty else { return nil }
            return items.removeFirst()
        }

        /// `item`, taken before, has been answered.
        mutating func answered(_ item: Item) {
            if case .refused = item { return }
            statements -= 1
        }

        /// No more items will be added.
        mutating func finish() { finished = true }
    }

    // Guarded by the mutex: `add` and `finish` from the reading loop, `take` from the task running statements.
    private let state: Mutex<State>
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// A queue holding at most `capacity` statements.
    init(capacity: Int) {
        state = Mutex(State(capacity: capacity))
        (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `item` (or, when full, a refusal in its place); never waits. False when refused.
    @discardableResult
    func add(_ item: Item) -> Bool {
        let added = state.withLock { $0.add(item) }
        wake.yield()
        return added
    }

    /// Ends `run` once what is queued has been handled.
    func finish() {
        state.withLock { $0.finish() }
        wake.finish()
    }

    /// Hands every item to `handle`, one at a time in order, until `finish` was called and nothing is left (or
    /// the task is cancelled, or `handle` throws).
    func run(_ handle: (Item) async throws -> Void) async throws {
        var iterator = wakeups.makeAsyncIterator()
        while true {
            let (item, finished) = state.withLock { state in (state.take(), state.finished) }
            if let item {
                try await handle(item)
                state.withLock { $0.answered(item) }
                continue
            }
            if finished { return }
            guard await iterator.next() != nil else {
                try Task.checkCancellation()
                // Finished meanwhile: handle what was added before `finish`.
                while let item = state.withLock({ $0.take() }) { try await handle(item) }
                return
            }
            try Task.checkCancellation()
        }
    }
}
