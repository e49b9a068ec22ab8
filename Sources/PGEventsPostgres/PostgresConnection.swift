import CLibPQ
public import Logging
public import PGEventsSystem
import Synchronization

import struct Foundation.Date

#if canImport(Glibc)
    import Glibc
#endif

/// A connection to PostgreSQL through libpq, owned by one dedicated thread.
///
/// Every libpq call for this connection runs on the connection's own thread (the actor's executor), so a
/// blocking query never holds a thread of Swift's cooperative pool, and between calls that thread waits in
/// `poll(2)` on the connection's socket: notifications are read as soon as they arrive, and a broken
/// connection ends `notifications()` with `.connectionLost` at once rather than at the next query.
///
/// ```swift
/// let connection = try await PostgresConnection.connect(to: "postgres://app@localhost/app")
/// try await connection.listen("new_event")
/// for try await notification in await connection.notifications() { … }
/// ```
public actor PostgresConnection {
    let executor: ThreadExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Where this connection goes (password masked in its description).
    public nonisolated let configuration: PostgresConfiguration
    let logger: Logger

    // The one owner of the PGconn*: created in `open`, freed in `finish` (or in deinit if never closed).
    var handle: OpaquePointer?
    var lostError: PostgresError?
    var subscribers: [Int: AsyncThrowingStream<[PostgresNotification], any Error>.Continuation] = [:]
    var nextSubscriberID = 0
    var lastBatchSize = 16
    /// The task waiting in ``waitForCopyData()``, resumed by the socket watch, or by `close` and `markLost`.
    var copyDataWaiter: CopyDataWaiter?
    private let notices: NoticeLog
    /// Channels this connection has issued `LISTEN` for.
    public internal(set) var listeningChannels: Set<String> = []
    /// The server process serving this connection (`pg_backend_pid()`).
    public private(set) var backendPID: Int32 = 0
    /// The server's version number, e.g. 150018 for 15.18.
    public private(set) var serverVersion: Int = 0
    /// How long a statement may wait for the server's answer before the connection is dropped (nil: for ever).
    /// A frozen server, or a half-open connection, answers nothing and TCP may not notice for minutes: after this
    /// long the statement fails with `.connectionLost`, saying so. Set it with ``setQueryTimeout(_:)``.
    public private(set) var queryTimeout: Duration?
    /// The socket, for ``abort()`` from other threads; -1 once closed. A Mutex guards it, so that `abort` never
    /// shuts down a descriptor number that `close` already gave back.
    private nonisolated let abortableSocket = Mutex<Int32>(-1)
    /// Set by the query watchdog when it aborted the connection.
    private nonisolated let timedOut = Atomic<Bool>(false)
    /// When the statement in flight must have returned (`ContinuousClock` nanoseconds since the connection's clock
    /// origin), or 0 when none is in flight: written around each statement, read by the watchdog.
    private nonisolated let statementDeadline = Atomic<Int64>(0)
    /// The one watchdog of this connection (while it has a ``queryTimeout``).
    private var watchdog: Task<Void, Never>?
    private nonisolated let clockOrigin = ContinuousClock.now

    /// Whether the connection made its executor (and ends its thread), or shares one it was given.
    private let ownsExecutor: Bool

    private init(configuration: PostgresConfiguration, logger: Logger, executor: ThreadExecutor?) {
        self.configuration = configuration
        self.logger = logger
        self.executor = executor ?? ThreadExecutor(name: "pgevents-pq")
        self.ownsExecutor = executor == nil
        self.notices = NoticeLog(logger: logger)
    }

    // Runs on the connection's own thread, like every other use of the handle.
    isolated deinit {
        watchdog?.cancel()
        if let handle { PQfinish(handle) }
        if ownsExecutor { executor.shutdown() }
    }

    /// Opens a connection described by a URL or conninfo string.
    public static func connect(to urlOrConninfo: String, logger: Logger = PostgresConnection.defaultLogger) async throws(PostgresError)
        -> PostgresConnection
    {
        try await connect(PostgresConfiguration(urlOrConninfo), logger: logger)
    }

    /// Opens a connection. `client_encoding` is set to UTF8 and `application_name` to `pgevents` unless given.
    ///
    /// With `executor`, the connection runs on that thread instead of one of its own, beside whatever else uses it
    /// (it does not end it). The thread's one socket watch is the connection's: share a thread only with a connection
    /// that never waits for a watch (a ``RedisConnection``), or with nothing that must be noticed while it is busy.
    public static func connect(
        _ configuration: PostgresConfiguration, logger: Logger = PostgresConnection.defaultLogger, executor: ThreadExecutor? = nil
    ) async throws(PostgresError) -> PostgresConnection {
        var configuration = configuration
        if configuration["client_encoding"] == nil { configuration["client_encoding"] = "UTF8" }
        if configuration["application_name"] == nil { configuration["application_name"] = "pgevents" }
        let connection = PostgresConnection(configuration: configuration, logger: logger, executor: executor)
        try await connection.open()
        return connection
    }

    /// A logger that discards everything; pass your own to see what the connection does.
    public static let defaultLogger = Logger(label: "pgevents.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    private func open() throws(PostgresError) {
        let connection = configuration.withKeywordsAndValues { PQconnectdbParams($0, $1, 0) }
        guard let connection else {
            throw PostgresError(code: .connectionFailed, message: "out of memory", function: "PQconnectdbParams")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.errorMessage(connection)
            PQfinish(connection)
            throw PostgresError(
                code: .connectionFailed,
                message:
                    "cannot connect to \(configuration.target): \(PostgresConfiguration.redact(message, secretsOf: configuration.conninfoIncludingSecrets))",
                function: "PQconnectdbParams")
        }
        handle = connection
        usable.store(true, ordering: .releasing)
        // Server notices (RAISE NOTICE, warnings at shutdown) go to the logger and `takeNotices()`,
        // not to libpq's default of printing on standard error.
        PQsetNoticeProcessor(
            connection,
            { context, message in
                guard let context, let message else { return }
                Unmanaged<NoticeLog>.fromOpaque(context).takeUnretainedValue().record(String(cString: message))
            }, Unmanaged.passUnretained(notices).toOpaque())
        backendPID = PQbackendPID(connection)
        serverVersion = Int(PQserverVersion(connection))
        abortableSocket.withLock { $0 = PQsocket(connection) }
        watchSocket()
        logger.debug("connected", metadata: ["target": "\(configuration.target)", "backend_pid": "\(backendPID)"])
    }

    /// Closes the connection. Notification sequences end without error. Safe to call more than once.
    public func close() {
        watchdog?.cancel()
        watchdog = nil
        copyDataWaiter?.resume()
        copyDataWaiter = nil
        guard let handle else { return }
        executor.setWatch(nil)
        abortableSocket.withLock { $0 = -1 }
        PQfinish(handle)
        self.handle = nil
        markUnusable()
        listeningChannels.removeAll()
        for continuation in subscribers.values { continuation.finish() }
        subscribers.removeAll()
        logger.debug("closed", metadata: ["backend_pid": "\(backendPID)"])
    }

    /// The notices and warnings the server sent since the last call (`RAISE NOTICE` in a trigger, say).
    public func takeNotices() -> [String] { notices.take() }

    /// Sets ``queryTimeout``. One watchdog task per connection checks the statement in flight a few times per
    /// timeout; each statement only writes its deadline to an atomic, so the deadline costs nothing measurable.
    public func setQueryTimeout(_ timeout: Duration?) {
        queryTimeout = timeout
        watchdog?.cancel()
        watchdog = nil
        guard let timeout else { return }
        let period = min(max(timeout / 4, .milliseconds(10)), .seconds(1))
        // Weak: a connection dropped without close() still goes away (its deinit frees the handle).
        watchdog = Task.detached { [weak self] in
            while (try? await Task.sleep(for: period)) != nil {
                guard let connection = self else { return }
                let deadline = connection.statementDeadline.load(ordering: .acquiring)
                guard deadline != 0, connection.nanoseconds(since: connection.clockOrigin) > deadline else { continue }
                connection.timedOut.store(true, ordering: .releasing)
                connection.abort()
                return
            }
        }
    }

    /// Breaks the connection from any thread: shuts its socket down, so that a statement waiting for a server that
    /// does not answer returns at once with `.connectionLost`. The connection is unusable afterwards; `close()`
    /// still frees it.
    public nonisolated func abort() {
        abortableSocket.withLock { socket in
            if socket >= 0 { _ = shutdown(socket, Int32(SHUT_RDWR)) }
        }
    }

    /// Arms the watchdog for one statement when there is a ``queryTimeout``; `disarm` when it returns.
    private func arm() {
        guard let queryTimeout else { return }
        statementDeadline.store(nanoseconds(since: clockOrigin) + Int64(queryTimeout.inMilliseconds) * 1_000_000, ordering: .releasing)
    }

    private func disarm() {
        if queryTimeout != nil { statementDeadline.store(0, ordering: .releasing) }
    }

    private nonisolated func nanoseconds(since origin: ContinuousClock.Instant) -> Int64 {
        let (seconds, attoseconds) = (ContinuousClock.now - origin).components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// `error`, saying that the watchdog ended the statement when it did.
    private func explained(_ error: PostgresError) -> PostgresError {
        guard timedOut.exchange(false, ordering: .acquiringAndReleasing), let queryTimeout else { return error }
        var error = error
        error.code = .connectionLost
        error.message =
            "no answer from \(configuration.target) within \(queryTimeout) (the query timeout): the connection was dropped (a frozen server, or a connection that is no longer there)"
        markLost(error)
        return error
    }

    /// Whether the connection is open and has not been lost. Readable from any thread without a hop to the
    /// connection's: a delivery asks it before every chunk.
    public nonisolated var isUsable: Bool { usable.load(ordering: .acquiring) }
    /// `handle != nil && lostError == nil`, kept where other threads can read it (``isUsable``).
    private nonisolated let usable = Atomic<Bool>(false)

    /// Records that the connection can no longer be used (closed or lost).
    func markUnusable() {
        usable.store(false, ordering: .releasing)
    }

    // MARK: Statements

    /// Runs one statement with parameters (`$1`, `$2`, …) sent separately from the SQL text.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws(PostgresError) -> PostgresResult {
        let handle = try usableHandle()
        arm()
        defer { disarm() }
        do {
            let result = try withParameterTexts(parameters, statement: sql) { params in
                PQexecParams(handle, sql, Int32(parameters.count), nil, params, nil, nil, 0)
            }
            return try consume(result, statement: sql, function: "PQexecParams")
        } catch {
            throw explained(error)
        }
    }

    /// Runs one or more statements separated by semicolons (simple query protocol, no parameters) and returns
    /// the last statement's result. Use it for migrations and DDL.
    @discardableResult
    public func execute(_ sql: String) throws(PostgresError) -> PostgresResult {
        let handle = try usableHandle()
        if sql.utf8.contains(0) {
            throw PostgresError(code: .invalidArgument, message: "SQL text contains a NUL byte", statement: sql)
        }
        arm()
        defer { disarm() }
        do {
            return try consume(PQexec(handle, sql), statement: sql, function: "PQexec")
        } catch {
            throw explained(error)
        }
    }

    /// Runs `body` inside `BEGIN` … `COMMIT`; rolls back if it throws.
    @discardableResult
    public func transaction<T: Sendable>(_ body: @Sendable (isolated PostgresConnection) throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            if isUsable { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    private func usableHandle() throws(PostgresError) -> OpaquePointer {
        if let lostError { throw lostError }
        guard let handle else {
            throw PostgresError(code: .connectionClosed, message: "the connection to \(configuration.target) was closed")
        }
        return handle
    }

    /// The chokepoint from libpq result status to Swift: copies the result out, frees it, and maps errors.
    private func consume(_ result: OpaquePointer?, statement: String, function: String) throws(PostgresError) -> PostgresResult {
        defer {
            if let result { PQclear(result) }
            drainNotifications()
        }
        let connectionBroken = handle.map { PQstatus($0) != CONNECTION_OK } ?? true
        guard let result else {
            let error = PostgresError(
                code: connectionBroken ? .connectionLost : .protocolViolation,
                message: handle.map(Self.errorMessage) ?? "no result", statement: statement, function: function)
            if connectionBroken { markLost(error) }
            throw error
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.copy(result)
        default:
            var error = Self.serverError(result, statement: statement, function: function)
            if connectionBroken {
                error.code = .connectionLost
                markLost(error)
            }
            throw error
        }
    }

    /// Copies a successful result out of libpq (the caller frees it).
    static func copy(_ result: OpaquePointer) -> PostgresResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [PostgresColumn] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(PostgresColumn(name: String(cString: PQfname(result, Int32(column))), typeOID: PQftype(result, Int32(column))))
        }
        var values: [String?] = []
        values.reserveCapacity(rowCount * columnCount)
        for row in 0..<rowCount {
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) != 0 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
        }
        let tag = String(cString: PQcmdStatus(result))
        let affected = String(cString: PQcmdTuples(result))
        return PostgresResult(columns: columns, values: values, commandTag: tag, affectedRows: Int(affected))
    }

    /// The server's error fields of a failed result.
    static func serverError(_ result: OpaquePointer, statement: String, function: String) -> PostgresError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let message = field("M") ?? String(cString: PQresultErrorMessage(result)).trimmed()
        return PostgresError(
            code: .server, message: message, sqlState: field("C"), severity: field("V") ?? field("S"),
            detail: field("D"), hint: field("H"), position: field("P").flatMap { Int($0) }, context: field("W"),
            statement: statement, function: function)
    }

    static func errorMessage(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmed()
    }

}

