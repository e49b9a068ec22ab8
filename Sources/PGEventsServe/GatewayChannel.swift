import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The gateway's connections: HTTP/1.1 for its routes (Hummingbird's responder), upgraded to a WebSocket on
/// `GET /broadcast`. An upgraded connection is handled on its event loop (``SocketConnectionHandler`` for the
/// protocol, ``SocketFeed`` for the hub's messages) and by a ``BroadcastSession`` that admits the client and then
/// only waits for the connection to close, so that an idle client holds no task of its own beyond that shallow one.
/// (Hummingbird's WebSocket channel would read each client's frames through an async channel in a task with a
/// ping task beside it: about 20 KB of task memory per idle client, most of what a client cost.)
struct GatewayChannel: ServerChildChannel, HTTPChannelHandler {
    /// What the first request of a connection became.
    enum Connection: Sendable {
        /// A WebSocket on `/broadcast`: its channel, the upgrade request, and the client's messages.
        case broadcast(any Channel, HTTPRequestHead, BroadcastInbox)
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// An upgrade to anything else: answered with 400.
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let connection: EventLoopFuture<Connection>
        let channel: any Channel
    }

    static let broadcastPath = "/broadcast"

    let gateway: Gateway
    let responder: HTTPChannelHandler.Responder

    init(gateway: Gateway, responder: @escaping HTTPChannelHandler.Responder) {
        self.gateway = gateway
        self.responder = Self.redirectingLateUpgrades(responder)
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let gateway = self.gateway
            let clients = gateway.configuration.clients
            let upgradeAsked = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<Connection>(
                maxFrameSize: clients.maxMessageBytes,
                shouldUpgrade: { channel, head in
                    upgradeAsked.value = true
                    let isBroadcast = URI(head.uri).path == Self.broadcastPath
                    return channel.eventLoop.makeSucceededFuture(isBroadcast ? HTTPHeaders() : nil)
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        let inbox = BroadcastInbox(gateway: gateway, channel: channel)
                        let handler = SocketConnectionHandler(
                            settings: .init(
                                pingInterval: .milliseconds(Int64(clients.pingInterval * 1000)),
                                closeTimeout: .milliseconds(Int64(clients.closeTimeout * 1000))),
                            onMessage: inbox.receive, onClose: inbox.finish)
                        try channel.pipeline.syncOperations.addHandlers(
                            NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1024, maxAccumulatedFrameSize: clients.maxMessageBytes
                            ),
                            handler)
                        return Connection.broadcast(channel, head, inbox)
                    }
                })
            let upgrade = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        return upgradeAsked.value ? Connection.refusedUpgrade(http) : Connection.http(http)
                    }
                })
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<Connection>(upgradeConfiguration: upgrade)
            pipeline.enablePipelining = false  // requests are taken one at a time by the async channel
            pipeline.enableErrorHandling = false  // Hummingbird answers errors
            pipeline.enableResponseHeaderValidation = false  // HTTPTypes validates them
            let connection = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
            return Value(connection: connection, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.connection.get() {
            case .broadcast(let channel, let head, let inbox):
                await BroadcastSession(gateway: gateway).run(channel: channel, uri: URI(head.uri), inbox: inbox)
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refusedUpgrade(let http):
                try await http.executeThenClose { _, outbound in
                    try await outbound.write(
                        contentsOf: [
                            .head(HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])), .end(nil),
                        ])
                }
            }
        } catch let error as ChannelError where error == .inputClosed {
            logger.trace("connection closed before its first request")
        } catch {
            logger.debug("connection failed", metadata: ["error": "\(error)"])
        }
    }

    /// NIO upgrades only a connection's first request: a later request on a kept-alive connection that asks for a
    /// WebSocket is sent back to the same address with the connection closed, so the client upgrades on a new one.
    private static func redirectingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        struct ClosingAfterRedirect: Error {}
        return { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                try await responder(request, writer, channel)
                return
            }
            let location = request.uri.query.map { "\(request.uri.path)?\($0)" } ?? request.uri.path
            try await writer.writeResponse(
                HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location]))
            throw ClosingAfterRedirect()
        }
    }
}
