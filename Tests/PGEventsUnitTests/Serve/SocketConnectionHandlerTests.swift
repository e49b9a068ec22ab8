import NIOCore
import NIOEmbedded
import NIOWebSocket
import Synchronization
import Testing

@testable import PGEventsServe

/// The WebSocket protocol of a `/broadcast` connection on NIO's in-memory channel, with its clock: keep-alive pings,
/// the closing handshake both ways, the shutdown's close, and what reaches the client's inbox.
@Suite("serve: a WebSocket connection's protocol handler")
struct SocketConnectionHandlerTests {
    /// What the handler handed on, and whether the connection closed.
    final class Seen: Sendable {
        let messages = Mutex<[SocketConnectionHandler.Message]>([])
        let closes = Atomic(0)
    }

    /// A connected channel with the handler (pings every 5 s, 10 s to answer a close).
    func makeChannel(_ seen: Seen, pingInterval: TimeAmount = .seconds(5)) async throws -> NIOAsyncTestingChannel {
        let channel = NIOAsyncTestingChannel()
        try await channel.pipeline.addHandler(
            SocketConnectionHandler(
                settings: .init(pingInterval: pingInterval, closeTimeout: .seconds(10)),
                onMessage: { message in seen.messages.withLock { $0.append(message) } },
                onClose: { seen.closes.add(1, ordering: .relaxed) }))
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080))
        return channel
    }

    static func frame(_ opcode: WebSocketOpcode, _ text: String = "") -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, data: ByteBuffer(string: text))
    }

    static func closeFrame(_ code: WebSocketErrorCode) -> WebSocketFrame {
        SocketConnectionHandler.closeFrame(code: code, reason: nil, allocator: ByteBufferAllocator())
    }

    static func isClosed(_ channel: NIOAsyncTestingChannel) -> Bool {
        !channel.isActive
    }

    @Test("a ping every interval; a pong with its data keeps the connection, none by the next ping closes it with 1001")
    func keepAlive() async throws {
        let seen = Seen()
        let channel = try await makeChannel(seen)
        await channel.testingEventLoop.advanceTime(by: .seconds(5))
        let ping = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        #expect(ping.opcode == .ping)
        try await channel.writeInbound(WebSocketFrame(fin: true, opcode: .pong, data: ping.unmaskedData))
        await channel.testingEventLoop.advanceTime(by: .seconds(5))
        let second = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        #expect(second.opcode == .ping && second.unmaskedData != ping.unmaskedData, "a new ping, with new data")
        // A pong with the wrong data does not count.
        try await channel.writeInbound(WebSocketFrame(fin: true, opcode: .pong, data: ping.unmaskedData))
        #expect(!Self.isClosed(channel))
        await channel.testingEventLoop.advanceTime(by: .seconds(5))
        let close = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose)
        var data = close.unmaskedData
        #expect(data.readWebSocketErrorCode() == .goingAway)
        #expect(data.readString(length: data.readableBytes) == "Ping timeout")
        #expect(Self.isClosed(channel))
        #expect(seen.closes.load(ordering: .relaxed) == 1)
    }

    @Test("a client's ping is answered with a pong carrying its data")
    func answersPing() async throws {
        let channel = try await makeChannel(Seen())
        try await channel.writeInbound(Self.frame(.ping, "are you there"))
        let pong = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong && String(buffer: pong.unmaskedData) == "are you there")
    }

    @Test("text and binary messages reach the inbox in order, unmasked")
    func messages() async throws {
        let seen = Seen()
        let channel = try await makeChannel(seen)
        let key = try #require(WebSocketMaskingKey([1, 2, 3, 4]))
        var masked = ByteBuffer(string: "SELECT 1")
        masked.webSocketMask(key)
        try await channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: masked))
        try await channel.writeInbound(Self.frame(.binary, "\u{1}"))
        try await channel.writeInbound(Self.frame(.text, "second"))
        #expect(seen.messages.withLock { $0 } == [.text("SELECT 1"), .binary, .text("second")])
    }

    @Test("a client's close is answered with its code, then the connection closes")
    func clientCloses() async throws {
        let seen = Seen()
        let channel = try await makeChannel(seen)
        try await channel.writeInbound(Self.closeFrame(.unknown(4100)))
        let answer = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        #expect(answer.opcode == .connectionClose)
        var data = answer.unmaskedData
        #expect(data.readWebSocketErrorCode() == .unknown(4100))
        #expect(Self.isClosed(channel))
        #expect(seen.closes.load(ordering: .relaxed) == 1)
    }

    @Test("after the gateway's close frame nothing more is written; the client's answer closes the connection")
    func gatewayCloses() async throws {
        let seen = Seen()
        let channel = try await makeChannel(seen)
        try await channel.writeAndFlush(Self.closeFrame(.unknown(4000)))
        _ = try await channel.readOutbound(as: WebSocketFrame.self)
        await #expect(throws: ChannelError.outputClosed) { try await channel.writeAndFlush(Self.frame(.text, "late")) }
        #expect(try await channel.readOutbound(as: WebSocketFrame.self) == nil)
        try await channel.writeInbound(Self.frame(.text, "ignored while closing"))
        #expect(seen.messages.withLock { $0 } == [])
        #expect(!Self.isClosed(channel))
        try await channel.writeInbound(Self.closeFrame(.unknown(4000)))
        #expect(Self.isClosed(channel))
    }

    @Test("a client that does not answer the gateway's close is disconnected after close_timeout, and is not pinged meanwhile")
    func closeTimeout() async throws {
        let channel = try await makeChannel(Seen(), pingInterval: .seconds(1))
        try await channel.writeAndFlush(Self.closeFrame(.unknown(4001)))
        _ = try await channel.readOutbound(as: WebSocketFrame.self)
        await channel.testingEventLoop.advanceTime(by: .seconds(9))
        #expect(!Self.isClosed(channel), "the client has close_timeout to read it")
        #expect(try await channel.readOutbound(as: WebSocketFrame.self) == nil, "no pings after the close")
        await channel.testingEventLoop.advanceTime(by: .seconds(2))
        #expect(Self.isClosed(channel))
    }

    @Test("a client that shuts its side without a close frame is disconnected")
    func inputClosed() async throws {
        let seen = Seen()
        let channel = try await makeChannel(seen)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        await channel.testingEventLoop.run()
        #expect(Self.isClosed(channel))
        #expect(seen.closes.load(ordering: .relaxed) == 1)
    }

    @Test("the server's graceful shutdown (quiesce) sends close 1000, once")
    func quiesce() async throws {
        let channel = try await makeChannel(Seen())
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        let close = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        var data = close.unmaskedData
        #expect(close.opcode == .connectionClose && data.readWebSocketErrorCode() == .normalClosure)
        #expect(try await channel.readOutbound(as: WebSocketFrame.self) == nil)
    }

    @Test("a fragmented message over the size limit closes the connection with 1009")
    func tooBig() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.pipeline.addHandlers(
            NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1024, maxAccumulatedFrameSize: 8),
            SocketConnectionHandler(settings: .init(pingInterval: .zero, closeTimeout: .seconds(10)), onMessage: { _ in }, onClose: {}))
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080))
        try await channel.writeInbound(WebSocketFrame(fin: false, opcode: .text, data: ByteBuffer(string: "12345")))
        try await channel.writeInbound(WebSocketFrame(fin: true, opcode: .continuation, data: ByteBuffer(string: "6789")))
        let close = try #require(try await channel.readOutbound(as: WebSocketFrame.self))
        var data = close.unmaskedData
        #expect(close.opcode == .connectionClose && data.readWebSocketErrorCode() == .messageTooLarge)
    }
}
