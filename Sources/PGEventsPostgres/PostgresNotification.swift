import PGEventsSystem

public import struct Foundation.Date

/// One notification received on a listening connection.
public struct PostgresNotification: Sendable, Hashable, CustomStringConvertible {
    /// The channel it was sent on, exactly as the sender named it.
    public var channel: String
    /// The payload (empty when none was given).
    public var payload: String
    /// The process id of the backend that sent it (`pg_backend_pid()` of the sender).
    public var senderPID: Int32
    /// When this process read it from the socket (wall clock).
    public var receivedAt: Date

    public init(channel: String, payload: String, senderPID: Int32, receivedAt: Date) {
        self.channel = channel
        self.payload = payload
        self.senderPID = senderPID
        self.receivedAt = receivedAt
    }

    /// The payload's UTF-8 bytes.
    public var payloadBytes: [UInt8] { Array(payload.utf8) }

    public var description: String {
        "notification on \(channel) from pid \(senderPID): \(TextExcerpt.excerpt(payload, limit: 80))"
    }
}

/// The notifications a connection receives, in the order the server sent them.
///
/// The sequence ends without error when the connection is closed by this process, and with a
/// `PostgresError` of code `.connectionLost` as soon as the server goes away. Notifications are read from
/// the socket as they arrive and buffered here, so the server's notification queue never fills because of
/// a slow consumer.
public struct PostgresNotificationSequence: AsyncSequence, Sendable {
    public typealias Element = PostgresNotification
    public typealias Failure = any Error

    let stream: AsyncThrowingStream<[PostgresNotification], any Error>

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator())
    }

    /// Iterator of notifications; not `Sendable`: one task consumes it.
    ///
    /// Notifications arrive in batches (one per read from the socket); `next()` hands them out one by one
    /// from the current batch without suspending, and is inlinable so that costs no async call.
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline var base: AsyncThrowingStream<[PostgresNotification], any Error>.AsyncIterator
        @usableFromInline var buffer: [PostgresNotification] = []
        @usableFromInline var index = 0

        init(base: AsyncThrowingStream<[PostgresNotification], any Error>.AsyncIterator) {
            self.base = base
        }

        @inlinable
        public mutating func next() async throws -> PostgresNotification? {
            if index < buffer.count {
                defer { index += 1 }
                return buffer[index]
            }
            return try await nextFromStream()
        }

        @usableFromInline
        mutating func nextFromStream() async throws -> PostgresNotification? {
            guard let batch = try await base.next() else { return nil }
            buffer = batch
            index = 1
            return batch.first
        }

        /// Everything already received and not yet returned, without waiting; waits only when there is none.
        ///
        /// Lets a consumer handle notifications in batches (one Redis round trip per batch, say).
        public mutating func nextBatch() async throws -> [PostgresNotification]? {
            if index < buffer.count {
                defer {
                    buffer = []
                    index = 0
                }
                return index == 0 ? buffer : Array(buffer[index...])
            }
            buffer = []
            index = 0
            return try await base.next()
        }
    }
}
