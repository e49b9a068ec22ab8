import PGEventsPostgres
import Testing

@testable import PGEvents

/// One test per transition of `ListenerStateMachine`, legal and illegal.
@Suite("Listener state machine")
struct ListenerStateMachineTests {
    typealias Machine = ListenerStateMachine
    static let channels = ["orders", "payments", "pgevents_heartbeat_test"]
    static let lost = PostgresError(code: .connectionLost, message: "server closed the connection")
    static let refused = PostgresError(code: .connectionFailed, message: "connection refused")

    static func machine(maxAttempts: Int? = nil, jitter: Double = 0) -> Machine {
        Machine(
            channels: channels,
            backoff: Backoff(
                .init(initial: .milliseconds(100), multiplier: 2, maximum: .seconds(10), jitter: jitter, maxAttempts: maxAttempts)),
            random: SplitMix64(seed: 1))
    }

    /// A machine driven to `catchingUp(generation: 1)`.
    static func connected() -> Machine {
        var machine = machine()
        _ = machine.start()
        _ = machine.connectSucceeded()
        _ = machine.listenSucceeded()
        return machine
    }

    /// A machine driven to `listening(generation: 1)`.
    static func listening() -> Machine {
        var machine = connected()
        _ = machine.catchUpFinished()
        return machine
    }

    /// A machine whose connection was lost and that waits to reconnect (attempt 1).
    static func reconnecting() -> Machine {
        var machine = listening()
        _ = machine.connectionLost(lost)
        return machine
    }

    static func stopped() -> Machine {
        var machine = listening()
        _ = machine.stopRequested()
        return machine
    }

    // MARK: Legal transitions

    @Test("idle → start → connecting: connect attempt 1 at once")
    func start() {
        var machine = Self.machine()
        #expect(machine.publicState.name == "connecting")
        guard case .connect(attempt: 1) = machine.start() else {
            Issue.record("expected connect(attempt: 1)")
            return
        }
        guard case .connecting(attempt: 1, lastError: nil) = machine.state else {
            Issue.record("\(machine.state)")
            return
        }
        #expect(machine.publicState.name == "connecting")
    }

    @Test("connecting → connectSucceeded → subscribing: LISTEN on every channel")
    func connectSucceeded() {
        var machine = Self.machine()
        _ = machine.start()
        guard case .listen(let channels) = machine.connectSucceeded() else {
            Issue.record("expected listen")
            return
        }
        #expect(channels == Self.channels)
        guard case .subscribing(attempt: 1, lastError: nil) = machine.state else {
            Issue.record("\(machine.state)")
            return
        }
    }

    @Test("subscribing → listenSucceeded → catchingUp: emit connected(generation: 1)")
    func listenSucceeded() {
        var machine = Self.machine()
        _ = machine.start()
        _ = machine.connectSucceeded()
        guard case .emitConnected(generation: 1) = machine.listenSucceeded() else {
            Issue.record("expected emitConnected(1)")
            return
        }
        guard case .catchingUp(generation: 1) = machine.publicState else {
            Issue.record("\(machine.publicState)")
            return
        }
        #expect(machine.generation == 1)
    }

    @Test("catchingUp → catchUpFinished → listening")
    func catchUpFinished() {
        var machine = Self.connected()
        guard case .none = machine.catchUpFinished(generation: 1) else {
            Issue.record("expected none")
            return
        }
        guard case .listening(generation: 1) = machine.publicState else {
            Issue.record("\(machine.publicState)")
            return
        }
        var implicit = Self.connected()
        _ = implicit.catchUpFinished()
        guard case .listening(generation: 1) = implicit.publicState else {
            Issue.record("\(implicit.publicState)")
            return
        }
    }

    @Test("listening → connectionLost → reconnecting(attempt: 1): disconnect, then reconnect after the first delay")
    func connectionLostWhileListening() {
        var machine = Self.listening()
        guard case .disconnect(let error, let delay, attempt: 1) = machine.connectionLost(Self.lost) else {
            Issue.record("expected disconnect")
            return
        }
        #expect(error.message == Self.lost.message)
        #expect(delay == .milliseconds(100))
        guard case .reconnecting(attempt: 1, let lastError) = machine.publicState else {
            Issue.record("\(machine.publicState)")
            return
        }
        #expect(lastError.code == .connectionLost)
    }

