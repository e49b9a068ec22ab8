import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOWebSocket

/// One WebSocket client of `GET /broadcast?token=…&rel=…&since=…`: refused with GC2's error message and a close,
/// or fed its messages until it leaves, its token expires, or it falls behind.
struct BroadcastSession {
    let gateway: Gateway

    /// Close codes of the gateway's own (4000–4999 are for applications).
    enum CloseCode {
        /// The client's queue overflowed.
        static let slowClient = WebSocketErrorCode.unknown(4000)
        /// The token expired.
        static let tokenExpired = WebSocketErrorCode.unknown(4001)
        /// A check failed (the error message says which).
        static let refused = WebSocketErrorCode.policyViolation
    }

    /// Admits the client of `channel` (upgraded on `uri`) and feeds it until its connection closes. Once it is
    /// admitted, live messages and the hub's ending of it (too slow, token expired) go from the hub to the channel
    /// on its event loop (``SocketFeed``), and its messages are taken there too (``SocketConnectionHandler``): this
    /// task replays what a resuming client missed, runs its SQL when that is enabled, and otherwise only waits for
    /// the connection to close.
    func run(channel: any Channel, uri: URI, inbox: BroadcastInbox) async {
        let query = uri.queryParameters
        let (token, rel, channels, since) = (
            query["token"].map(String.init), query["rel"].map(String.init), query["channels"].map(String.init),
            query["since"].map(String.init)
        )
        let gateway = self.gateway
        // Admission (the token, the relation checks in PostgreSQL) runs in a child task: a task keeps the memory its
        // deepest call needed for as long as it lives, and this one lives as long as the connection.
        let admission = await withTaskGroup(of: Result<Gateway.Admitted, GatewayError>.self) { group in
            group.addTask { await gateway.admit(token: token, rel: rel, channels: channels, since: since) }
            return await group.next() ?? .failure(.unavailable)
        }
        let admitted: Gateway.Admitted
        switch admission {
        case .failure(let error):
            await refuse(channel, error, code: CloseCode.refused)
            return
        case .success(let value):
            admitted = value
        }
        let identity = admitted.identity
        let farewell: @Sendable (ClientHub.Ending) -> SocketFeed.Farewell = { Self.farewell($0, identity: identity, gateway: gateway) }
        let subscribed: Void? = await gateway.hub.withSocketFeed(
            admitted.filter, channel: channel, since: admitted.since?.positions, expiresAt: identity.expiresAt, farewell: farewell
        ) { subscription in
            if let since = admitted.since {
                await replay(since: since, subscription: subscription, filter: admitted.filter, channel: channel)
            }
            if let statements = inbox.statements {
                do {
                    try await answer(statements, channel: channel, identity: identity)
                } catch {
                    channel.close(promise: nil)
                }
            }
            await Self.untilClosed(channel)
        }
        if subscribed == nil {
            await refuse(channel, .tooManyConnections, code: .unknown(1013))
        }
    }

    /// Tells the client why it is refused (GC2's error message), closes with `code`, and waits for the connection
    /// to close (the client's close frame, or the handler's `close_timeout`).
    private func refuse(_ channel: any Channel, _ error: GatewayError, code: WebSocketErrorCode) async {
        channel.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: error.json)), promise: nil)
        channel.writeAndFlush(
            SocketConnectionHandler.closeFrame(code: code, reason: error.code, allocator: channel.allocator), promise: nil)
        await Self.untilClosed(channel)
    }

    /// Returns once `channel` is closed. Cancelling the task (the gateway stopping) closes the connection as the
    /// server's graceful shutdown does: close 1000, then the client's answer or `close_timeout`.
    private static func untilClosed(_ channel: any Channel) async {
        await withTaskCancellationHandler {
            try? await channel.closeFuture.get()
        } onCancel: {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// What a client the hub ends is told, and the counting and logging of it.
    static func farewell(_ ending: ClientHub.Ending, identity: TokenIdentity, gateway: Gateway) -> SocketFeed.Farewell {
        switch ending {
        case .slow:
            gateway.logger.info("client too slow; disconnecting")
            return SocketFeed.Farewell(code: CloseCode.slowClient, reason: GatewayError.slowClient.code)
        case .expired:  // counted by the hub
            return SocketFeed.Farewell(
                message: GatewayError.tokenExpired(identity).json, code: CloseCode.tokenExpired, reason: "token_expired")
        }
    }

    /// Writes what the client missed since `since` up to where its live feed starts, then lets the feed go live.
    /// If the streams cannot be read, or the client is gone, the connection is closed: the client can resume again.
    private func replay(since: StreamCursor, subscription: ClientHub.SocketSubscription, filter: ClientFilter, channel: any Channel) async {
        let gateway = self.gateway
        do {
            try await gateway.feed.replay(since: since, through: subscription.positions, filter: filter) { delivery in
                switch delivery {
                case .message(let message, _):
                    try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: message.bytes)).get()
                case .gap(let text, _):
                    try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))).get()
                case .keepalive:
                    return
                }
                gateway.metrics.messagesSent.add(1, ordering: .relaxed)
            }
            // Every replayed frame is now with the channel's event loop: the held live batches go out behind them.
            try await subscription.feed.goLive()
        } catch {
            gateway.logger.warning("replay to a resuming client failed; closing it", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
        }
    }

    /// Runs the client's statements one at a time, answering each in order, until the connection closes (or an
    /// answer cannot be written). What the client sent before it left is not run.
    private func answer(_ statements: StatementQueue, channel: any Channel, identity: TokenIdentity) async throws {
        let gateway = self.gateway
        try await statements.run { item in
            guard channel.isActive else { throw ChannelError.ioOnClosedChannel }
            let answers: [String]
            switch item {
            case .statement(let text):
                answers = [await gateway.sql.answer(text, identity: identity)]
            case .binary:
                answers = [BroadcastInbox.binaryRefused]
            case .refused(let count):
                let answer = SQLRunner.failure(
                    "\(gateway.configuration.sql.maxQueued) statements are waiting to run on this connection; send the next when one is answered"
                )
                answers = Array(repeating: answer, count: count)
            }
            for answer in answers {
                try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: answer))).get()
            }
        }
    }
}
