extension EventListener {
    /// The events of a listener: an `AsyncSequence` that finishes when `run()` returns. Iterate it once.
    public struct Events: AsyncSequence, Sendable {
        /// Each element is one `ListenerEvent`.
        public typealias Element = ListenerEvent
        /// The sequence never throws: failures are `.disconnected` events.
        public typealias Failure = Never

        let stream: AsyncStream<ListenerEvent>

        /// The iterator (one per sequence).
        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: stream.makeAsyncIterator())
        }

        /// Iterates the events; not `Sendable`: one task consumes it.
        public struct AsyncIterator: AsyncIteratorProtocol {
            var base: AsyncStream<ListenerEvent>.AsyncIterator

            /// The next event, or nil once the listener has stopped.
            public mutating func next() async -> ListenerEvent? {
                await base.next()
            }
        }
    }
}
