import CHiredis
public import Logging
public import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A connection to Redis through hiredis, owned by one dedicated thread.
///
/// Every hiredis call for this connection runs on the connection's own thread (the actor's executor), so a
/// blocking command such as `BRPOP` never holds a thread of Swift's cooperative pool. Error replies of
/// `command` are thrown as `.server` errors; `pipeline` returns them in place. Once the connection breaks
/// (server gone, connection reset, a command timeout) every later call throws `.connectionLost`.
///
/// ```swift
/// let redis = try await RedisConnection.connect(to: "redis://127.0.0.1:6379/0")
/// try await redis.command("LPUSH", "jobs", RedisArgument(payload))
/// let job = try await redis.command("BRPOP", "jobs", 1)
/// ```
public actor RedisConnection {
    private let executor: ThreadExecutor
    /// The connection's own thread, on which every hiredis call for it runs.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Where this connection goes (password masked in its description).
    public nonisolated let configuration: RedisConfiguration
    private let logger: Logger

    // The one owner of the redisContext*: created in `open`, freed in `close`, in `markLost` (a broken
    // context is useless) or in deinit.
    private var context: UnsafeMutablePointer<redisContext>?
    private var isClosed = false
    private var lostError: RedisError?

    /// Whether the connection made its executor (and ends its thread), or shares one it was given.
    private let ownsExecutor: Bool

    private init(configuration: RedisConfiguration, logger: Logger, executor: ThreadExecutor?) {
        self.configuration = configuration
        self.logger = logger
        self.executor = executor ?? ThreadExecutor(name: "pgevents-redis")
        self.ownsExecutor = executor == nil
    }

    // Runs on the connection's own thread, like every other use of the context.
    isolated deinit {
        if let context { redisFree(context) }
        if ownsExecutor { executor.shutdown() }
    }

    /// Opens a connection described by a `redis://`, `unix://` or `redis+unix://` URL.
    public static func connect(to url: String, logger: Logger = RedisConnection.defaultLogger) async throws(RedisError) -> RedisConnection {
        try await connect(RedisConfiguration(url), logger: logger)
    }

    /// Opens a connection, then sends `AUTH` if a password is configured and `SELECT` if the database is not 0.
    ///
    /// Any failure, including a rejected `AUTH`, throws `.connectionFailed` (or `.invalidConfiguration`).
    ///
    /// With `executor`, the connection runs on that thread instead of one of its own (it does not end it). Its
    /// commands block that thread while they wait for the reply, so share it only with work that waits for them
    /// anyway (one delivery's connections, ``PostgresConnection/connect(_:logger:executor:)``).
    public static func connect(
        _ configuration: RedisConfiguration, logger: Logger = RedisConnection.defaultLogger, executor: ThreadExecutor? = nil
    ) async throws(RedisError) -> RedisConnection {
        try configuration.validate()
        let connection = RedisConnection(configuration: configuration, logger: logger, executor: executor)
        try await connection.open()
        return connection
    }

    /// A logger that discards everything; pass your own to see what the connection does.
    public static let defaultLogger = Logger(label: "pgevents.redis", factory: { _ in SwiftLogNoOpLogHandler() })

    private func open() throws(RedisError) {
        Self.blockSIGPIPEOnThisThread()
        let timeout = Self.makeTimeval(seconds: configuration.connectTimeout)
        let opened: UnsafeMutablePointer<redisContext>? =
            if let path = configuration.unixSocketPath {
                redisConnectUnixWithTimeout(path, timeout)
            } else {
                redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout)
            }
        guard let opened else {
            throw RedisError(code: .connectionFailed, message: "cannot connect to \(configuration.target): out of memory")
        }
        guard opened.pointee.err == 0 else {
            let reason = Self.errorString(opened)
            redisFree(opened)
            throw RedisError(code: .connectionFailed, message: "cannot connect to \(configuration.target): \(reason)")
        }
        context = opened
        // hiredis 0.14 has no limit on an array header's element count, and allocates its element vector as soon as
        // it reads one: a broken or hostile server could make it reserve gigabytes. The reader's createArray is
        // wrapped to refuse more than `maximumArrayElements` (hiredis then fails the read as out of memory).
        if let guarded = guardedReplyFunctions { opened.pointee.reader.pointee.fn = guarded }
        do throws(RedisError) {
            if let commandTimeout = configuration.commandTimeout,
                redisSetTimeout(opened, Self.makeTimeval(seconds: commandTimeout)) != REDIS_OK
            {
                throw RedisError(code: .connectionFailed, message: "cannot set the command timeout: \(Self.errorString(opened))")
            }
            if let password = configuration.password {
                var auth: [RedisArgument] = ["AUTH"]
                if let username = configuration.username { auth.append(RedisArgument(username)) }
                auth.append(RedisArgument(password))
                try command(auth)
            }
            if configuration.database != 0 {
                try command(["SELECT", RedisArgument(configuration.database)])
            }
        } catch {
            if let context { redisFree(context) }
            context = nil
            var message = error.message
            if let password = configuration.password, !password.isEmpty {
                message = message.redacting(password)
            }
            throw RedisError(
                code: .connectionFailed, message: "cannot connect to \(configuration.target): \(message)", command: error.command)
        }
        logger.debug("connected", metadata: ["target": "\(configuration.target)"])
    }

    /// Closes the connection. Later calls throw `.connectionClosed`. Safe to call more than once.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        if let context { redisFree(context) }
        context = nil
        logger.debug("closed", metadata: ["target": "\(configuration.target)"])
    }

    /// Whether the connection is open and no failure has been seen on it.
    ///
    /// A connection the server dropped while it was idle is noticed by the next command.
    public var isUsable: Bool { context != nil }

    // MARK: Commands

    /// Sends one command and returns its reply; an error reply is thrown as a `.server` error.
    ///
    /// Blocking commands (`BRPOP`, `BLMOVE`, …) block the connection's own thread, never a pool thread.
    @discardableResult
    public func command(_ arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        let name = arguments.first.map(Self.commandName)
        let context = try usableContext(command: name)
        guard let name else { throw RedisError(code: .invalidArgument, message: "a command needs at least its name") }
        try Self.checkArgumentCount(arguments, command: name)
        logger.trace("command", metadata: ["command": "\(name)"])
        let (raw, savedErrno) = Self.withArgv(arguments) { argc, argv, lengths in
            let raw = redisCommandArgv(context, argc, argv, lengths)
            return (raw, errno)
        }
        let reply = try consume(raw, errno: savedErrno, command: name)
        if case .error(let message) = reply {
            throw RedisError(code: .server, message: message, command: name)
        }
        return reply
    }

    /// Sends one command given as a name and arguments: `command("LPUSH", "jobs", "payload")`.
    @discardableResult
    public func command(_ name: RedisArgument, _ arguments: RedisArgument...) throws(RedisError) -> RedisReply {
        try command([name] + arguments)
    }

    /// Sends all commands at once, then reads their replies, in order.
    ///
    /// Error replies are returned in place as `.error`; only connection-level failures throw (and then the
    /// connection is unusable). An empty list returns `[]` without any I/O.
    public func pipeline(_ commands: [[RedisArgument]]) throws(RedisError) -> [RedisReply] {
        let context = try usableContext(command: nil)
        guard !commands.isEmpty else { return [] }
        var names: [String] = []
        names.reserveCapacity(commands.count)
        for (index, arguments) in commands.enumerated() {
            guard let first = arguments.first else {
                throw RedisError(code: .invalidArgument, message: "command \(index) of the pipeline is empty")
            }
            let name = Self.commandName(first)
            try Self.checkArgumentCount(arguments, command: name)
            names.append(name)
        }
        logger.trace("pipeline", metadata: ["commands": "\(commands.count)"])
        for (index, arguments) in commands.enumerated() {
            let (status, savedErrno) = Self.withArgv(arguments) { argc, argv, lengths in
                let status = redisAppendCommandArgv(context, argc, argv, lengths)
                return (status, errno)
            }
            if status != REDIS_OK { throw fail(errno: savedErrno, command: names[index]) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for name in names {
            // The first call writes the whole buffer; each call then returns one reply, reading as needed.
            // On failure redisGetReply leaves `raw` nil and sets the context's error.
            var raw: UnsafeMutableRawPointer?
            _ = redisGetReply(context, &raw)
            let savedErrno = errno
            replies.append(try consume(raw, errno: savedErrno, command: name))
        }
        return replies
    }

    // MARK: The hiredis chokepoint

    /// Converts a reply from hiredis and frees it, or — when there is none — maps the context's error.
    private func consume(_ raw: UnsafeMutableRawPointer?, errno savedErrno: Int32, command: String) throws(RedisError) -> RedisReply {
        guard let raw else { throw fail(errno: savedErrno, command: command) }
        defer { freeReplyObject(raw) }
        do {
            return try RedisReply.converting(raw.assumingMemoryBound(to: redisReply.self))
        } catch {
            // In a pipeline the replies after this one would be out of step: give up on the connection.
            var failure = error
            failure.command = command
            markLost(failure)
            throw failure
        }
    }

    /// Maps the context's error (after a call that returned NULL or REDIS_ERR) and marks the connection lost:
    /// hiredis never clears a context error, so the context cannot be used again.
    private func fail(errno savedErrno: Int32, command: String) -> RedisError {
        guard let context else {
            return RedisError(code: .connectionClosed, message: "the connection to \(configuration.target) was closed", command: command)
        }
        let reason = Self.errorString(context)
        let error: RedisError
        switch context.pointee.err {
        case REDIS_ERR_IO where savedErrno == EAGAIN || savedErrno == EWOULDBLOCK:
            // SO_RCVTIMEO/SO_SNDTIMEO (redisSetTimeout) expired; a late reply would now be out of step.
            let seconds = configuration.commandTimeout.map { "\($0)" } ?? "?"
            error = RedisError(
                code: .timeout, message: "no reply from \(configuration.target) within the command timeout of \(seconds) seconds",
                command: command)
        case REDIS_ERR_IO, REDIS_ERR_EOF:
            error = RedisError(code: .connectionLost, message: "connection to \(configuration.target) lost: \(reason)", command: command)
        case REDIS_ERR_PROTOCOL:
            error = RedisError(
                code: .protocolViolation, message: "protocol error from \(configuration.target): \(reason)", command: command)
        case REDIS_ERR_OOM:
            error = RedisError(
                code: .protocolViolation,
                message:
                    "cannot read the reply from \(configuration.target): an array of more than \(Self.maximumArrayElements) elements, or out of memory",
                command: command)
        case 0:
            error = RedisError(code: .protocolViolation, message: "hiredis returned neither a reply nor an error", command: command)
        default:
            error = RedisError(code: .connectionLost, message: "connection to \(configuration.target) failed: \(reason)", command: command)
        }
        markLost(error)
        return error
    }

    private func markLost(_ error: RedisError) {
        guard lostError == nil else { return }
        lostError = RedisError(code: .connectionLost, message: error.message, command: error.command)
        if let context { redisFree(context) }
        context = nil
        Self.discardPendingSIGPIPE()
        logger.warning(
            "connection lost",
            metadata: [
                "target": "\(configuration.target)", "code": "\(error.code)",
                "command": "\(error.command ?? "")", "error": "\(error.message)",
            ])
    }

    private func usableContext(command: String?) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if isClosed {
            throw RedisError(code: .connectionClosed, message: "the connection to \(configuration.target) was closed", command: command)
        }
        if var lostError {
            lostError.command = command
            throw lostError
        }
        guard let context else {
            throw RedisError(code: .connectionClosed, message: "the connection to \(configuration.target) is not open", command: command)
        }
        return context
    }

    // MARK: Helpers

    /// The name of a command for errors and logs: its first argument upper-cased when it looks like a
    /// command name, otherwise a placeholder (never the bytes themselves).
    static func commandName(_ argument: RedisArgument) -> String {
        let bytes = argument.bytes
        let plausible =
            !bytes.isEmpty && bytes.count <= 32
            && bytes.allSatisfy { byte in
                (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "|")
            }
        return plausible ? String(decoding: bytes, as: UTF8.self).uppercased() : "<unnamed>"
    }

    private static func checkArgumentCount(_ arguments: [RedisArgument], command: String) throws(RedisError) {
        guard arguments.count <= Int(Int32.max) else {
            throw RedisError(code: .invalidArgument, message: "too many arguments (\(arguments.count))", command: command)
        }
    }

    /// Calls `body` with hiredis' `argc`, `argv` and `argvlen` for `arguments` (binary-safe: lengths, not NULs).
    /// `arguments.count` must fit in Int32.
    static func withArgv<Result>(
        _ arguments: [RedisArgument],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int>?) -> Result
    ) -> Result {
        var storage: [UInt8] = []
        storage.reserveCapacity(arguments.reduce(1) { $0 + $1.bytes.count })
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(arguments.count)
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            offsets.append(storage.count)
            lengths.append(argument.bytes.count)
            storage.append(contentsOf: argument.bytes)
        }
        storage.append(0)  // never empty, so the buffer has an address even when every argument is empty
        return storage.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { characters in
                var pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                    characters.baseAddress.map { UnsafePointer($0 + offset) }
                }
                return pointers.withUnsafeMutableBufferPointer { argv in
                    lengths.withUnsafeBufferPointer { argvlen in
                        body(Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
                    }
                }
            }
        }
    }

    static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func makeTimeval(seconds: Double) -> timeval {
        let whole = min(seconds.rounded(.down), Double(Int32.max))
        var value = timeval(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
        if value.tv_sec == 0 && value.tv_usec == 0 { value.tv_usec = 1 }  // zero would mean "no timeout"
        return value
    }

    /// hiredis writes with write(2), which raises SIGPIPE on a socket the server has closed and would end the
    /// process. Blocking it on this connection's own thread makes the write fail with EPIPE instead.
    private static func blockSIGPIPEOnThisThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Consumes a SIGPIPE left pending on this thread by a failed write, so it cannot fire later.
    private static func discardPendingSIGPIPE() {
        var pending = sigset_t()
        sigemptyset(&pending)
        guard sigpending(&pending) == 0, sigismember(&pending, SIGPIPE) == 1 else { return }
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        var immediately = timespec(tv_sec: 0, tv_nsec: 0)
        _ = sigtimedwait(&set, nil, &immediately)
    }
}

/// The most elements one array reply may have on a `RedisConnection` (2^26: 512 MiB of element pointers); a
/// longer one fails the read, and the connection, with a protocol error.
extension RedisConnection {
    public static let maximumArrayElements = 1 << 26
}

/// hiredis' own reply functions, read once from a fresh reader.
private let defaultReplyFunctions: redisReplyObjectFunctions? = {
    guard let reader = redisReaderCreate() else { return nil }
    defer { redisReaderFree(reader) }
    return reader.pointee.fn?.pointee
}()

/// hiredis' functions with createArray refusing more than `RedisConnection.maximumArrayElements` (never freed: shared by every
/// connection for the life of the process).
nonisolated(unsafe) private let guardedReplyFunctions: UnsafeMutablePointer<redisReplyObjectFunctions>? = {
    guard let defaults = defaultReplyFunctions else { return nil }
    let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    functions.initialize(to: defaults)
    functions.pointee.createArray = { task, elements in
        guard Int(elements) <= RedisConnection.maximumArrayElements else { return nil }  // hiredis stops with an error
        return defaultReplyFunctions?.createArray?(task, elements)
    }
    return functions
}()
