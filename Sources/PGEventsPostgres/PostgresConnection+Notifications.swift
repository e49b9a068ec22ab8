import CLibPQ
import PGEventsSystem

import struct Foundation.Date

#if canImport(Glibc)
    import Glibc
#endif

// LISTEN/NOTIFY: the channel commands, the notification sequences, and the socket watch that reads
// notifications (and notices a lost connection) while the connection is idle.
extension PostgresConnection {

    /// `LISTEN` on `channel` (any name: it is quoted). Idempotent.
    public func listen(_ channel: String) throws(PostgresError) {
        try PostgresIdentifier.validateChannel(channel)
        try execute("LISTEN " + PostgresIdentifier.quote(channel))
        listeningChannels.insert(channel)
        logger.debug("listening", metadata: ["channel": "\(channel)"])
    }

    /// `UNLISTEN` on `channel`.
    public func unlisten(_ channel: String) throws(PostgresError) {
        try PostgresIdentifier.validateChannel(channel)
        try execute("UNLISTEN " + PostgresIdentifier.quote(channel))
        listeningChannels.remove(channel)
    }

    /// `UNLISTEN *`.
    public func unlistenAll() throws(PostgresError) {
        try execute("UNLISTEN *")
        listeningChannels.removeAll()
    }

    /// Sends a notification (`pg_notify`), delivered when the current transaction commits.
    public func notify(_ channel: String, payload: String = "") throws(PostgresError) {
        try PostgresIdentifier.validateChannel(channel)
        try query("SELECT pg_notify($1, $2)", [channel, payload])
    }

    /// The notifications this connection receives from now on, on every channel it listens to.
    ///
    /// Several sequences may be open at once; each receives every notification.
    public func notifications() -> PostgresNotificationSequence {
        let (stream, continuation) = AsyncThrowingStream<[PostgresNotification], any Error>.makeStream()
        if let lostError {
            continuation.finish(throwing: lostError)
        } else if handle == nil {
            continuation.finish()
        } else {
            subscribers[nextSubscriberID] = continuation
            nextSubscriberID += 1
        }
        return PostgresNotificationSequence(stream: stream)
    }

    func watchSocket() {
        guard let handle else { return }
        let fd = PQsocket(handle)
        executor.setWatch(
            ThreadExecutor.Watch(
                fd: fd,
                onReadable: { [weak self] in
                    guard let self else { return }
                    self.assumeIsolated { $0.socketReadable() }
                }))
    }

    func socketReadable() {
        guard let handle, lostError == nil else { return }
        // Read everything the socket already holds before handing it over: under a stream of notifications
        // this gives large batches (fewer wake-ups of the consumer) and costs no waiting at all.
        var batch: [PostgresNotification] = []
        batch.reserveCapacity(lastBatchSize)
        var reads = 0
        repeat {
            if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK {
                collectNotifications(into: &batch)
                deliver(batch)
                markLost(
                    PostgresError(
                        code: .connectionLost,
                        message: "connection to \(configuration.target) lost: \(Self.errorMessage(handle))",
                        function: "PQconsumeInput"))
                return
            }
            collectNotifications(into: &batch)
            reads += 1
        } while reads < 64 && batch.count < 8192 && Self.isReadable(PQsocket(handle))
        lastBatchSize = max(16, batch.count)
        deliver(batch)
    }

    /// Whether `fd` has data to read right now (a `poll` that does not wait).
    private static func isReadable(_ fd: Int32) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 1
    }

    /// Hands whatever libpq has parsed to the subscribers (after a statement, notifications may have come in).
    func drainNotifications() {
        var batch: [PostgresNotification] = []
        collectNotifications(into: &batch)
        deliver(batch)
    }

    /// Moves the notifications libpq has parsed into `batch`.
    private func collectNotifications(into batch: inout [PostgresNotification]) {
        guard let handle, var notify = PQnotifies(handle) else { return }
        // Everything read by one PQconsumeInput arrived together: one timestamp, and (usually) one channel
        // whose String is made once.
        let receivedAt = Date()
        var channel = batch.last?.channel ?? String(cString: notify.pointee.relname)
        while true {
            if strcmp(channel, notify.pointee.relname) != 0 { channel = String(cString: notify.pointee.relname) }
            batch.append(
                PostgresNotification(
                    channel: channel,
                    payload: String(cString: notify.pointee.extra),
                    senderPID: notify.pointee.be_pid,
                    receivedAt: receivedAt))
            PQfreemem(notify)
            guard let next = PQnotifies(handle) else { break }
            notify = next
        }
    }

    private func deliver(_ batch: [PostgresNotification]) {
        guard !batch.isEmpty else { return }
        for (id, continuation) in subscribers {
            if case .terminated = continuation.yield(batch) { subscribers[id] = nil }
        }
    }

    func markLost(_ error: PostgresError) {
        guard lostError == nil else { return }
        lostError = error
        markUnusable()
        executor.setWatch(nil)
        copyDataWaiter?.resume()
        copyDataWaiter = nil
        logger.warning("connection lost", metadata: ["backend_pid": "\(backendPID)", "error": "\(error.message)"])
        for continuation in subscribers.values { continuation.finish(throwing: error) }
        subscribers.removeAll()
    }
}