    @Test("catchingUp → connectionLost → reconnecting(attempt: 1)")
    func connectionLostWhileCatchingUp() {
        var machine = Self.connected()
        guard case .disconnect(_, _, attempt: 1) = machine.connectionLost(Self.lost) else {
            Issue.record("expected disconnect")
            return
        }
        guard case .reconnecting(attempt: 1, _) = machine.publicState else {
            Issue.record("\(machine.publicState)")
            return
        }
    }

    @Test("listening → heartbeatTimedOut → reconnecting, with a connectionLost error that says why")
    func heartbeatTimedOut() {
        var machine = Self.listening()
        guard case .disconnect(let error, _, attempt: 1) = machine.heartbeatTimedOut(after: .milliseconds(500)) else {
            Issue.record("expected disconnect")
            return
        }
        #expect(error.code == .connectionLost)
        #expect(error.message.contains("heartbeat"))
        #expect(error.message.contains("0.5 s"))
        var catchingUp = Self.connected()
        guard case .disconnect = catchingUp.heartbeatTimedOut(after: .seconds(5)) else {
            Issue.record("expected disconnect")
            return
        }
    }

    @Test("connecting → connectFailed → reconnecting(attempt: 2) after the second delay")
    func connectFailedAtStart() {
        var machine = Self.machine()
        _ = machine.start()
        guard case .reconnect(let delay, attempt: 2) = machine.connectFailed(Self.refused) else {
            Issue.record("expected reconnect")
            return
        }
        #expect(delay == .milliseconds(200))
        guard case .reconnecting(attempt: 2, let lastError) = machine.publicState else {
            Issue.record("\(machine.publicState)")
            return
        }
        #expect(lastError.code == .connectionFailed)
    }

    @Test("subscribing → connectFailed (LISTEN failed) → reconnecting")
    func listenFailed() {
        var machine = Self.machine()
        _ = machine.start()
        _ = machine.connectSucceeded()
        guard case .reconnect(_, attempt: 2) = machine.connectFailed(Self.lost) else {
            Issue.record("expected reconnect")
            return
        }
        guard case .connecting(attempt: 2, _) = machine.state else {
            Issue.record("\(machine.state)")
            return
        }
    }

    @Test("reconnecting: delays follow the backoff attempt after attempt, and reset after a success")
    func delaysFollowBackoff() {
        var machine = Self.reconnecting()
        var delays: [Duration] = []
        for _ in 0..<5 {
            guard case .reconnect(let delay, _) = machine.connectFailed(Self.refused) else {
                Issue.record("expected reconnect")
                return
            }
            delays.append(delay)
        }
        let expected = [0.2, 0.4, 0.8, 1.6, 3.2]
        #expect(zip(delays.map(backoffTestSeconds), expected).allSatisfy { abs($0 - $1) < 1e-9 }, "\(delays)")
        guard case .reconnecting(attempt: 6, _) = machine.publicState else {
            Issue.record("\(machine.publicState)")
            return
        }
        _ = machine.connectSucceeded()
        guard case .emitConnected(generation: 2) = machine.listenSucceeded() else {
            Issue.record("expected generation 2")
            return
        }
        guard case .disconnect(_, let delay, attempt: 1) = machine.connectionLost(Self.lost) else {
            Issue.record("expected disconnect")
            return
        }
        #expect(delay == .milliseconds(100))
    }

    @Test("with jitter, every delay lies within the backoff's bounds")
    func jitteredDelays() {
        var machine = Self.machine(jitter: 0.2)
        _ = machine.start()
        for attempt in 2...12 {
            guard case .reconnect(let delay, let reported) = machine.connectFailed(Self.refused) else {
                Issue.record("expected reconnect")
                return
            }
            #expect(reported == attempt)
            let base = machine.backoff.baseDelay(forAttempt: attempt)
            #expect(delay <= base && backoffTestSeconds(delay) >= backoffTestSeconds(base) * 0.8 - 1e-9)
        }
    }

    @Test("connectFailed at maxAttempts → stopped: give up with the last error")
    func givesUp() {
        var machine = Self.machine(maxAttempts: 3)
        _ = machine.start()
        guard case .reconnect(_, attempt: 2) = machine.connectFailed(Self.refused) else {
            Issue.record("expected reconnect")
            return
        }
        guard case .reconnect(_, attempt: 3) = machine.connectFailed(Self.refused) else {
            Issue.record("expected reconnect")
            return
        }
        guard case .giveUp(let error, attempts: 3) = machine.connectFailed(Self.lost) else {
            Issue.record("expected giveUp")
            return
        }
        #expect(error.message == Self.lost.message)
        guard case .stopped = machine.publicState else {
            Issue.record("\(machine.publicState)")
            return
        }
    }

