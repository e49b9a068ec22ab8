import NIOCore

/// The events one event loop hands to its WebSocket clients in one go, with each client filter's frames worked
/// out once for every client that has that filter (most gateways have a handful of filters and thousands of
/// clients). Made and used on one event loop, within one pass over its clients.
final class FanoutBatch {
    /// One message ready to write: where it is in its stream, and its WebSocket frame's payload (shared bytes).
    struct Frame {
        var stream: String
        var id: StreamID
        var bytes: ByteBuffer
    }

    let events: [GatewayEvent]
    private var frames: [ClientFilter: [Frame]] = [:]

    init(_ events: [GatewayEvent]) {
        self.events = events
    }

    /// The frames of this batch for clients with `filter`, in stream order.
    func frames(for filter: ClientFilter) -> [Frame] {
        if let known = frames[filter] { return known }
        let made = events.compactMap { event -> Frame? in
            guard filter.wants(event), let message = event.rendering(database: filter.database, relations: filter.relations) else {
                return nil
            }
            return Frame(stream: event.stream.key, id: event.id, bytes: message.bytes)
        }
        frames[filter] = made
        return made
    }
}
