public import Logging
import Metrics
public import PGEventsPostgres
import PGEventsSystem
import Synchronization

/// A `LISTEN` connection that stays up: it reconnects with backoff when the connection is lost, re-`LISTEN`s
/// on every channel, and detects half-open connections with a heartbeat.
///
/// ```swift
/// let listener = try EventListener(configuration: .init(postgres: configuration, channels: ["orders"]), logger: logger)
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { await listener.run() }
///     for await event in listener.events {
///         switch event {
///         case .connected(let generation):
///             try await catchUpFromCursor()               // LISTEN first, then catch up: nothing falls between
///             listener.catchUpFinished(generation: generation)
///         case .notification(let notification): handle(notification)
///         case .disconnected: break                      // it reconnects on its own
///         }
///     }
/// }
/// ```
///
/// **Heartbeat.** Every `heartbeatInterval` the listener sends a notification to itself on a private channel
/// (`pgevents_heartbeat_<random>`) through a second, small connection (`PostgresProbe`), whose every
/// call has a client-side time limit. If the echo has not arrived on the listening connection within
/// `heartbeatTimeout`, the connection is treated as lost. Nothing is ever sent on the listening connection
/// after `LISTEN`, so its thread is never stuck in a blocking libpq call and the listener can always close it
/// and reconnect — even when the server is frozen (`SIGSTOP`) or the network silently drops everything.
/// Heartbeat echoes never appear in `events`.
///
/// Notifications are delivered as they arrive, also while the consumer catches up: it must tolerate seeing
/// an event both in its catch-up and as a notification (deduplicate by its durable cursor).
public final class EventListener: Sendable {
    /// The configuration, as given.
    public let configuration: Configuration
    /// The private channel of this listener's heartbeats.
    public let heartbeatChannel: String

    let logger: Logger
    private let core: Mutex<Core>
    private let stopSignal = ListenerStopSignal()
    private let stream: AsyncStream<ListenerEvent>
    let continuation: AsyncStream<ListenerEvent>.Continuation
    private let reconnects = Counter(label: "pgevents_listener_reconnects_total")
    let notificationsReceived = Counter(label: "pgevents_notifications_received_total")
    private let stateGauge = Gauge(label: "pgevents_listener_state")
    let queueUsage = Gauge(label: "pgevents_notify_queue_usage")

    private struct Core {
        var machine: ListenerStateMachine
        var hasRun = false
    }

    /// How one connection's life ended.
    enum ConnectionEnd: Sendable {
        case lost(PostgresError)
        case heartbeatTimedOut
        case cancelled
    }

    /// A listener; nothing happens until `run()`. Throws `.invalidArgument` for an invalid configuration.
    public init(configuration: Configuration, logger: Logger = EventListener.defaultLogger) throws(PostgresError) {
        try configuration.validate()
        self.configuration = configuration
        let channel = "pgevents_heartbeat_" + Self.randomHex(bytes: 8)
        self.heartbeatChannel = channel
        var logger = logger
        logger[metadataKey: "heartbeat_channel"] = "\(channel)"
        self.logger = logger
        let machine = ListenerStateMachine(channels: configuration.channels + [channel], backoff: Backoff(configuration.backoff))
        self.core = Mutex(Core(machine: machine))
        (stream, continuation) = AsyncStream.makeStream(of: ListenerEvent.self, bufferingPolicy: .unbounded)
    }

    /// A logger that discards everything.
    public static let defaultLogger = Logger(label: "pgevents.listener", factory: { _ in SwiftLogNoOpLogHandler() })

    /// What happens, in order; finishes when `run()` returns. One consumer only.
    public var events: Events { Events(stream: stream) }

    /// The current state.
    public var state: ListenerState { core.withLock { $0.machine.publicState } }

    /// Tells the listener that the consumer caught up after `.connected(generation:)`. A report for an older
    /// generation (the connection was lost again meanwhile) is ignored; nil means the current one.
    public func catchUpFinished(generation: Int? = nil) {
        _ = transition { $0.catchUpFinished(generation: generation) }
    }

    /// Ends `run()`: connections are closed and `events` finishes. Callable from anywhere, any number of times.
    /// A blocked connection attempt is not interrupted: `run()` returns at the latest after `connectTimeout`.
    public func stop() {
        logger.debug("listener stop requested")
        stopSignal.fire()
    }

