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

    private enum Ending: Sendable {
        case clientLeft
        case slow
        case expired
        case feedEnded
        /// The client broke the protocol or the size limit: Hummingbird closes with the code the error carries.
        case inboundFailed(any Error)
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
        let channel = context.requestContext.channel
        let subscribed: Void? = try await gateway.hub.withSubscription(admitted.filter, expiresAt: admitted.identity.expiresAt) {
            subscription in
            let ending = await withTaskGroup(of: Ending.self) { group in
                group.addTask {
                    do {
                        try await gateway.feed.run(subscription, filter: admitted.filter, since: admitted.since) { delivery in
                            switch delivery {
                            case .message(let message, _):
                                // The frame's bytes are the event's, shared: nothing is copied per client.
                                try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: message.bytes)))
                                gateway.metrics.messagesSent.add(1, ordering: .relaxed)
                            case .gap(let text, _):
                                try await outbound.write(.text(text))
                                gateway.metrics.messagesSent.add(1, ordering: .relaxed)
                            case .keepalive:
                                break  // WebSocket pings are Hummingbird's (autoPing)
                            }
                        }
                    } catch {
                        return .clientLeft  // a write failed: the connection is gone
                    }
                    return .feedEnded
                }
                // The hub ends a client that is too slow or whose token expired (its clock: no timer per client).
                group.addTask {
                    for await reason in subscription.ended {
                        switch reason {
                        case .slow: return .slow
                        case .expired: return .expired
                        }
                    }
                    return .feedEnded
                }
                group.addTask {
                    do {
                        try await readMessages(inbound: inbound, outbound: outbound, identity: admitted.identity)
                    } catch {
                        return .inboundFailed(error)
                    }
                    return .clientLeft
                }
                let first = await group.next() ?? .clientLeft
                if case .slow = first {
                    // The feed task is most likely stuck writing to this client: close the socket under it.
                    await closeSlowClient(outbound: outbound, channel: channel)
                }
                group.cancelAll()
                return first
            }
            switch ending {
            case .expired:
                gateway.metrics.tokensExpired.add(1, ordering: .relaxed)
                try? await outbound.write(.text(GatewayError.tokenExpired(admitted.identity).json))
                try? await outbound.close(CloseCode.tokenExpired, reason: "token_expired")
            case .feedEnded:
                try? await outbound.close(.goingAway, reason: "server stopping")
            case .inboundFailed(let error):
                throw error
            case .clientLeft, .slow:
                break
            }
        }
        if subscribed == nil {
            try await outbound.write(.text(GatewayError.tooManyConnections.json))
            try await outbound.close(.unknown(1013), reason: GatewayError.tooManyConnections.code)
        }
    }

    /// Sends the close frame with code 4000 behind what is already queued for the client, waits up to
    /// `clients.close_timeout` for it to go out, and closes the connection either way.
    private func closeSlowClient(outbound: WebSocketOutboundWriter, channel: any Channel) async {
        gateway.logger.info("client too slow; disconnecting")
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await outbound.close(CloseCode.slowClient, reason: GatewayError.slowClient.code) }
            group.addTask { try? await Task.sleep(for: .seconds(gateway.configuration.clients.closeTimeout)) }
            await group.next()
            group.cancelAll()
        }
        try? await channel.close()
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
