import CLibPQ
import PGEventsSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// Streaming replication (a connection opened with `replication=database`): `START_REPLICATION` turns the
// connection into COPY BOTH mode, after which the server sends CopyData messages (WAL data, keepalives) and the
// client sends CopyData messages of its own (standby status updates). Reading never waits: the caller waits for
// the socket with `waitForCopyData()`, then reads what is there. Nothing is read from the socket unless the caller
// asks, so a slow consumer slows the server's sender (TCP backpressure) instead of filling memory.
extension PostgresConnection {

    /// Sends a replication command that starts streaming (`START_REPLICATION …`) and checks that the server
    /// switched to COPY BOTH. The connection's idle watch is removed: from now on only ``waitForCopyData()`` watches
    /// the socket.
    public func startCopyBoth(_ command: String) throws(PostgresError) {
        let handle = try usableReplicationHandle()
        guard let result = PQexec(handle, command) else {
            let error = PostgresError(code: .connectionLost, message: Self.errorMessage(handle), statement: command, function: "PQexec")
            markLost(error)
            throw error
        }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_BOTH else {
            var error = Self.serverError(result, statement: command, function: "PQexec")
            if PQstatus(handle) != CONNECTION_OK {
                error.code = .connectionLost
                markLost(error)
            }
            throw error
        }
        executor.setWatch(nil)
    }

    /// Calls `body` with the next complete CopyData message, without waiting; returns nil when none is complete yet
    /// (call ``waitForCopyData()``). The bytes are valid only inside `body`. Throws `.connectionLost` when the
    /// connection broke, and the server's error when it ended the stream (a terminated walsender, a slot that became
    /// invalid).
    public func readCopyData<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T? {
        let handle = try usableReplicationHandle()
        var buffer: UnsafeMutablePointer<CChar>?
        var length = PQgetCopyData(handle, &buffer, 1)
        if length == 0 {
            // Nothing complete in libpq's buffer: read what the socket holds, and look again.
            if PQconsumeInput(handle) == 0 {
                throw lose(handle, function: "PQconsumeInput")
            }
            length = PQgetCopyData(handle, &buffer, 1)
        }
        switch length {
        case 0:
            return nil
        case -1:
            // The server ended the COPY: its result says why.
            throw streamEnded(handle)
        case ..<0:
            throw lose(handle, function: "PQgetCopyData")
        default:
            guard let buffer else { return nil }
            defer { PQfreemem(buffer) }
            return try body(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
        }
    }

    /// Sends one CopyData message to the server and flushes it.
    public func sendCopyData(_ bytes: [UInt8]) throws(PostgresError) {
        let handle = try usableReplicationHandle()
        let sent = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == 1, PQflush(handle) == 0 else {
            throw lose(handle, function: "PQputCopyData")
        }
    }

    /// Waits until the socket has something to read (or the connection broke, which the next read reports). Call it
    /// after ``readCopyData(_:)`` returned nil. Cancellation ends the wait with `CancellationError`.
    public func waitForCopyData() async throws {
        let handle = try usableReplicationHandle()
        let fd = PQsocket(handle)
        let waiter = CopyDataWaiter()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                guard waiter.install(continuation) else { return }
                copyDataWaiter?.resume()
                copyDataWaiter = waiter
                // One-shot: the watch is removed as soon as it fires, so that nothing is read until the caller reads.
                executor.setWatch(
                    ThreadExecutor.Watch(
                        fd: fd,
                        onReadable: { [weak self] in
                            self?.assumeIsolated { connection in
                                connection.executor.setWatch(nil)
                                connection.copyDataWaiter = nil
                            }
                            waiter.resume()
                        }))
            }
        } onCancel: {
            waiter.cancel()
        }
    }

    private func usableReplicationHandle() throws(PostgresError) -> OpaquePointer {
        if let lostError { throw lostError }
        guard let handle else {
            throw PostgresError(code: .connectionClosed, message: "the connection to \(configuration.target) was closed")
        }
        return handle
    }

    private func lose(_ handle: OpaquePointer, function: String) -> PostgresError {
        let error = PostgresError(
            code: .connectionLost, message: "replication connection to \(configuration.target) lost: \(Self.errorMessage(handle))",
            function: function)
        markLost(error)
        return error
    }

    /// The error that ended a COPY BOTH stream, from the result that follows it.
    private func streamEnded(_ handle: OpaquePointer) -> PostgresError {
        var error = PostgresError(code: .connectionLost, message: "the server ended the replication stream", function: "PQgetCopyData")
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_FATAL_ERROR {
                error = Self.serverError(result, statement: "START_REPLICATION", function: "PQgetResult")
                if PQstatus(handle) != CONNECTION_OK { error.code = .connectionLost }
            }
            PQclear(result)
        }
        if error.code == .connectionLost { markLost(error) }
        return error
    }
}

/// One wait of ``PostgresConnection/waitForCopyData()``: resumed once, by the socket watch or by cancellation,
/// whichever comes first. A Mutex guards the continuation, so the two never both resume it.
final class CopyDataWaiter: Sendable {
    private enum State {
        case waiting
        case armed(CheckedContinuation<Void, any Error>)
        case cancelled, done
    }
    private let state = Mutex<State>(.waiting)

    /// Keeps `continuation`; false (and the continuation resumed with `CancellationError`) when already cancelled.
    func install(_ continuation: CheckedContinuation<Void, any Error>) -> Bool {
        let cancelled = state.withLock { state -> Bool in
            if case .cancelled = state { return true }
            state = .armed(continuation)
            return false
        }
        if cancelled { continuation.resume(throwing: CancellationError()) }
        return !cancelled
    }

    func resume() {
        take(next: .done)?.resume()
    }

    func cancel() {
        take(next: .cancelled)?.resume(throwing: CancellationError())
    }

    private func take(next: State) -> CheckedContinuation<Void, any Error>? {
        state.withLock { state in
            switch state {
            case .armed(let continuation):
                state = next
                return continuation
            case .waiting:
                state = next
                return nil
            case .cancelled, .done:
                return nil
            }
        }
    }
}
