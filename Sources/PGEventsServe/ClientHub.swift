import Foundation
import Synchronization

/// The connected clients and the live end of every stream: the stream reader publishes each entry here once,
/// and every client whose filter it fits gets it in its own bounded queue. Publishing never waits for a client:
/// a client whose queue is full is dropped (its `Subscription.ended` says `.slow`) and the others go on.
///
/// The hub is also every client's clock (``runClock(every:)``, one task for all of them, not one sleeping task per
/// client): a client whose token has expired is ended (`.expired`), and an SSE client gets its keep-alive.
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
        var end: AsyncStream<Ending>.Continuation
        var expiresAt: Date
        /// Keep-alives through the client's queue this often (SSE); nil: none (WebSocket pings are Hummingbird's).
        var keepaliveEvery: Duration?
        var lastKeepalive: ContinuousClock.Instant
    }

    /// Why the hub ended a client.
    enum Ending: Sendable, Equatable {
        /// Its queue overflowed: it was not reading fast enough.
        case slow
        /// Its token expired.
        case expired
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
    /// fires if the hub ends it (too slow, or its token expired).
    struct Subscription: Sendable {
        let id: Int
        let events: AsyncStream<Outgoing>
        let outbox: AsyncStream<Outgoing>.Continuation
        let ended: AsyncStream<Ending>
        let positions: [String: StreamID]
    }

    /// Clients connected now.
    public var count: Int { state.withLock { $0.clients.count } }

    /// Sets where the live feed starts before anything is published (the reader's starting positions).
    func start(at positions: [String: StreamID]) {
        state.withLock { $0.positions.merge(positions) { current, _ in current } }
    }

    /// Runs `body` with a subscription, removing it however `body` ends; nil when the hub is full. The hub ends it
    /// (`Subscription.ended`) at `expiresAt`, and gives it a `.keepalive` every `keepaliveEvery` when set.
    func withSubscription<T>(
        _ filter: ClientFilter, expiresAt: Date, keepaliveEvery: Duration? = nil, _ body: (Subscription) async throws -> T
    ) async throws -> T? {
        let (events, outbox) = AsyncStream<Outgoing>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        let (ended, end) = AsyncStream<Ending>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let registered: (Int, [String: StreamID])? = state.withLock { state in
            guard state.clients.count < maxConnections else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.clients[id] = Client(
                filter: filter, outbox: outbox, end: end, expiresAt: expiresAt, keepaliveEvery: keepaliveEvery,
                lastKeepalive: .now)
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
            end.finish()
            metrics.connections.subtract(1, ordering: .relaxed)
        }
        return try await body(Subscription(id: id, events: events, outbox: outbox, ended: ended, positions: positions))
    }

    /// Every client's clock, until cancelled: each `every`, ends the clients whose token has expired and sends the
    /// keep-alives that are due. A token expires at most `every` late.
    func runClock(every: Duration = .seconds(1)) async {
        while (try? await Task.sleep(for: every)) != nil {
            tick(now: Date(), instant: .now)
        }
    }

    /// One beat of the clock.
    func tick(now: Date, instant: ContinuousClock.Instant) {
        state.withLock { state in
            for (id, client) in state.clients {
                if client.expiresAt <= now {
                    // Its session closes with the reason and leaves (removing it); nothing more is queued for it.
                    state.clients[id] = nil
                    client.end.yield(.expired)
                } else if let every = client.keepaliveEvery, instant - client.lastKeepalive >= every {
                    state.clients[id]?.lastKeepalive = instant
                    client.outbox.yield(.keepalive)
                }
            }
        }
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
                client.end.yield(.slow)
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
