package import PGEventsPostgres

/// One message of the `pgoutput` plugin (protocol version 1, with `messages`), as the walsender sends it inside
/// WAL data. Values of tuples point into the message's bytes: use them before reading the next message.
package enum PgOutputMessage {
    /// A transaction begins; `commitLSN` is where its commit record is (known up front: transactions are sent at
    /// commit), `commitTime` in microseconds since 2000-01-01.
    case begin(commitLSN: LogSequenceNumber, commitTime: Int64, xid: UInt32)
    /// The transaction ends; confirming `endLSN` tells the slot it need not send it again.
    case commit(commitLSN: LogSequenceNumber, endLSN: LogSequenceNumber, commitTime: Int64)
    /// A table's description, sent before its first change in a stream (and again after it changes).
    case relation(PgOutputRelation)
    case insert(relation: UInt32, new: TupleData)
    /// `old` is sent for a changed key (`key`: the identity columns only) or under `REPLICA IDENTITY FULL`.
    case update(relation: UInt32, old: TupleData?, oldIsKey: Bool, new: TupleData)
    case delete(relation: UInt32, old: TupleData, oldIsKey: Bool)
    case truncate(relations: [UInt32], cascade: Bool, restartIdentity: Bool)
    /// `pg_logical_emit_message`: `transactional` ones come between begin and commit.
    case message(transactional: Bool, lsn: LogSequenceNumber, prefix: String, content: UnsafeRawBufferPointer)
    /// Type descriptions and replication origins: nothing to deliver.
    case ignored

    /// One row's values in the order of the relation's columns.
    package struct TupleData {
        package enum Value {
            case null
            /// A TOASTed value the change did not touch: the server does not send it again.
            case unchanged
            case text(UnsafeRawBufferPointer)
        }
        package var values: [Value]
    }

    package static func read(_ bytes: UnsafeRawBufferPointer) throws(WalDecodingError) -> PgOutputMessage {
        var reader = WireReader(bytes)
        let kind = try reader.uint8()
        reader.message = String(UnicodeScalar(kind))
        switch kind {
        case UInt8(ascii: "B"):
            let lsn = LogSequenceNumber(rawValue: try reader.uint64())
            let time = try reader.int64()
            return .begin(commitLSN: lsn, commitTime: time, xid: try reader.uint32())
        case UInt8(ascii: "C"):
            _ = try reader.uint8()  // flags, unused
            let commit = LogSequenceNumber(rawValue: try reader.uint64())
            let end = LogSequenceNumber(rawValue: try reader.uint64())
            return .commit(commitLSN: commit, endLSN: end, commitTime: try reader.int64())
        case UInt8(ascii: "R"):
            return .relation(try PgOutputRelation.read(&reader))
        case UInt8(ascii: "I"):
            let relation = try reader.uint32()
            guard try reader.uint8() == UInt8(ascii: "N") else { throw reader.error("an insert without its new tuple ('N')") }
            return .insert(relation: relation, new: try tuple(&reader))
        case UInt8(ascii: "U"):
            let relation = try reader.uint32()
            var marker = try reader.uint8()
            var old: TupleData?
            var oldIsKey = false
            if marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") {
                oldIsKey = marker == UInt8(ascii: "K")
                old = try tuple(&reader)
                marker = try reader.uint8()
            }
            guard marker == UInt8(ascii: "N") else { throw reader.error("an update without its new tuple ('N')") }
            return .update(relation: relation, old: old, oldIsKey: oldIsKey, new: try tuple(&reader))
        case UInt8(ascii: "D"):
            let relation = try reader.uint32()
            let marker = try reader.uint8()
            guard marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") else {
                throw reader.error("a delete without its old tuple ('K' or 'O')")
            }
            return .delete(relation: relation, old: try tuple(&reader), oldIsKey: marker == UInt8(ascii: "K"))
        case UInt8(ascii: "T"):
            let count = try reader.uint32()
            guard count <= UInt32(reader.remaining / 4) else {
                throw reader.error("\(count) relations in a truncate, more than the message holds")
            }
            let options = try reader.uint8()
            var relations: [UInt32] = []
            relations.reserveCapacity(Int(count))
            for _ in 0..<count { relations.append(try reader.uint32()) }
            return .truncate(relations: relations, cascade: options & 1 != 0, restartIdentity: options & 2 != 0)
        case UInt8(ascii: "M"):
            let flags = try reader.uint8()
            let lsn = LogSequenceNumber(rawValue: try reader.uint64())
            let prefix = try reader.cString()
            let length = try reader.uint32()
            guard length <= UInt32(Int32.max) else { throw reader.error("a message content of \(length) bytes") }
            return .message(transactional: flags & 1 != 0, lsn: lsn, prefix: prefix, content: try reader.take(Int(length)))
        case UInt8(ascii: "Y"), UInt8(ascii: "O"):
            return .ignored
        default:
            throw reader.error("unknown pgoutput message kind (is the slot's plugin pgoutput, protocol version 1?)")
        }
    }

    private static func tuple(_ reader: inout WireReader) throws(WalDecodingError) -> TupleData {
        let count = Int(try reader.uint16())
        var values: [TupleData.Value] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            switch try reader.uint8() {
            case UInt8(ascii: "n"): values.append(.null)
            case UInt8(ascii: "u"): values.append(.unchanged)
            case UInt8(ascii: "t"):
                let length = try reader.uint32()
                guard length <= UInt32(Int32.max) else { throw reader.error("a value of \(length) bytes") }
                values.append(.text(try reader.take(Int(length))))
            case UInt8(ascii: "b"):
                throw reader.error("a binary value (the stream was started without binary mode; pgevents asks for text)")
            case let other:
                throw reader.error("unknown tuple value kind '\(UnicodeScalar(other))'")
            }
        }
        return TupleData(values: values)
    }
}

/// A table as pgoutput describes it: enough to turn its tuples into JSON rows.
package struct PgOutputRelation: Sendable {
    package struct Column: Sendable {
        package var name: String
        package var typeOID: UInt32
        /// Part of the replica identity (the primary key, the identity index, or every column under `FULL`).
        package var isKey: Bool
    }
    package var id: UInt32
    package var schema: String
    package var name: String
    /// `d` default, `n` nothing, `f` full, `i` index.
    package var replicaIdentity: UInt8
    package var columns: [Column]

    static func read(_ reader: inout WireReader) throws(WalDecodingError) -> PgOutputRelation {
        let id = try reader.uint32()
        let schema = try reader.cString()
        let name = try reader.cString()
        let identity = try reader.uint8()
        let count = Int(try reader.uint16())
        var columns: [Column] = []
        columns.reserveCapacity(count)
        for _ in 0..<count {
            let flags = try reader.uint8()
            let column = try reader.cString()
            let type = try reader.uint32()
            _ = try reader.uint32()  // type modifier
            columns.append(Column(name: column, typeOID: type, isKey: flags & 1 != 0))
        }
        // pg_catalog's default schema is sent as an empty string.
        return PgOutputRelation(
            id: id, schema: schema.isEmpty ? "pg_catalog" : schema, name: name, replicaIdentity: identity, columns: columns)
    }
}
