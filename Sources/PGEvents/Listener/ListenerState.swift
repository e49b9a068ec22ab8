public import PGEventsPostgres

/// Where an `EventListener` stands, as observed from outside.
public enum ListenerState: Sendable, CustomStringConvertible {
    /// Opening the first connection (or not started yet).
    case connecting
    /// Connected and listening; the consumer was told (`.connected`) and has not reported that it caught up.
    case catchingUp(generation: Int)
    /// Connected, listening, and the consumer has caught up: notifications are the only news.
    case listening(generation: Int)
    /// The connection was lost or could not be opened: waiting, or trying, for attempt `attempt`.
    case reconnecting(attempt: Int, lastError: PostgresError)
    /// Stopped for good (stop requested, task cancelled, or gave up after `maxAttempts`).
    case stopped

    /// The state's name without its values: `connecting`, `catchingUp`, `listening`, `reconnecting`, `stopped`.
    public var name: String {
        switch self {
        case .connecting: "connecting"
        case .catchingUp: "catchingUp"
        case .listening: "listening"
        case .reconnecting: "reconnecting"
        case .stopped: "stopped"
        }
    }

    /// The value of the `pgevents_listener_state` gauge: 0 stopped, 1 connecting, 2 reconnecting,
    /// 3 catching up, 4 listening.
    public var gaugeValue: Int {
        switch self {
        case .stopped: 0
        case .connecting: 1
        case .reconnecting: 2
        case .catchingUp: 3
        case .listening: 4
        }
    }

    /// Whether a connection is open and listening on every channel (`catchingUp` or `listening`).
    public var isConnected: Bool {
        switch self {
        case .catchingUp, .listening: true
        default: false
        }
    }

    /// The state with its values, for logs (`reconnecting(attempt: 2, lastError: …)`).
    public var description: String {
        switch self {
        case .connecting: "connecting"
        case .catchingUp(let generation): "catchingUp(generation: \(generation))"
        case .listening(let generation): "listening(generation: \(generation))"
        case .reconnecting(let attempt, let error): "reconnecting(attempt: \(attempt), lastError: \(error.code): \(error.message))"
        case .stopped: "stopped"
        }
    }
}
