import Foundation
import NIOCore
import Synchronization

/// The connected clients and the live end of every stream: the stream reader publishes each entry here once,
/// and every client whose filter it fits gets it, within its own bound. Publishing never waits for a client: a
/// client that falls behind its bound is dropped (ended as `.slow`) and the others go on.
///
/// A WebSocket client is a ``SocketFeed``, written to on its channel's event loop by the hub's drain for that
/// loop: no task, no queue object and no wake-up per client. An SSE client has a queue (an `AsyncStream`) that
/// its response's task reads, because Hummingbird's response body writer is that task's to use.
///
/// The hub is also every client's clock (``runClock(every:)``, one task for all of them, not one sleeping task per
/// client): a client whose token has expired is ended (`.expired`), and an SSE client gets its keep-alive.
public final class ClientHub: Sendable {
    private struct State {
        var clients: [Int: Client] = [:]
        var nextID = 0
        /// The last entry published, per stream: where a new subscriber's live feed starts.
        var positions: [String: StreamID] = [:]
        /// The clients fed through a queue (SSE), by ID.
        var queues: [Int: QueueClient] = [:]
        /// The clients fed on their channel's event loop (WebSocket), by event loop, then ID.
        var loops: [ObjectIdentifier: LoopClients] = [:]
    }

    private struct Client {
        /// How a queue client's session learns that the hub ended it; nil for a WebSocket client (its feed ends it).
        var end: AsyncStream<Ending>.Continuation?
        var expiresAt: Date
        /// The event loop of a WebSocket client's feed; nil for a queue client.
        var loop: ObjectIdentifier?
        /// Keep-alives through the client's queue this often (SSE); nil: none (WebSocket pings are Hummingbird's).
        var keepaliveEvery: Duration?
        var lastKeepalive: ContinuousClock.Instant
    }

    private struct QueueClient {
        var filter: ClientFilter
        var outbox: AsyncStream<Outgoing>.Continuation
    }

    /// The WebSocket clients of one event loop, and the events published to them that the loop has not taken yet.
    private struct LoopClients {
        var loop: any EventLoop
        var feeds: [Int: SocketFeed] = [:]
        var pending: [GatewayEvent] = []
        /// A drain is scheduled on the loop: more events join `pending` and go with it.
        var draining = false

        /// Adds `events` for the loop's clients; true when a drain must be scheduled for them.
        mutating func add(_ events: [GatewayEvent]) -> Bool {
            guard !feeds.isEmpty else { return false }
            pending.append(contentsOf: events)
            defer { draining = true }
            return !draining
        }

        /// What the drain hands out: the pending events and the clients now on the loop.
        mutating func take() -> ([GatewayEvent], [Int: SocketFeed]) {
            defer {
                pending = []
                draining = false
            }
            return (pending, feeds)
        }
    }

    /// Why a client's subscription ended.
    enum Ending: Sendable, Equatable {
        /// Its queue overflowed: it was not reading fast enough.
        case slow
        /// Its token expired.
        case expired
    }

    // Guarded by the mutex: registration from request tasks, publishing from the reader's task, overflow from
    // event loops.
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

    /// One queue client's place in the hub: its queue, the positions its live feed starts after, and a signal that
    /// fires if the hub ends it (too slow, or its token expired).
    struct Subscription: Sendable {
        let id: Int
        let events: AsyncStream<Outgoing>
        let outbox: AsyncStream<Outgoing>.Continuation
        let ended: AsyncStream<Ending>
        let positions: [String: StreamID]
    }

    /// One WebSocket client's place in the hub: its feed, and the positions the feed starts after (where a replay
    /// ends).
    struct SocketSubscription: Sendable {
        let feed: SocketFeed
        let positions: [String: StreamID]
    }

    /// Clients connected now.
    public var count: Int { state.withLock { $0.clients.count } }

    /// Sets where the live feed starts before anything is published (the reader's starting positions).
    func start(at positions: [String: StreamID]) {
        state.withLock { $0.positions.merge(positions) { current, _ in current } }
    }

    /// Runs `body` with a queue subscription, removing it however `body` ends; nil when the hub is full. The hub
    /// ends it (`Subscription.ended`) at `expiresAt`, and gives it a `.keepalive` every `keepaliveEvery` when set.
    func withSubscription<T>(
        _ filter: ClientFilter, expiresAt: Date, keepaliveEvery: Duration? = nil, _ body: (Subscription) async throws -> T
    ) async throws -> T? {
        let (events, outbox) = AsyncStream<Outgoing>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        let (ended, end) = AsyncStream<Ending>.makeStream(bufferingPolicy: .bufferingOldest(1))
        let client = Client(end: end, expiresAt: expiresAt, keepaliveEvery: keepaliveEvery, lastKeepalive: .now)
        let registered = register(client) { state, id in state.queues[id] = QueueClient(filter: filter, outbox: outbox) }
        guard let (id, positions) = registered else { return nil }
        defer {
            remove(id)
            outbox.finish()
            end.finish()
        }
        return try await body(Subscription(id: id, events: events, outbox: outbox, ended: ended, positions: positions))
    }

