import NIOCore

/// Closes an SSE client's connection when the client shuts its side. The server's channels allow half-closure, so
/// a client's FIN does not close the channel, and the event stream's response never ends by itself: without this,
/// the gateway learned that the client was gone only when a keep-alive write failed, or not within 30 s on the
/// loaded machine. A browser's `EventSource` never half-closes a stream it still reads, so the end of its input is
/// the end of the client (as for a WebSocket client, ``SocketConnectionHandler``).
final class EventStreamEndHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Puts one at the head of `channel`'s pipeline, before the HTTP handlers see the event.
    static func install(on channel: any Channel) async throws {
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(EventStreamEndHandler(), position: .first)
        }.get()
    }
}
