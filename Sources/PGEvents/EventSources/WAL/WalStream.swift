import Logging
import PGEventsPostgres

import struct Foundation.Date

/// One streaming session of a logical replication slot: reads pgoutput messages from a replication connection and
/// turns them into ``SourceEvent``s, in commit order.
///
/// It runs on its connection's own thread (it shares the connection's executor), so reading and decoding never
/// hop threads, and the connection's socket is read only when `read` asks: a slow delivery slows the walsender
/// instead of filling memory.
///
/// Positions: an event's `batch` is its transaction's commit LSN and its `seq` its index among the transaction's
/// changes, so `(batch, seq)` orders events in commit order, the same way in every replay. A read's `position` is
/// the LSN that may be confirmed once its events are delivered: the end of the last transaction it finished (or,
/// when no transaction is open, how far the server says it has looked at the WAL).
///
/// Confirmations: a delivered position is sent to the server (a standby status update) at most once per
/// `confirmInterval`; one held back goes out with the first acknowledgement after the interval (the processor's
/// idle catch-up drain acknowledges too), with the answer to a keepalive, and before the stream closes. Each update
/// wakes the WAL sender, which decodes for the writers' commits on the same cores; a position confirmed late only
/// means a longer replay after a crash, which the writer's delivered positions make harmless.
actor WalStream {
    let connection: PostgresConnection
    nonisolated var unownedExecutor: UnownedSerialExecutor { connection.unownedExecutor }

    /// What a read returned.
    struct Read: Sendable {
        var events: [SourceEvent]
        /// The LSN to confirm once `events` (and everything read before them) are delivered.
        var position: LogSequenceNumber
        /// Nothing more was waiting.
        var drained: Bool
        /// The transaction IDs (32 bits, as pgoutput sends them) of the events, each once.
        var transactionIDs: [UInt32]
    }

    private let channels: Set<String>
    private let messages: Bool
    private let logger: Logger
    /// Each relation's encoder, and whether its channel is delivered (decided once per description, not per row).
    private var tables: [UInt32: (table: WalChangeEncoder.Table, delivered: Bool)] = [:]
    /// The transaction being read: its commit LSN, commit time, and the index of its next change.
    private var open: (lsn: LogSequenceNumber, time: Date, next: Int64, xid: UInt32)?
    private var finished: LogSequenceNumber
    private var serverEnd: LogSequenceNumber = .zero
    /// The LSN last sent to the server as flushed.
    private(set) var confirmed: LogSequenceNumber
    /// The LSN delivered (at or past `confirmed`), sent with the next status update.
    private var delivered: LogSequenceNumber
    private var lastStatusUpdate: ContinuousClock.Instant?
    let confirmInterval: Duration
    private var warnedNonTransactional = false
    private var skippedChannels: Set<String> = []

    /// Wraps a connection already streaming (``PostgresConnection/startCopyBoth(_:)``).
    init(
        connection: PostgresConnection, confirmed: LogSequenceNumber, confirmInterval: Duration, channels: Set<String>, messages: Bool,
        logger: Logger
    ) {
        self.connection = connection
        self.confirmed = confirmed
        self.delivered = confirmed
        self.confirmInterval = confirmInterval
        self.finished = confirmed
        self.channels = channels
        self.messages = messages
        self.logger = logger
    }

    /// Reads what is waiting, up to about `limit` events and `maxBytes` payload bytes, without waiting.
    func read(limit: Int, maxBytes: Int) throws -> Read {
        var events: [SourceEvent] = []
        var bytes = 0
        var drained = false
        var replyRequested = false
        var transactionIDs: [UInt32] = []
        while events.count < limit, bytes < maxBytes {
            // One copy of each message out of libpq (a few hundred bytes): the decoding then owns its bytes.
            guard let message = try connection.assumeIsolated({ connection in try connection.readCopyData { Array($0) } }) else {
                drained = true
                break
            }
            let before = events.count
            try message.withUnsafeBytes { try handle($0, into: &events, bytes: &bytes, replyRequested: &replyRequested) }
            if events.count > before, let xid = open?.xid, transactionIDs.last != xid { transactionIDs.append(xid) }
        }
        if replyRequested { try sendStatusUpdate() }
        var position = finished
        if drained, open == nil, serverEnd > position { position = serverEnd }
        return Read(events: events, position: position, drained: drained, transactionIDs: transactionIDs)
    }

    /// Records that everything up to `position` is delivered, and tells the server (a standby status update) unless
    /// one went out less than `confirmInterval` ago: then the next call after the interval sends it (the delivery
    /// acknowledges every drain, the idle catch-up's too), or the stream's close.
    func confirm(_ position: LogSequenceNumber) throws {
        delivered = max(delivered, position)
        guard delivered > confirmed else { return }
        if let lastStatusUpdate, ContinuousClock.now - lastStatusUpdate < confirmInterval { return }
        try sendStatusUpdate()
    }

    /// Sends the delivered position if the server does not have it yet.
    func flushConfirmation() throws {
        if delivered > confirmed { try sendStatusUpdate() }
    }

    /// Sends the delivered position, whether or not it moved (the answer to a keepalive, a stream's first message).
    func sendStatusUpdate() throws {
        let update = ReplicationMessage.statusUpdate(flushed: delivered, now: Self.postgresNow())
        try connection.assumeIsolated { try $0.sendCopyData(update) }
        confirmed = delivered
        lastStatusUpdate = .now
    }

    /// Waits until the server sends something (or the connection ends).
    func waitForData() async throws {
        try await connection.waitForCopyData()
    }

    func close() async {
        await connection.close()
    }

    private func handle(_ message: UnsafeRawBufferPointer, into events: inout [SourceEvent], bytes: inout Int, replyRequested: inout Bool)
        throws
    {
        switch try ReplicationMessage.read(message) {
        case .keepalive(let walEnd, let reply):
            serverEnd = max(serverEnd, walEnd)
            if reply { replyRequested = true }
        case .walData(_, let end, let data):
            serverEnd = max(serverEnd, end)
            try decode(try PgOutputMessage.read(data), into: &events, bytes: &bytes)
        }
    }

    private func decode(_ message: PgOutputMessage, into events: inout [SourceEvent], bytes: inout Int) throws {
        switch message {
        case .begin(let lsn, let time, let xid):
            open = (lsn, Self.date(postgresMicroseconds: time), 0, xid)
        case .commit(_, let end, _):
            open = nil
            finished = max(finished, end)
        case .relation(let relation):
            let table = WalChangeEncoder.Table(relation)
            tables[relation.id] = (table, channels.contains(table.channel))
        case .insert(let id, let new):
            try append(table: id, into: &events, bytes: &bytes) {
                try WalChangeEncoder.payload(.insert, table: $0, new: new, old: nil, oldIsKey: false)
            }
        case .update(let id, let old, let oldIsKey, let new):
            try append(table: id, into: &events, bytes: &bytes) {
                try WalChangeEncoder.payload(.update, table: $0, new: new, old: old, oldIsKey: oldIsKey)
            }
        case .delete(let id, let old, let oldIsKey):
            try append(table: id, into: &events, bytes: &bytes) {
                try WalChangeEncoder.payload(.delete, table: $0, new: nil, old: old, oldIsKey: oldIsKey)
            }
        case .truncate(let ids, let cascade, let restart):
            for id in ids {
                try append(table: id, into: &events, bytes: &bytes) {
                    WalChangeEncoder.truncatePayload(table: $0, cascade: cascade, restartIdentity: restart)
                }
            }
        case .message(let transactional, let lsn, let prefix, let content):
            guard messages, prefix.hasPrefix(WalSource.messagePrefix) else { return }
            let channel = String(prefix.dropFirst(WalSource.messagePrefix.count))
            guard transactional else {
                if !warnedNonTransactional {
                    warnedNonTransactional = true
                    logger.warning(
                        "a non-transactional pgevents message was skipped: use pgevents.emit_wal, which is transactional",
                        metadata: [
                            "channel": "\(channel)", "lsn": "\(lsn)",
                        ])
                }
                return
            }
            try appendEvent(
                channel: channel, payload: channels.contains(channel) ? String(decoding: content, as: UTF8.self) : nil, into: &events,
                bytes: &bytes)
        case .ignored:
            break
        }
    }

    private func append(
        table id: UInt32, into events: inout [SourceEvent], bytes: inout Int, payload: (WalChangeEncoder.Table) throws -> String
    ) throws {
        guard let (table, delivered) = tables[id] else {
            throw WalDecodingError(
                message: "change", offset: 0, reason: "a change of relation \(id) before its description (the server sends one first)")
        }
        try appendEvent(channel: table.channel, payload: delivered ? try payload(table) : nil, into: &events, bytes: &bytes)
    }

    /// Appends an event of the open transaction. A nil payload (a channel the processor does not deliver) only takes
    /// its index, so that positions do not depend on the configuration.
    private func appendEvent(channel: String, payload: String?, into events: inout [SourceEvent], bytes: inout Int) throws {
        guard let transaction = open else {
            throw WalDecodingError(message: "change", offset: 0, reason: "a change outside a transaction")
        }
        open?.next += 1
        guard let payload else {
            if skippedChannels.insert(channel).inserted {
                logger.info("changes of a channel that is not configured are skipped", metadata: ["channel": "\(channel)"])
            }
            return
        }
        bytes += payload.utf8.count
        events.append(
            SourceEvent(
                seq: transaction.next, batch: Int64(bitPattern: transaction.lsn.rawValue), channel: channel, payload: payload,
                createdAt: transaction.time))
    }

    /// Microseconds since 2000-01-01 00:00 UTC, PostgreSQL's epoch.
    static func postgresNow() -> Int64 {
        Int64((Date().timeIntervalSince1970 - postgresEpoch) * 1_000_000)
    }

    static func date(postgresMicroseconds: Int64) -> Date {
        Date(timeIntervalSince1970: postgresEpoch + Double(postgresMicroseconds) / 1_000_000)
    }

    private static let postgresEpoch = 946_684_800.0
}
