public import PGEventsPostgres

/// What an `EventListener` reports to its consumer, in order.
public enum ListenerEvent: Sendable, CustomStringConvertible {
    /// A connection is open and `LISTEN`s on every channel. Notifications sent before this moment (during a
    /// disconnection, or before the first connection) were not received: catch up from the durable cursor
    /// now, then call `EventListener.catchUpFinished(generation:)`. `generation` counts connections from 1.
    case connected(generation: Int)
    /// A notification on one of the configured channels (heartbeats never appear here).
    case notification(PostgresNotification)
    /// The connection was lost (or stopped answering heartbeats); the listener reconnects on its own.
    case disconnected(PostgresError)

    /// The event in one line, for logs.
    public var description: String {
        switch self {
        case .connected(let generation): "connected(generation: \(generation))"
        case .notification(let notification): "notification(\(notification))"
        case .disconnected(let error): "disconnected(\(error.code): \(error.message))"
        }
    }
}
