import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// One SSE client of `GET /events?token=…&channels=…&rel=…`: refused with an HTTP status and GC2's error JSON,
/// or answered with `text/event-stream`, each message an event whose ID is the client's cursor, so that a
/// browser's `EventSource` resumes by itself (`Last-Event-ID`, or `since=`) without a gap or a repeat.
struct EventStreamSession {
    let gateway: Gateway

    func respond(to request: Request, context: ServeRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        var token = query["token"].map(String.init)
        if token == nil, let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") {
            token = String(authorization.dropFirst("Bearer ".count))
        }
        let since = request.headers[HTTPField.Name("Last-Event-ID")!] ?? query["since"].map(String.init)
        let admitted: Gateway.Admitted
        switch await gateway.admit(
            token: token, rel: query["rel"].map(String.init), channels: query["channels"].map(String.init), since: since)
        {
        case .failure(let error):
            return Response(
                status: error.status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: error.json)))
        case .success(let value):
            admitted = value
        }
        guard gateway.hub.count < gateway.configuration.clients.maxConnections else {
            gateway.metrics.connectionsRefused.add(1, ordering: .relaxed)
            let error = GatewayError.tooManyConnections
            return Response(
                status: error.status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: error.json)))
        }
        let gateway = self.gateway
        let channel = context.channel
        let headers: HTTPFields = [
            .contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no",
        ]
        return Response(
            status: .ok, headers: headers,
            body: .init { writer in
                let streams = gateway.configuration.streamKeys
                // Keep-alive comments come from the hub's clock through the client's own queue, so they never overtake a
                // message.
                let result: Void? = try await gateway.hub.withSubscription(
                    admitted.filter, expiresAt: admitted.identity.expiresAt,
                    keepaliveEvery: .seconds(gateway.configuration.clients.pingInterval)
                ) { subscription in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        // A client dropped for slowness, or whose token expired, loses its socket: a write stuck on
                        // it then fails and the response ends. EventSource reconnects with Last-Event-ID.
                        group.addTask {
                            for await reason in subscription.ended {
                                switch reason {
                                case .slow: gateway.logger.info("SSE client too slow; disconnecting")
                                case .expired: break  // counted by the hub
                                }
                                try? await channel.close()
                            }
                        }
                        // A client that goes away ends its feed at once (not at the next keep-alive's failed write):
                        // its FIN closes the channel (EventStreamEndHandler), which ends the feed.
                        try await EventStreamEndHandler.install(on: channel)
                        group.addTask {
                            let (closed, signal) = AsyncStream<Void>.makeStream()
                            channel.closeFuture.whenComplete { _ in signal.finish() }
                            for await _ in closed {}  // ends when the channel closes, or when the group is cancelled
                            if !Task.isCancelled { subscription.outbox.finish() }
                        }
                        try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
                        try await gateway.feed.run(subscription, filter: admitted.filter, since: admitted.since) { delivery in
                            switch delivery {
                            case .message(let message, let cursor):
                                try await writer.write(ByteBuffer(string: Self.event(message.text, id: cursor.text(streams: streams))))
                                gateway.metrics.messagesSent.add(1, ordering: .relaxed)
                            case .gap(let text, let cursor):
                                try await writer.write(ByteBuffer(string: Self.event(text, id: cursor.text(streams: streams), name: "gap")))
                            case .keepalive:
                                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                            }
                        }
                        group.cancelAll()
                    }
                }
                if result == nil {
                    try await writer.write(ByteBuffer(string: Self.event(GatewayError.tooManyConnections.json, id: nil, name: "error")))
                }
                try await writer.finish(nil)
            })
    }

    /// One SSE event: `id:`, `event:` when not the default, and the JSON on one `data:` line (JSON text holds no
    /// raw newline).
    static func event(_ json: String, id: String?, name: String? = nil) -> String {
        var text = ""
        if let id { text += "id: \(id)\n" }
        if let name { text += "event: \(name)\n" }
        return text + "data: \(json)\n\n"
    }
}