    /// Runs `body` with a WebSocket client's feed on `channel`, removing it however `body` ends; nil when the hub
    /// is full. The feed starts after the live positions, or after `since` where that is further on. With `since`,
    /// live batches are held until the session has replayed up to `positions` and calls `feed.goLive()`. The hub
    /// ends the client (``SocketFeed/end(_:)``, with `farewell`'s message and close frame) at `expiresAt`, and when
    /// it falls `capacity` messages behind; its connection closes, which ends the session's reading.
    func withSocketFeed<T>(
        _ filter: ClientFilter, channel: any Channel, since: [String: StreamID]?, expiresAt: Date,
        farewell: @escaping @Sendable (Ending) -> SocketFeed.Farewell, _ body: (SocketSubscription) async -> T
    ) async -> T? {
        let loop = ObjectIdentifier(channel.eventLoop)
        let client = Client(end: nil, expiresAt: expiresAt, loop: loop, lastKeepalive: .now)
        let metrics = self.metrics
        var made: SocketFeed?
        let registered = register(client) { state, id in
            let start = state.positions.merging(since ?? [:]) { live, asked in max(live, asked) }
            let feed = SocketFeed(
                channel: channel, filter: filter, positions: start, replaying: since != nil, capacity: capacity,
                farewell: farewell, onOverflow: { [weak self] in self?.drop([id], .slow) },
                onSent: { metrics.messagesSent.add($0, ordering: .relaxed) })
            state.loops[loop, default: LoopClients(loop: channel.eventLoop)].feeds[id] = feed
            made = feed
        }
        guard let (id, positions) = registered, let feed = made else { return nil }
        defer { remove(id) }
        return await body(SocketSubscription(feed: feed, positions: positions))
    }

    /// Adds `client` (and, through `add`, its feed) unless the hub is full: its ID and the live positions.
    private func register(_ client: Client, add: (inout State, Int) -> Void) -> (Int, [String: StreamID])? {
        let registered: (Int, [String: StreamID])? = state.withLock { state in
            guard state.clients.count < maxConnections else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.clients[id] = client
            add(&state, id)
            return (id, state.positions)
        }
        if registered == nil {
            metrics.connectionsRefused.add(1, ordering: .relaxed)
        } else {
            metrics.connections.add(1, ordering: .relaxed)
        }
        return registered
    }

    private func remove(_ id: Int) {
        let removed = state.withLock { Self.remove(id, from: &$0) }
        if removed != nil { metrics.connections.subtract(1, ordering: .relaxed) }
    }

    private static func remove(_ id: Int, from state: inout State) -> Client? {
        guard let client = state.clients.removeValue(forKey: id) else { return nil }
        stopPublishing(to: id, client, in: &state)
        return client
    }

    /// Takes the client out of what ``publish(_:)`` reaches; a queue client's queue ends after what it holds.
    private static func stopPublishing(to id: Int, _ client: Client, in state: inout State) {
        if let loop = client.loop {
            state.loops[loop]?.feeds[id] = nil
        } else {
            state.queues.removeValue(forKey: id)?.outbox.finish()
        }
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
                    // Counted here, where the expiry is decided and before the client is told: a session that
                    // counted it when told raced its own ending.
                    metrics.tokensExpired.add(1, ordering: .relaxed)
                    // Its session closes with the reason; nothing more is published to it. It stays counted as
                    // connected until its session has closed it.
                    if let loop = client.loop, let feed = state.loops[loop]?.feeds[id] {
                        feed.eventLoop.execute { feed.end(.expired) }
                    }
                    Self.stopPublishing(to: id, client, in: &state)
                    state.clients[id]?.expiresAt = .distantFuture
                    client.end?.yield(.expired)
                } else if let every = client.keepaliveEvery, instant - client.lastKeepalive >= every {
                    state.clients[id]?.lastKeepalive = instant
                    state.queues[id]?.outbox.yield(.keepalive)
                }
            }
        }
    }

    /// Offers `events` (in stream order) to every client they fit; a client whose queue overflows is dropped.
    ///
    /// WebSocket clients get them on their event loops: each loop has one drain scheduled at most, which takes
    /// everything published to the loop since the last, so a loop that falls behind catches up in larger batches
    /// (one flush per client per batch) instead of queueing a pass over its clients per read.
    func publish(_ events: [GatewayEvent]) {
        guard !events.isEmpty else { return }
        let (queues, toDrain) = state.withLock { state in
            for event in events { state.positions[event.stream.key] = event.id }
            var toDrain: [(ObjectIdentifier, any EventLoop)] = []
            for key in Array(state.loops.keys) {
                if state.loops[key]!.add(events) { toDrain.append((key, state.loops[key]!.loop)) }
            }
            return (state.queues, toDrain)
        }
        for (key, loop) in toDrain {
            loop.execute { self.drain(key) }
        }
        var overflowed: [Int] = []
        for (id, client) in queues {
            for event in events where client.filter.wants(event) {
                if case .dropped = client.outbox.yield(.event(event)) {
                    overflowed.append(id)
                    break
                }
            }
        }
        drop(overflowed, .slow)
    }

    /// On the loop `key`: hands its clients everything published to it since the last drain. A client that joined
    /// after some of it was published skips that part (it starts after the positions it registered at).
    private func drain(_ key: ObjectIdentifier) {
        let (events, feeds) = state.withLock { state in state.loops[key]?.take() ?? ([], [:]) }
        guard !events.isEmpty else { return }
        let batch = FanoutBatch(events)
        for feed in feeds.values { feed.deliver(batch) }
    }

    /// Ends clients for `reason`: no more is published to them, and a queue client's session is told (a WebSocket
    /// client's feed has ended it already).
    private func drop(_ ids: [Int], _ reason: Ending) {
        guard !ids.isEmpty else { return }
        let dropped = state.withLock { state in
            ids.compactMap { id -> Int? in
                guard let client = state.clients[id] else { return nil }
                Self.stopPublishing(to: id, client, in: &state)
                client.end?.yield(reason)
                return id
            }
        }
        if reason == .slow { metrics.slowClientsDropped.add(dropped.count, ordering: .relaxed) }
    }
}

/// What one client receives: its database's streams, the relations it may read and asked for, the channels it
/// asked for.
struct ClientFilter: Sendable, Hashable {
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
