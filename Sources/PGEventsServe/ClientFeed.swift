/// One SSE client's messages in order: what it missed (from `since`, read from the streams), then the live feed,
/// with no gap between the two and no entry twice. The live feed starts right after the positions its
/// subscription was registered at, and the replay ends exactly there; an entry at or before what was already
/// sent for its stream is skipped all the same. A WebSocket client's replay is ``replay(since:through:filter:send:)``
/// too; its live feed is a ``SocketFeed``.
struct ClientFeed: Sendable {
    let history: StreamHistory
    let streamKeys: [String]

    /// What the feed hands to the connection.
    enum Delivery: Sendable {
        /// A message (text and frame bytes, shared by the clients it is for), and the client's cursor once it has
        /// it (the SSE event ID).
        case message(GatewayEvent.Rendering, cursor: StreamCursor)
        /// Entries were trimmed before the client came back: the message explains.
        case gap(String, cursor: StreamCursor)
        case keepalive
    }

    /// Runs until the subscription's queue ends (the client was dropped, or the hub is going away).
    func run(
        _ subscription: ClientHub.Subscription, filter: ClientFilter, since: StreamCursor?,
        send: (Delivery) async throws -> Void
    ) async throws {
        var cursor = StreamCursor(subscription.positions)
        if let since {
            try await replay(since: since, through: subscription.positions, filter: filter, send: send)
            // Streams the client named that are already past the live start keep the client's position there.
            cursor.positions.merge(since.positions) { live, asked in max(live, asked) }
        }
        for await outgoing in subscription.events {
            switch outgoing {
            case .keepalive:
                try await send(.keepalive)
            case .event(let event):
                if let last = cursor.positions[event.stream.key], event.id <= last { continue }
                cursor.positions[event.stream.key] = event.id
                guard let message = event.rendering(database: filter.database, relations: filter.relations) else { continue }
                try await send(.message(message, cursor: cursor))
            }
        }
    }

    /// Sends what the client missed: the entries after `since` up to the live start `through`, or a gap notice
    /// where the stream no longer holds `since`.
    func replay(
        since: StreamCursor, through live: [String: StreamID], filter: ClientFilter, send: (Delivery) async throws -> Void
    ) async throws {
        let cursor = StreamCursor(live)
        var sent = since.positions
        try await history.replay(since: since.positions, through: live) { replayed in
            switch replayed {
            case .event(let event):
                sent[event.stream.key] = event.id
                var at = cursor
                at.positions.merge(sent) { _, new in new }
                guard filter.wants(event), let message = event.rendering(database: filter.database, relations: filter.relations) else {
                    return
                }
                try await send(.message(message, cursor: at))
            case .gap(let stream, let after):
                let notice = JSONValue.object([
                    "type": .string("gap"), "stream": .string(stream), "since": .string(after.description),
                    "message": .string(
                        "\(stream) no longer holds \(after) (trimmed by its MAXLEN): entries after it may be lost; the oldest kept follow"
                    ),
                ])
                try await send(.gap(notice.text, cursor: cursor))
            }
        }
    }
}
