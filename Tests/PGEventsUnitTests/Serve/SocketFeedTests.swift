import NIOCore
import NIOEmbedded
import NIOWebSocket
import Synchronization
import Testing

@testable import PGEventsServe

/// The WebSocket feed's logic on NIO's in-memory channel (its event loop runs what is handed to it at once): what it writes, in which order, what it skips, what it
/// holds while a replay runs, and when it gives up on a client.
@Suite("serve: a WebSocket client's feed")
struct SocketFeedTests {
    let stream = ServeConfiguration.Stream(key: "changes", format: .raw)
    let other = ServeConfiguration.Stream(key: "orders", database: "shop", format: .raw)

    func event(_ n: UInt64, _ stream: ServeConfiguration.Stream? = nil, channel: String = "changes") -> GatewayEvent {
        let stream = stream ?? self.stream
        return GatewayEvent(
            entry: StreamEntry(
                stream: stream.key, id: StreamID(milliseconds: n, sequence: 0), fields: ["channel": channel, "payload": #"{"n":\#(n)}"#]),
            stream: stream)
    }

    /// What the feed reported.
    final class Counts: Sendable {
        let overflows = Atomic(0)
        let sent = Atomic(0)
    }

    /// The `n` of every text frame the channel was given, in order.
    static func written(_ channel: NIOAsyncTestingChannel) async throws -> [Int] {
        var numbers: [Int] = []
        while let frame = try await channel.readOutbound(as: WebSocketFrame.self) {
            #expect(frame.opcode == .text && frame.fin, "only text frames: got \(frame.opcode)")
            let message = JSONValue.parse(String(buffer: frame.unmaskedData))
            numbers.append(try #require(message?["payload"]?["n"]?.scalarText.flatMap { Int($0) }))
        }
        return numbers
    }

    func makeFeed(
        _ channel: NIOAsyncTestingChannel, filter: ClientFilter? = nil, positions: [String: StreamID] = [:], replaying: Bool = false,
        capacity: Int = 8, counts: Counts = Counts()
    ) -> SocketFeed {
        SocketFeed(
            channel: channel, filter: filter ?? ClientFilter(database: "app", relations: nil, channels: nil), positions: positions,
            replaying: replaying, capacity: capacity,
            farewell: { ending in
                ending == .slow
                    ? SocketFeed.Farewell(code: .unknown(4000), reason: "slow_client")
                    : SocketFeed.Farewell(
                        message: #"{"type":"error","error":"token_expired"}"#, code: .unknown(4001), reason: "token_expired")
            },
            onOverflow: { counts.overflows.add(1, ordering: .relaxed) },
            onSent: { counts.sent.add($0, ordering: .relaxed) })
    }

    /// Hands `events` to the feed on its event loop, as the hub does.
    func deliver(_ feed: SocketFeed, _ events: [GatewayEvent]) async throws {
        try await feed.eventLoop.submit { feed.deliver(FanoutBatch(events)) }.get()
    }

    @Test("live batches are written in order, once each: entries at or before the start, and repeats, are skipped")
    func writesInOrder() async throws {
        let channel = NIOAsyncTestingChannel()
        let counts = Counts()
        let feed = makeFeed(channel, positions: ["changes": StreamID(milliseconds: 2, sequence: 0)], counts: counts)
        try await deliver(feed, [event(1), event(2), event(3)])
        try await deliver(feed, [event(3), event(4), event(5)])
        #expect(try await Self.written(channel) == [3, 4, 5])
        #expect(counts.sent.load(ordering: .relaxed) == 3)
    }

    @Test("a client gets only its database's streams and the channels it asked for")
    func filters() async throws {
        let channel = NIOAsyncTestingChannel()
        let filter = ClientFilter(database: "app", relations: nil, channels: ["changes"])
        let feed = makeFeed(channel, filter: filter)
        try await deliver(feed, [event(1), event(2, other), event(3, channel: "audit"), event(4)])
        #expect(try await Self.written(channel) == [1, 4])
    }

    @Test("while replaying, live batches are held and follow the replay at goLive; more than the capacity held ends the client")
    func holdsWhileReplaying() async throws {
        let channel = NIOAsyncTestingChannel()
        let feed = makeFeed(channel, replaying: true)
        try await deliver(feed, [event(1), event(2)])
        try await deliver(feed, [event(3)])
        #expect(try await Self.written(channel) == [])
        try await feed.goLive()
        try await deliver(feed, [event(4)])
        #expect(try await Self.written(channel) == [1, 2, 3, 4])

        let slowChannel = NIOAsyncTestingChannel()
        let counts = Counts()
        let slow = makeFeed(slowChannel, replaying: true, capacity: 4, counts: counts)
        try await deliver(slow, (1...3).map { event($0) })
        #expect(counts.overflows.load(ordering: .relaxed) == 0)
        try await deliver(slow, (4...5).map { event($0) })
        try await deliver(slow, [event(6)])
        #expect(counts.overflows.load(ordering: .relaxed) == 1)
        try await slow.goLive()
        let close = try #require(try await slowChannel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose)
        var data = close.unmaskedData
        #expect(data.readWebSocketErrorCode() == .unknown(4000))
        #expect(data.readString(length: data.readableBytes) == "slow_client")
        #expect(try await Self.written(slowChannel) == [], "nothing is written to a client that was ended but its close")
    }

    @Test("an ending writes the farewell behind what the client has not read, and nothing after it")
    func endsWithFarewell() async throws {
        let channel = NIOAsyncTestingChannel()
        let feed = makeFeed(channel)
        try await deliver(feed, [event(1)])
        try await feed.eventLoop.submit { feed.end(ClientHub.Ending.expired) }.get()
        try await deliver(feed, [event(2)])
        let first = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        #expect(String(buffer: first.unmaskedData).contains(#""n":1"#))
        let message = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        #expect(message.opcode == .text && String(buffer: message.unmaskedData).contains("token_expired"))
        let close = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose)
        var data = close.unmaskedData
        #expect(data.readWebSocketErrorCode() == .unknown(4001))
        #expect(try await channel.readOutbound(as: WebSocketFrame.self) == nil, "nothing after the close frame")
    }

    @Test("after stop, nothing more is written")
    func stops() async throws {
        let channel = NIOAsyncTestingChannel()
        let feed = makeFeed(channel)
        try await deliver(feed, [event(1)])
        await feed.stop()
        try await deliver(feed, [event(2)])
        #expect(try await Self.written(channel) == [1])
    }

    @Test("the hub publishes to its WebSocket clients on their event loop, and refuses clients beyond max_connections")
    func hubPublishes() async throws {
        let hub = ClientHub(capacity: 8, maxConnections: 1, metrics: GatewayMetrics())
        let farewell: @Sendable (ClientHub.Ending) -> SocketFeed.Farewell = { _ in SocketFeed.Farewell(code: .normalClosure, reason: "") }
        let channel = NIOAsyncTestingChannel()
        let filter = ClientFilter(database: "app", relations: nil, channels: nil)
        let other = NIOAsyncTestingChannel()
        let result: Result<[Int], any Error>? = await hub.withSocketFeed(
            filter, channel: channel, since: nil, expiresAt: .distantFuture, farewell: farewell
        ) { _ in
            let refused: Void? = await hub.withSocketFeed(filter, channel: other, since: nil, expiresAt: .distantFuture, farewell: farewell)
            { _ in }
            #expect(refused == nil)
            hub.publish([event(1), event(2)])
            hub.publish([event(3)])
            do {
                try await channel.eventLoop.submit {}.get()  // behind the hub's two
                return .success(try await Self.written(channel))
            } catch {
                return .failure(error)
            }
        }
        #expect(try result?.get() == [1, 2, 3])
        #expect(hub.count == 0)
        #expect(hub.metrics.messagesSent.load(ordering: .relaxed) == 3)
        #expect(hub.metrics.connectionsRefused.load(ordering: .relaxed) == 1)
    }
}