/// Calls `body` with the parameters in text format as C strings (NULL for SQL NULL), as `PQexecParams` and
/// `PQsendQueryParams` take them; refuses a NUL byte, which PostgreSQL text cannot hold.
func withParameterTexts<T>(
    _ parameters: [(any PostgresEncodable)?], statement sql: String,
    _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> T
) throws(PostgresError) -> T {
    var texts: [UnsafeMutablePointer<CChar>?] = []
    texts.reserveCapacity(parameters.count)
    defer { for text in texts { free(text) } }
    for (index, parameter) in parameters.enumerated() {
        guard let parameter else {
            texts.append(nil)
            continue
        }
        let text = parameter.postgresText
        if text.utf8.contains(0) {
            throw PostgresError(
                code: .invalidArgument, message: "parameter $\(index + 1) contains a NUL byte, which PostgreSQL text cannot hold",
                statement: sql)
        }
        texts.append(strdup(text))
    }
    return texts.withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { body($0.baseAddress) }
    }
}

extension PostgresConfiguration {
    /// Calls `body` with NULL-terminated C arrays of keywords and values, as libpq's `…Params` functions take them.
    func withKeywordsAndValues<T>(_ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> T) -> T {
        let keywords = parameters.map { strdup($0.keyword) } + [nil]
        let values = parameters.map { strdup($0.value) } + [nil]
        defer {
            for keyword in keywords { free(keyword) }
            for value in values { free(value) }
        }
        return keywords.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                k.withMemoryRebound(to: UnsafePointer<CChar>?.self) { k in
                    v.withMemoryRebound(to: UnsafePointer<CChar>?.self) { v in body(k.baseAddress, v.baseAddress) }
                }
            }
        }
    }

    /// `user@host:port/dbname`, for messages.
    var target: String {
        let host = self["host"] ?? self["hostaddr"] ?? "localhost"
        let port = self["port"].map { ":" + $0 } ?? ""
        let user = self["user"].map { $0 + "@" } ?? ""
        let database = self["dbname"].map { "/" + $0 } ?? ""
        return user + host + port + database
    }
}

