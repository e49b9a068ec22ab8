import CLibPQ
public import Logging
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A small connection whose every operation has a client-side time limit: for heartbeats and health checks
/// of servers that may have stopped answering.
///
/// A `PostgresConnection` uses libpq's blocking calls, which is right for queries but means a statement sent
/// to a frozen server (a `SIGSTOP`ped process, a half-open TCP connection whose peer's kernel still
/// acknowledges) never returns. A `PostgresProbe` drives libpq in non-blocking mode (`PQconnectStartParams`,
/// `PQsendQueryParams`, `PQconsumeInput`) and waits in `poll(2)` with a deadline, so each call returns —
/// with a result or an error — within its `timeout`, and within ~50 ms of its task being cancelled.
///
/// It connects on first use and again after a failure. A statement that times out leaves the protocol in
/// an unknown state, so the connection is closed (without waiting) and the next call opens a new one.
///
/// ```swift
/// let probe = PostgresProbe(configuration: configuration)
/// try await probe.notify("heartbeat", payload: "42", timeout: .seconds(2))
/// ```
public actor PostgresProbe {
    private let executor: ThreadExecutor
    /// The probe's own thread, on which every libpq call for it runs.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Where the probe connects (password masked in its description).
    public nonisolated let configuration: PostgresConfiguration
    private let logger: Logger
    // The one owner of the PGconn*: set by `open`, freed by `close` (or deinit). Only touched on the probe's
    // own thread, and by deinit once no one else can: `nonisolated(unsafe)` lets the plain deinit reach it.
    nonisolated(unsafe) private var handle: OpaquePointer?
    /// The server process of the current connection, 0 when not connected.
    public private(set) var backendPID: Int32 = 0

    /// A probe for `configuration` (`application_name` defaults to `pgevents-probe`). Nothing is opened yet.
    public init(configuration: PostgresConfiguration, logger: Logger = PostgresConnection.defaultLogger) {
        var configuration = configuration
        if configuration["client_encoding"] == nil { configuration["client_encoding"] = "UTF8" }
        if configuration["application_name"] == nil { configuration["application_name"] = "pgevents-probe" }
        self.configuration = configuration
        self.logger = logger
        self.executor = ThreadExecutor(name: "pgevents-probe")
    }

    // Not an `isolated deinit`: Swift 6.3's optimizer loops on one here (a "circular reference" error in
    // release builds of modules that use the probe).
    deinit {
        if let handle { PQfinish(handle) }
        executor.shutdown()
    }

    /// Whether a connection is open (it may still turn out to be dead at the next call).
    public var isConnected: Bool { handle != nil }

    /// Closes the connection without waiting for the server. Safe to call more than once.
    public func close() {
        guard let handle else { return }
        PQfinish(handle)  // non-blocking mode: the Terminate message is sent only if the socket takes it now
        self.handle = nil
        backendPID = 0
    }

    /// Sends a notification (`pg_notify`) within `timeout`, connecting first if needed.
    public func notify(_ channel: String, payload: String = "", timeout: Duration) throws(PostgresError) {
        try PostgresIdentifier.validateChannel(channel)
        try query("SELECT pg_notify($1, $2)", [channel, payload], timeout: timeout)
    }

    /// Runs one statement with parameters within `timeout` (connecting first if needed, within the same
    /// time), and returns its result.
    ///
    /// Fails with `.connectionLost` when the time runs out (the connection is then closed), with
    /// `.connectionClosed` when the task is cancelled, and with `.server` when the server rejects it.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = [], timeout: Duration) throws(PostgresError)
        -> PostgresResult
    {
        let deadline = ContinuousClock.now + timeout
        let handle = try openIfNeeded(deadline: deadline, timeout: timeout)
        let sent = try withParameterTexts(parameters, statement: sql) { params in
            PQsendQueryParams(handle, sql, Int32(parameters.count), nil, params, nil, nil, 0)
        }
        guard sent == 1 else { throw fail("PQsendQueryParams", statement: sql) }
        // Push the query out; the socket may take it in pieces.
        while true {
            let flushed = PQflush(handle)
            if flushed == 0 { break }
            if flushed < 0 { throw fail("PQflush", statement: sql) }
            let ready = try wait(for: Int16(POLLIN | POLLOUT), deadline: deadline, timeout: timeout, statement: sql)
            if ready & Int16(POLLIN) != 0, PQconsumeInput(handle) == 0 { throw fail("PQconsumeInput", statement: sql) }
        }
        // Read every result of the statement; the first error wins, else the last result.
        var outcome: Result<PostgresResult, PostgresError>?
        while true {
            while PQisBusy(handle) == 1 {
                _ = try wait(for: Int16(POLLIN), deadline: deadline, timeout: timeout, statement: sql)
                if PQconsumeInput(handle) == 0 { throw fail("PQconsumeInput", statement: sql) }
            }
            guard let result = PQgetResult(handle) else { break }
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                if case .failure = outcome {} else { outcome = .success(PostgresConnection.copy(result)) }
            default:
                if case .failure = outcome {
                } else {
                    outcome = .failure(PostgresConnection.serverError(result, statement: sql, function: "PQsendQueryParams"))
                }
            }
        }
        // A probe does not listen, but a notification may still be queued (a NOTIFY to itself): drop it.
        while let notify = PQnotifies(handle) { PQfreemem(notify) }
        if PQstatus(handle) != CONNECTION_OK { throw fail("PQgetResult", statement: sql) }
        switch outcome {
        case .success(let result): return result
        case .failure(let error): throw error
        case nil: throw PostgresError(code: .protocolViolation, message: "no result", statement: sql, function: "PQgetResult")
        }
    }

    // MARK: Connecting

    private func openIfNeeded(deadline: ContinuousClock.Instant, timeout: Duration) throws(PostgresError) -> OpaquePointer {
        if let handle, PQstatus(handle) == CONNECTION_OK { return handle }
        close()
        guard let connection = configuration.withKeywordsAndValues({ PQconnectStartParams($0, $1, 0) }) else {
            throw PostgresError(code: .connectionFailed, message: "out of memory", function: "PQconnectStartParams")
        }
        handle = connection
        PQsetNoticeProcessor(connection, { _, _ in }, nil)  // a probe's notices are of no interest
        guard PQstatus(connection) != CONNECTION_BAD else { throw connectFailure(connection) }
        // libpq's documented loop: start as if PQconnectPoll had answered "writing".
        var status = PGRES_POLLING_WRITING
        while status != PGRES_POLLING_OK {
            let events: Int16
            switch status {
            case PGRES_POLLING_READING: events = Int16(POLLIN)
            case PGRES_POLLING_WRITING: events = Int16(POLLOUT)
            default: throw connectFailure(connection)
            }
            _ = try wait(for: events, deadline: deadline, timeout: timeout, statement: nil)
            status = PQconnectPoll(connection)
        }
        guard PQsetnonblocking(connection, 1) == 0 else { throw connectFailure(connection) }
        backendPID = PQbackendPID(connection)
        logger.debug("probe connected", metadata: ["target": "\(configuration.target)", "backend_pid": "\(backendPID)"])
        return connection
    }

    private func connectFailure(_ connection: OpaquePointer) -> PostgresError {
        let message = PostgresConnection.errorMessage(connection)
        close()
        return PostgresError(
            code: .connectionFailed,
            message:
                "cannot connect to \(configuration.target): \(PostgresConfiguration.redact(message, secretsOf: configuration.conninfoIncludingSecrets))",
            function: "PQconnectPoll")
    }

    // MARK: Waiting

    /// Waits until the socket is ready for `events`; throws (and closes) on deadline or cancellation.
    /// Returns the events that are ready.
    private func wait(for events: Int16, deadline: ContinuousClock.Instant, timeout: Duration, statement: String?) throws(PostgresError)
        -> Int16
    {
        guard let handle else {
            throw PostgresError(code: .connectionClosed, message: "the probe connection was closed", statement: statement)
        }
        while true {
            if Task.isCancelled {
                close()
                throw PostgresError(code: .connectionClosed, message: "cancelled; the probe connection was closed", statement: statement)
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero {
                let pid = backendPID
                let milliseconds = Int((timeout.inSeconds * 1000).rounded())
                close()
                logger.debug("probe timed out", metadata: ["backend_pid": "\(pid)", "timeout_ms": "\(milliseconds)"])
                throw PostgresError(
                    code: .connectionLost,
                    message:
                        "\(configuration.target) did not answer within \(milliseconds) ms\(pid == 0 ? "" : " (backend \(pid))"); the connection was closed",
                    statement: statement)
            }
            // Slices of at most 50 ms, so cancellation is noticed promptly.
            let slice = Int32(min(50, max(1, (remaining.inSeconds * 1000).rounded(.up))))
            var descriptor = pollfd(fd: PQsocket(handle), events: events, revents: 0)
            let ready = poll(&descriptor, 1, slice)
            if ready > 0 { return descriptor.revents }
            if ready < 0 && errno != EINTR {
                throw fail("poll", statement: statement)
            }
        }
    }

    /// Closes the connection and makes a `.connectionLost` error from libpq's last message.
    private func fail(_ function: String, statement: String?) -> PostgresError {
        let message = handle.map(PostgresConnection.errorMessage) ?? "not connected"
        close()
        return PostgresError(
            code: .connectionLost, message: "probe connection to \(configuration.target) failed: \(message)", statement: statement,
            function: function)
    }

}
