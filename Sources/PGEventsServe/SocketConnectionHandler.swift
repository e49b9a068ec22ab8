import NIOCore
import NIOWebSocket

/// The WebSocket protocol of one `/broadcast` connection, on its event loop: pings and pongs, the closing
/// handshake, and the client's messages handed on as they come. Nothing here waits in a task, so an idle client
/// costs its channel and a timer, not a task with its stack (what a client cost when Hummingbird's WebSocket handler
/// read its frames).
///
/// - **Keep-alive**: a ping every `pingInterval`; a ping not answered by the next one closes the connection with
///   1001 "Ping timeout". A ping from the client is answered with a pong carrying its data.
/// - **Closing**: whoever writes a close frame through this channel (an ending from ``SocketFeed``, a refusal from
///   the session, the server's shutdown) starts the handshake: data frames after it are dropped, and the connection
///   is closed when the client answers with its close frame, or after `closeTimeout`. A client's close frame is
///   answered with its code, then the connection is closed.
/// - **Messages**: whole text and binary messages (fragments are joined by `NIOWebSocketFrameAggregator` in front
///   of this handler) go to `onMessage`. A message over the size limit closes the connection with 1009; frames that
///   break the protocol, with 1002.
/// - **Shutdown**: on `ChannelShouldQuiesceEvent` (the server stopping gracefully), a close frame 1000. A client
///   that shuts its side of the connection without a close frame is disconnected.
final class SocketConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// A whole message from the client.
    enum Message: Sendable, Equatable {
        case text(String)
        case binary
    }

    struct Settings: Sendable {
        var pingInterval: TimeAmount
        var closeTimeout: TimeAmount
    }

    private let settings: Settings
    private let onMessage: (Message) -> Void
    private let onClose: () -> Void

    // On the event loop only.
    private var closeSent = false
    private var closeDeadline: Scheduled<Void>?
    private var pings: RepeatedTask?
    /// The payload of the ping not answered yet; nil when none is outstanding.
    private var awaitedPong: UInt64?
    private var nextPing: UInt64 = 0

    /// `onMessage` is given each message, and `onClose` is called once when the connection is gone; both on the
    /// event loop.
    init(settings: Settings, onMessage: @escaping (Message) -> Void, onClose: @escaping () -> Void) {
        self.settings = settings
        self.onMessage = onMessage
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let interval = settings.pingInterval
        guard interval > .zero else { return }
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        pings = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loopBound.value.handler.ping(context: loopBound.value.context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimers()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimers()
        onClose()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            guard !closeSent else { return }
            onMessage(.text(String(buffer: frame.unmaskedData)))
        case .binary:
            guard !closeSent else { return }
            onMessage(.binary)
        case .ping:
            guard !closeSent else { return }
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            var data = frame.unmaskedData
            if let payload = data.readInteger(as: UInt64.self), payload == awaitedPong { awaitedPong = nil }
        case .connectionClose:
            receivedClose(context: context, frame: frame)
        default:
            close(context: context, code: .protocolError, reason: "unexpected frame")
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        if closeSent {
            // Nothing may follow a close frame.
            promise?.fail(ChannelError.outputClosed)
            return
        }
        if frame.opcode == .connectionClose { startClosing(context: context) }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            close(context: context, code: .normalClosure, reason: nil)
        case ChannelEvent.inputClosed:
            // The client closed its side without a close frame (the server's channels allow half-closure): nothing
            // more will come, and nobody will read what is written.
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case is NIOWebSocketError:
            // WebSocketProtocolErrorHandler, in front of this one, has written the close frame and closes.
            return
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge, NIOWebSocketFrameAggregator.Error.tooManyFragments:
            close(context: context, code: .messageTooLarge, reason: "message too big")
        case is NIOWebSocketFrameAggregator.Error:
            close(context: context, code: .protocolError, reason: "invalid fragments")
        default:
            context.close(promise: nil)
        }
    }

    /// Writes a close frame (starting the handshake) unless one was written already.
    private func close(context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String?) {
        guard !closeSent else { return }
        startClosing(context: context)
        context.writeAndFlush(
            wrapOutboundOut(Self.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)), promise: nil)
    }

    private func startClosing(context: ChannelHandlerContext) {
        closeSent = true
        stopPings()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        closeDeadline = context.eventLoop.scheduleTask(in: settings.closeTimeout) { loopBound.value.close(promise: nil) }
    }

    private func receivedClose(context: ChannelHandlerContext, frame: WebSocketFrame) {
        guard !closeSent else {
            // The client answered ours: the handshake is done.
            context.close(promise: nil)
            return
        }
        // Answer with the client's code (none when it sent none), then close once that is written.
        var data = frame.unmaskedData
        let code = data.readWebSocketErrorCode()
        var answer = context.channel.allocator.buffer(capacity: 2)
        if let code { answer.write(webSocketErrorCode: code) }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: answer))).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }

    private func ping(context: ChannelHandlerContext) {
        guard !closeSent else { return }
        guard awaitedPong == nil else {
            close(context: context, code: .goingAway, reason: "Ping timeout")
            context.close(promise: nil)
            return
        }
        nextPing &+= 1
        awaitedPong = nextPing
        var data = context.channel.allocator.buffer(capacity: 8)
        data.writeInteger(nextPing)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: data)), promise: nil)
    }

    private func stopPings() {
        pings?.cancel()
        pings = nil
    }

    private func stopTimers() {
        stopPings()
        closeDeadline?.cancel()
        closeDeadline = nil
    }

    /// A close frame with `code` and, when given, `reason`.
    static func closeFrame(code: WebSocketErrorCode, reason: String?, allocator: ByteBufferAllocator) -> WebSocketFrame {
        var data = allocator.buffer(capacity: 2 + (reason?.utf8.count ?? 0))
        data.write(webSocketErrorCode: code)
        if let reason { data.writeString(reason) }
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }
}