extension PostgresConnection {
    /// The answer of a server to a ping (`PQpingParams`): whether it accepts connections, without logging in.
    public enum PingResult: Sendable, Equatable {
        /// The server accepts connections.
        case ok
        /// The server is up but refuses connections (starting up, shutting down, too many clients).
        case rejecting
        /// No server answered.
        case noResponse
        /// The parameters are invalid; no attempt was made.
        case noAttempt
    }

    /// Asks whether a server accepts connections, without authenticating (libpq's `PQpingParams`).
    public static func ping(_ configuration: PostgresConfiguration) -> PingResult {
        let result = configuration.withKeywordsAndValues { PQpingParams($0, $1, 0) }
        switch result {
        case PQPING_OK: return .ok
        case PQPING_REJECT: return .rejecting
        case PQPING_NO_RESPONSE: return .noResponse
        default: return .noAttempt
        }
    }
}

/// Collects a connection's server notices. Called by libpq on the connection's thread, read by the actor
/// (same thread); `@unchecked Sendable` because the Mutex guards the list.
final class NoticeLog: @unchecked Sendable {
    let logger: Logger
    private let notices = Mutex<[String]>([])
    private static let limit = 1_000

    init(logger: Logger) { self.logger = logger }

    func record(_ message: String) {
        let text = message.trimmed()
        logger.debug("server notice", metadata: ["notice": "\(text)"])
        notices.withLock {
            if $0.count >= Self.limit { $0.removeFirst() }
            $0.append(text)
        }
    }

    func take() -> [String] {
        notices.withLock { notices in
            defer { notices.removeAll() }
            return notices
        }
    }
}
