import Foundation
import Hummingbird
import HummingbirdWebSocket
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

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: WebSocketRouterContext<ServeRequestContext>)
        async throws
    {
        let query = context.request.uri.queryParameters
        let admitted: Gateway.Admitted
        switch await gateway.admit(
            token: query["token"].map(String.init), rel: query["rel"].map(String.init), channels: query["channels"].map(String.init),
            since: query["since"].map(String.init))
        {
        case .failure(let error):
            try await outbound.write(.text(error.json))
            try await outbound.close(CloseCode.refused, reason: error.code)
            return
        case .success(let value):
            admitted = value
        }
        let gateway = self.gateway
        let identity = admitted.identity
        let channel = context.requestContext.channel
        let farewell: @Sendable (ClientHub.Ending) -> SocketFeed.Farewell = { Self.farewell($0, identity: identity, gateway: gateway) }
        let subscribed: Void? = try await gateway.hub.withSocketFeed(
            admitted.filter, channel: channel, since: admitted.since?.positions, expiresAt: identity.expiresAt,
            closeTimeout: .milliseconds(Int64(gateway.configuration.clients.closeTimeout * 1000)), farewell: farewell
        ) { subscription in
            // Live messages, and the hub's ending of this client (too slow, token expired), go from the hub to the
            // channel on its event loop (SocketFeed). This task only reads what the client sends (and, resuming,
            // replays what it missed), until the connection closes.
            if let since = admitted.since {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        await replay(
                            since: since, subscription: subscription, filter: admitted.filter, outbound: outbound, channel: channel)
                    }
                    try await readMessages(inbound: inbound, outbound: outbound, identity: identity)
                    group.cancelAll()
                }
            } else {
                try await readMessages(inbound: inbound, outbound: outbound, identity: identity)
            }
            // Nothing more from the hub: the close frame Hummingbird writes next is the last.
            await subscription.feed.stop()
        }
        if subscribed == nil {
            try await outbound.write(.text(GatewayError.tooManyConnections.json))
            try await outbound.close(.unknown(1013), reason: GatewayError.tooManyConnections.code)
        }
    }

    /// What a client the hub ends is told, and the counting and logging of it.
    static func farewell(_ ending: ClientHub.Ending, identity: TokenIdentity, gateway: Gateway) -> SocketFeed.Farewell {
        switch ending {
        case .slow:
            gateway.logger.info("client too slow; disconnecting")
            return SocketFeed.Farewell(code: CloseCode.slowClient, reason: GatewayError.slowClient.code)
        case .expired:
            gateway.metrics.tokensExpired.add(1, ordering: .relaxed)
            return SocketFeed.Farewell(
                message: GatewayError.tokenExpired(identity).json, code: CloseCode.tokenExpired, reason: "token_expired")
        }
    }

    /// Writes what the client missed since `since` up to where its live feed starts, then lets the feed go live.
    /// If the streams cannot be read, or the client is gone, the connection is closed: the client can resume again.
    private func replay(
        since: StreamCursor, subscription: ClientHub.SocketSubscription, filter: ClientFilter, outbound: WebSocketOutboundWriter,
        channel: any Channel
    ) async {
        let gateway = self.gateway
        do {
            try await gateway.feed.replay(since: since, through: subscription.positions, filter: filter) { delivery in
                switch delivery {
                case .message(let message, _):
                    try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: message.bytes)))
                case .gap(let text, _):
                    try await outbound.write(.text(text))
                case .keepalive:
                    return
                }
                gateway.metrics.messagesSent.add(1, ordering: .relaxed)
            }
            // Every replayed frame is now with the channel's event loop: the held live batches go out behind them.
            try await subscription.feed.goLive()
        } catch {
            guard !Task.isCancelled else { return }
            gateway.logger.warning("replay to a resuming client failed; closing it", metadata: ["error": "\(error)"])
            try? await channel.close()
        }
    }

    /// Answers the client's text messages (SQL when enabled) until it closes or breaks the size limit. The
    /// statements run on a task of their own, one at a time and answered in order, so this loop goes on reading
    /// while one runs: pongs are seen and pings answered, however long a statement takes.
    private func readMessages(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, identity: TokenIdentity) async throws {
        let gateway = self.gateway
        guard gateway.configuration.sql.enabled else {
            // Nothing runs, so every message is answered at once, in order, from this loop: no statement task and
            // no queue per client (most gateways hold thousands of clients that never send anything).
            for try await message in inbound.messages(maxSize: gateway.configuration.clients.maxMessageBytes) {
                if case .text(let text) = message {
                    try await outbound.write(.text(await gateway.sql.answer(text, identity: identity)))
                } else {
                    try await outbound.write(
                        .text(GatewayError(code: "unsupported", message: "Binary messages are not accepted", status: .badRequest).json))
                }
            }
            return
        }
        let queue = StatementQueue(capacity: gateway.configuration.sql.maxQueued)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await queue.run { item in
                    switch item {
                    case .statement(let text):
                        try await outbound.write(.text(await gateway.sql.answer(text, identity: identity)))
                    case .binary:
                        try await outbound.write(
                            .text(GatewayError(code: "unsupported", message: "Binary messages are not accepted", status: .badRequest).json))
                    case .refused(let count):
                        let answer = SQLRunner.failure(
                            "\(gateway.configuration.sql.maxQueued) statements are waiting to run on this connection; send the next when one is answered"
                        )
                        for _ in 0..<count { try await outbound.write(.text(answer)) }
                    }
                }
            }
            defer { group.cancelAll() }  // the client left (or broke a limit): its unanswered statements are dropped
            for try await message in inbound.messages(maxSize: gateway.configuration.clients.maxMessageBytes) {
                if case .text(let text) = message {
                    queue.add(.statement(text))
                } else {
                    queue.add(.binary)
                }
            }
        }
    }
}
