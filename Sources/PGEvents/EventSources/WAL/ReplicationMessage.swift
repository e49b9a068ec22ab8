import PGEventsPostgres

/// A CopyData message of the streaming replication protocol, server to client.
enum ReplicationMessage {
    /// `w`: WAL data; for logical replication, one message of the output plugin.
    case walData(start: LogSequenceNumber, end: LogSequenceNumber, data: UnsafeRawBufferPointer)
    /// `k`: the server's keepalive; with `replyRequested`, it ends the connection unless a status update follows
    /// within `wal_sender_timeout`.
    case keepalive(walEnd: LogSequenceNumber, replyRequested: Bool)

    /// Reads one message; the data of `walData` points into `bytes`.
    static func read(_ bytes: UnsafeRawBufferPointer) throws(WalDecodingError) -> ReplicationMessage {
        var reader = WireReader(bytes)
        let kind = try reader.uint8()
        reader.message = String(UnicodeScalar(kind))
        switch kind {
        case UInt8(ascii: "w"):
            let start = LogSequenceNumber(rawValue: try reader.uint64())
            let end = LogSequenceNumber(rawValue: try reader.uint64())
            _ = try reader.uint64()  // the server's clock
            return .walData(start: start, end: end, data: UnsafeRawBufferPointer(rebasing: bytes[reader.offset...]))
        case UInt8(ascii: "k"):
            let end = LogSequenceNumber(rawValue: try reader.uint64())
            _ = try reader.uint64()
            return .keepalive(walEnd: end, replyRequested: try reader.uint8() != 0)
        default:
            throw reader.error("unknown replication message kind")
        }
    }

    /// The standby status update (`r`) that confirms `flushed`: the slot's `confirmed_flush_lsn` moves to it, and the
    /// server may recycle the WAL before it. `now` is in microseconds since 2000-01-01, PostgreSQL's epoch.
    static func statusUpdate(flushed: LogSequenceNumber, now: Int64, replyRequested: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "r")]
        bytes.reserveCapacity(34)
        for value in [flushed.rawValue, flushed.rawValue, flushed.rawValue, UInt64(bitPattern: now)] {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        }
        bytes.append(replyRequested ? 1 : 0)
        return bytes
    }
}
