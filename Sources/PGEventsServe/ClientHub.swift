import Synchronization

/// The connected clients and the live end of every stream: the stream reader publishes each entry here once,
/// and every client whose filter it fits gets it in its own bounded queue. Publishing never waits for a client:
/// a client whose queue is full is dropped (its `Subscription.dropped` fires) and the others go on.
public final class ClientHub: Sendable {
    private struct State {
        var clients: [Int: Client] = [:]
        var nextID = 0
        /// The last entry published, per stream: where a new subscriber's live feed starts.
        var positions: [String: StreamID] = [:]
    }

    private struct Client {
        var filter: ClientFilter
        var outbox: AsyncStream<Outgoing>.Continuation
        var drop: AsyncStream<Void>.Continuation
    }

    // Guarded by the mutex: registration from request tasks, publishing from the reader's task.
    private let state = Mutex(State())
    private let capacity: Int
    private let maxConnections: Int
    let metrics: GatewayMetrics

    /// A hub holding `capacity` messages per client and at most `maxConnections` clients.
    public init(capacity: Int, maxConnections: Int, metrics: GatewayMetrics) {
        self.capacity = capacity
        self.maxConnections = maxConnections
        self.metrics = metrics
    }

    /// What a client's queue holds.
    enum Outgoing: Sendable {
        case event(GatewayEvent)
        /// Time to show the connection is alive (SSE comment).
        case keepalive
    }

    /// One client's place in the hub: its queue, the positions its live feed starts after, and a signal that
    /// fires if it is dropped for being slow.
    struct Subscription: Sendable {
        let id: Int
        let events: AsyncStream<Outgoing>
        let keepalive: AsyncStream<Outgoing>.Continuation
        let dropped: AsyncStream<Void>
        let positions: [String: StreamID]
    }

    /// Clients connected now.
    public var count: Int { state.withLock { $0.clients.count } }

    /// Sets where the live feed starts before anything is published (the reader's starting positions).
    func start(at positions: [String: StreamID]) {
        state.withLock { $0.positions.merge(positions) { current, _ in current } }
    }

    /// Runs `body` with a subscription, removing it however `body` ends; nil when the hub is full.
    func withSubscription<T>(_ filter: ClientFilter, _ body: (Subscription) async throws -> T) async throws -> T? {
        let (events, outbox) = AsyncStream<Outgoing>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        let (dropped, drop) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let registered: (Int, [String: StreamID])? = state.withLock { state in
            guard state.clients.count < maxConnections else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.clients[id] = Client(filter: filter, outbox: outbox, drop: drop)
            return (id, state.positions)
        }
        guard let (id, positions) = registered else {
            metrics.connectionsRefused.add(1, ordering: .relaxed)
            return nil
        }
        metrics.connections.add(1, ordering: .relaxed)
        defer {
            _ = state.withLock { $0.clients.removeValue(forKey: id) }
            outbox.finish()
            drop.finish()
            metrics.connections.subtract(1, ordering: .relaxed)
        }
        return try await body(Subscription(id: id, events: events, keepalive: outbox, dropped: dropped, positions: positions))
    }

    /// Offers `events` (in stream order) to every client they fit; a client whose queue overflows is dropped.
    func publish(_ events: [GatewayEvent]) {
        guard !events.isEmpty else { return }
        let clients: [Int: Client] = state.withLock { state in
            for event in events { state.positions[event.stream.key] = event.id }
            return state.clients
        }
        var overflowed: [Int] = []
        for (id, client) in clients {
            for event in events where client.filter.wants(event) {
                if case .dropped = client.outbox.yield(.event(event)) {
                    overflowed.append(id)
                    break
                }
            }
        }
        guard !overflowed.isEmpty else { return }
        state.withLock { state in
            for id in overflowed {
                guard let client = state.clients.removeValue(forKey: id) else { continue }
                client.drop.yield()
                client.outbox.finish()
            }
        }
        metrics.slowClientsDropped.add(overflowed.count, ordering: .relaxed)
    }
}

/// What one client receives: its database's streams, the relations it may read and asked for, the channels it
/// asked for.
struct ClientFilter: Sendable, Equatable {
    /// The token's database.
    var database: String
    /// Relations (`schema.table`, catalog names); nil: all, including events whose relation is unknown.
    var relations: Set<String>?
    /// Processor channels (the entries' `channel` field); nil: all.
    var channels: Set<String>?

    func wants(_ event: GatewayEvent) -> Bool {
        guard event.isVisible(toDatabase: database) else { return false }
        if let channels, !(event.channel.map(channels.contains) ?? false) { return false }
        guard let relations else { return true }
        return event.items.contains { $0.relation.map(relations.contains) ?? false }
    }
}