    @Test(
        "stopRequested from every state → stopped: close",
        arguments: ["idle", "connecting", "subscribing", "catchingUp", "listening", "reconnecting"])
    func stopRequested(from name: String) {
        var machine = Self.machine()
        switch name {
        case "connecting": _ = machine.start()
        case "subscribing":
            _ = machine.start()
            _ = machine.connectSucceeded()
        case "catchingUp": machine = Self.connected()
        case "listening": machine = Self.listening()
        case "reconnecting": machine = Self.reconnecting()
        default: break
        }
        guard case .close = machine.stopRequested() else {
            Issue.record("expected close from \(name)")
            return
        }
        guard case .stopped = machine.publicState else {
            Issue.record("\(machine.publicState)")
            return
        }
    }

    @Test("stopRequested when stopped: nothing to do")
    func stopTwice() {
        var machine = Self.stopped()
        guard case .none = machine.stopRequested() else {
            Issue.record("expected none")
            return
        }
    }

    // MARK: Illegal transitions: ignored, state unchanged, no trap

    /// Every event that makes no sense where it arrives.
    static let illegal: [(state: String, event: String)] = [
        ("idle", "connectSucceeded"), ("idle", "listenSucceeded"), ("idle", "connectFailed"), ("idle", "connectionLost"),
        ("idle", "heartbeatTimedOut"), ("idle", "catchUpFinished"),
        ("connecting", "start"), ("connecting", "listenSucceeded"), ("connecting", "connectionLost"),
        ("connecting", "heartbeatTimedOut"), ("connecting", "catchUpFinished"),
        ("subscribing", "connectSucceeded"), ("subscribing", "connectionLost"), ("subscribing", "catchUpFinished"),
        ("catchingUp", "start"), ("catchingUp", "connectSucceeded"), ("catchingUp", "listenSucceeded"), ("catchingUp", "connectFailed"),
        ("catchingUp", "staleCatchUpFinished"),
        ("listening", "connectSucceeded"), ("listening", "listenSucceeded"), ("listening", "connectFailed"),
        ("listening", "catchUpFinished"),
        ("reconnecting", "listenSucceeded"), ("reconnecting", "connectionLost"), ("reconnecting", "heartbeatTimedOut"),
        ("reconnecting", "catchUpFinished"),
        ("stopped", "start"), ("stopped", "connectSucceeded"), ("stopped", "listenSucceeded"), ("stopped", "connectFailed"),
        ("stopped", "connectionLost"), ("stopped", "heartbeatTimedOut"), ("stopped", "catchUpFinished"),
    ]

    @Test("an event that makes no sense is ignored and changes nothing", arguments: illegal.indices)
    func illegalTransition(index: Int) {
        let (stateName, event) = Self.illegal[index]
        var machine: Machine
        switch stateName {
        case "idle": machine = Self.machine()
        case "connecting":
            machine = Self.machine()
            _ = machine.start()
        case "subscribing":
            machine = Self.machine()
            _ = machine.start()
            _ = machine.connectSucceeded()
        case "catchingUp": machine = Self.connected()
        case "listening": machine = Self.listening()
        case "reconnecting": machine = Self.reconnecting()
        default: machine = Self.stopped()
        }
        let before = "\(machine.state)"
        let action: Machine.Action
        switch event {
        case "start": action = machine.start()
        case "connectSucceeded": action = machine.connectSucceeded()
        case "listenSucceeded": action = machine.listenSucceeded()
        case "connectFailed": action = machine.connectFailed(Self.refused)
        case "connectionLost": action = machine.connectionLost(Self.lost)
        case "heartbeatTimedOut": action = machine.heartbeatTimedOut(after: .seconds(1))
        case "staleCatchUpFinished": action = machine.catchUpFinished(generation: 7)
        default: action = machine.catchUpFinished()
        }
        guard case .ignore(let ignoredEvent, let state) = action else {
            Issue.record("\(event) in \(stateName) was not ignored: \(action)")
            return
        }
        #expect(ignoredEvent.hasPrefix(event == "staleCatchUpFinished" ? "catchUpFinished" : event))
        #expect(state == before)
        #expect("\(machine.state)" == before)
    }
}