    /// Connects, listens, and keeps doing so until `stop()` is called, the task is cancelled, or — with
    /// `backoff.maxAttempts` — too many consecutive attempts failed. Then closes its connections and
    /// finishes `events`. A listener runs once: later calls return at once.
    public func run() async {
        let first = core.withLock { core -> Bool in
            defer { core.hasRun = true }
            return !core.hasRun
        }
        guard first else {
            logger.warning("listener run called again", metadata: ["state": "\(state.name)"])
            return
        }
        if !stopSignal.isFired {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.stopSignal.wait() }  // ends on stop() or cancellation
                group.addTask { await self.drive() }
                await group.next()
                group.cancelAll()
            }
        }
        _ = transition { $0.stopRequested() }
        continuation.finish()
    }

    // MARK: Driving the state machine

    private func drive() async {
        var connection: PostgresConnection?
        var action = transition { $0.start() }
        loop: while !Task.isCancelled {
            switch action {
            case .connect(let attempt):
                action = await connect(attempt: attempt, into: &connection)
            case .reconnect(let delay, let attempt):
                logger.info("listener reconnect scheduled", metadata: ["attempt": "\(attempt)", "delay_seconds": "\(delay.inSeconds)"])
                do { try await Task.sleep(for: delay) } catch { break loop }
                reconnects.increment()
                action = await connect(attempt: attempt, into: &connection)
            case .listen(let channels):
                action = await listen(channels, on: &connection)
            case .emitConnected(let generation):
                guard let current = connection else {
                    action = transition { $0.connectionLost(PostgresError(code: .connectionClosed, message: "no listening connection")) }
                    continue
                }
                continuation.yield(.connected(generation: generation))
                let end = await watch(current, generation: generation)
                await current.close()
                connection = nil
                switch end {
                case .lost(let error): action = transition { $0.connectionLost(error) }
                case .heartbeatTimedOut: action = transition { $0.heartbeatTimedOut(after: configuration.heartbeatTimeout) }
                case .cancelled: break loop
                }
            case .disconnect(let error, let delay, let attempt):
                continuation.yield(.disconnected(error))
                action = .reconnect(after: delay, attempt: attempt)
            case .giveUp(let error, let attempts):
                logger.error("listener gave up", metadata: ["attempts": "\(attempts)", "error": "\(error)"])
                break loop
            case .close, .none, .ignore:
                break loop
            }
        }
        await connection?.close()
    }

    /// Opens the listening connection; returns the machine's next action.
    private func connect(attempt: Int, into connection: inout PostgresConnection?) async -> ListenerStateMachine.Action {
        let target = configuration.listeningConnection
        do {
            let opened = try await PostgresConnection.connect(target, logger: logger)
            if Task.isCancelled {
                await opened.close()
                return .close
            }
            connection = opened
            let backendPID = await opened.backendPID
            logger.debug("listener connected", metadata: ["attempt": "\(attempt)", "backend_pid": "\(backendPID)"])
            return transition { $0.connectSucceeded() }
        } catch {
            logger.debug("listener connection failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
            return transition { $0.connectFailed(error) }
        }
    }

    /// `LISTEN`s on every channel in one statement (so `pg_stat_activity.query` names them all).
    private func listen(_ channels: [String], on connection: inout PostgresConnection?) async -> ListenerStateMachine.Action {
        guard let current = connection else {
            return transition { $0.connectFailed(PostgresError(code: .connectionClosed, message: "no listening connection")) }
        }
        let statement = channels.map { "LISTEN " + PostgresIdentifier.quote($0) }.joined(separator: "; ")
        do {
            try await current.execute(statement)
            return transition { $0.listenSucceeded() }
        } catch {
            await current.close()
            connection = nil
            return transition { $0.connectFailed(error) }
        }
    }

    // MARK: State changes

    /// Applies an event to the state machine; logs and counts the state change, and ignored events.
    private func transition(_ event: (inout ListenerStateMachine) -> ListenerStateMachine.Action) -> ListenerStateMachine.Action {
        let (before, after, action) = core.withLock { core in
            let before = core.machine.publicState
            let action = event(&core.machine)
            return (before, core.machine.publicState, action)
        }
        if case .ignore(let event, let state) = action {
            logger.debug("listener event ignored", metadata: ["event": "\(event)", "state": "\(state)"])
        }
        if before.description != after.description {
            var metadata: Logger.Metadata = ["state": "\(after.name)", "previous_state": "\(before.name)"]
            switch after {
            case .catchingUp(let generation), .listening(let generation): metadata["generation"] = "\(generation)"
            case .reconnecting(let attempt, let error):
                metadata["attempt"] = "\(attempt)"
                metadata["error"] = "\(error.code): \(error.message)"
            default: break
            }
            logger.info("listener state changed", metadata: metadata)
            stateGauge.record(after.gaugeValue)
            Counter(label: "pgevents_listener_state_changes_total", dimensions: [("state", after.name)]).increment()
        }
        return action
    }

    private static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }
}
