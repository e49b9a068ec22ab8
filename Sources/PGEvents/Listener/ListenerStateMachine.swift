import PGEventsPostgres
import PGEventsSystem

/// The decisions of an `EventListener`, without any I/O: the listener reports what happened (an event, one
/// method each), the machine changes state and answers with the one thing to do next (an action).
///
/// ```text
/// idle ──start──▶ connecting ──connectSucceeded──▶ subscribing ──listenSucceeded──▶ catchingUp ──catchUpFinished──▶ listening
///                   ▲    │ connectFailed                │ connectFailed                 │ connectionLost / heartbeatTimedOut
///                   │    ▼                              ▼                               ▼
///                   └── reconnect(after: backoff) ◀─────┴───────────────────────────────┘        any ──stopRequested──▶ stopped
/// ```
///
/// Attempts are counted per outage from 1: the first connection at start is made at once; after a lost
/// connection attempt 1 waits `delay(forAttempt: 1)`, and after a failed attempt `n` attempt `n + 1` waits
/// `delay(forAttempt: n + 1)`. After `maxAttempts` consecutive failures the machine gives up (stopped).
///
/// An event that makes no sense in the current state (a late report, a bug in the driver) never traps: it
/// leaves the state as it is and returns `.ignore`, which the driver logs.
struct ListenerStateMachine: Sendable {
    /// The machine's state, finer than the public `ListenerState`.
    enum State: Sendable {
        /// Not started.
        case idle
        /// Opening a connection (after waiting, when `lastError` is set). `attempt` counts within this outage.
        case connecting(attempt: Int, lastError: PostgresError?)
        /// Connected; `LISTEN` on the channels is under way.
        case subscribing(attempt: Int, lastError: PostgresError?)
        /// Listening; the consumer is catching up.
        case catchingUp(generation: Int)
        /// Listening; the consumer has caught up.
        case listening(generation: Int)
        /// Done.
        case stopped
    }

    /// What the driver must do next.
    enum Action: Sendable {
        /// Open the listening connection now.
        case connect(attempt: Int)
        /// Wait `delay`, then open the listening connection.
        case reconnect(after: Duration, attempt: Int)
        /// `LISTEN` on these channels (the user's and the heartbeat channel).
        case listen(channels: [String])
        /// Tell the consumer `.connected(generation:)`: it must catch up. Then watch the connection.
        case emitConnected(generation: Int)
        /// Close the lost connection, tell the consumer `.disconnected(error)`, wait `delay`, reconnect.
        case disconnect(error: PostgresError, reconnectAfter: Duration, attempt: Int)
        /// Stop trying: `maxAttempts` consecutive attempts failed, the last with `error`.
        case giveUp(error: PostgresError, attempts: Int)
        /// Close everything and finish the events.
        case close
        /// Nothing to do.
        case none
        /// The event was not expected in this state; nothing changed. Log it.
        case ignore(event: String, state: String)
    }

    private(set) var state: State = .idle
    /// The generation of the last successful connection (0 before the first).
    private(set) var generation = 0
    let channels: [String]
    let backoff: Backoff
    private var random: any RandomNumberGenerator & Sendable

    /// A machine for `channels` (everything to `LISTEN` on, heartbeat channel included).
    init(channels: [String], backoff: Backoff, random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()) {
        self.channels = channels
        self.backoff = backoff
        self.random = random
    }

    /// The state as `EventListener.state` shows it.
    var publicState: ListenerState {
        switch state {
        case .idle: .connecting
        case .connecting(let attempt, let lastError), .subscribing(let attempt, let lastError):
            if let lastError { .reconnecting(attempt: attempt, lastError: lastError) } else { .connecting }
        case .catchingUp(let generation): .catchingUp(generation: generation)
        case .listening(let generation): .listening(generation: generation)
        case .stopped: .stopped
        }
    }

    // MARK: Events

    /// The listener starts.
    mutating func start() -> Action {
        guard case .idle = state else { return ignore("start") }
        state = .connecting(attempt: 1, lastError: nil)
        return .connect(attempt: 1)
    }

    /// The listening connection is open.
    mutating func connectSucceeded() -> Action {
        guard case .connecting(let attempt, let lastError) = state else { return ignore("connectSucceeded") }
        state = .subscribing(attempt: attempt, lastError: lastError)
        return .listen(channels: channels)
    }

    /// `LISTEN` succeeded on every channel.
    mutating func listenSucceeded() -> Action {
        guard case .subscribing = state else { return ignore("listenSucceeded") }
        generation += 1
        state = .catchingUp(generation: generation)
        return .emitConnected(generation: generation)
    }

    /// Opening the connection, or `LISTEN` on it, failed.
    mutating func connectFailed(_ error: PostgresError) -> Action {
        let attempt: Int
        switch state {
        case .connecting(let current, _), .subscribing(let current, _): attempt = current
        default: return ignore("connectFailed")
        }
        guard backoff.allowsRetry(afterFailedAttempts: attempt) else {
            state = .stopped
            return .giveUp(error: error, attempts: attempt)
        }
        state = .connecting(attempt: attempt + 1, lastError: error)
        return .reconnect(after: backoff.delay(forAttempt: attempt + 1, using: &random), attempt: attempt + 1)
    }

    /// The established connection broke (the notification stream ended with an error).
    mutating func connectionLost(_ error: PostgresError) -> Action {
        switch state {
        case .catchingUp, .listening:
            state = .connecting(attempt: 1, lastError: error)
            return .disconnect(error: error, reconnectAfter: backoff.delay(forAttempt: 1, using: &random), attempt: 1)
        default:
            return ignore("connectionLost")
        }
    }

    /// No heartbeat echo came back within `timeout`: the connection is treated as lost (it may be half-open).
    mutating func heartbeatTimedOut(after timeout: Duration) -> Action {
        switch state {
        case .catchingUp, .listening:
            return connectionLost(Self.heartbeatError(timeout: timeout))
        default:
            return ignore("heartbeatTimedOut")
        }
    }

    /// The consumer caught up after `.connected(generation:)`; nil means the current generation.
    mutating func catchUpFinished(generation reported: Int? = nil) -> Action {
        guard case .catchingUp(let current) = state else { return ignore("catchUpFinished") }
        if let reported, reported != current { return ignore("catchUpFinished(generation: \(reported))") }
        state = .listening(generation: current)
        return .none
    }

    /// `stop()` was called or the task was cancelled.
    mutating func stopRequested() -> Action {
        if case .stopped = state { return .none }
        state = .stopped
        return .close
    }

    // MARK: Helpers

    /// The error reported to the consumer when heartbeats stop coming back.
    static func heartbeatError(timeout: Duration) -> PostgresError {
        PostgresError(
            code: .connectionLost,
            message: "no heartbeat echo within \(timeout.inSeconds) s: the connection or the server is not responding")
    }

    private func ignore(_ event: String) -> Action {
        .ignore(event: event, state: "\(state)")
    }
}
