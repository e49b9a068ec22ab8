/// Turns pgoutput row changes into the JSON payloads of `source: wal`, shaped like the journal trigger's (so that a
/// channel's rules read the same under either source):
///
/// ```json
/// {"op":"UPDATE","schema":"public","table":"tasks","key":{"id":7},"row":{"id":7,"state":"done"},"old":{"id":7},"unchanged":["body"]}
/// ```
///
/// - `op`: `INSERT`, `UPDATE`, `DELETE` or `TRUNCATE` (as `TG_OP` says them).
/// - `row`: the row after the change; for a delete, the deleted row as far as the server sends it (the replica
///   identity's columns, or every column under `REPLICA IDENTITY FULL`); null for a truncate. Numbers stay numbers
///   with every digit (`numeric`, `int8`), booleans are booleans, `json`/`jsonb` are embedded as JSON; every other
///   type is its text form, as `psql` prints it. `NaN` and infinities are strings.
/// - `old`: what the server sends of the row before an update or a delete — the replica identity's columns when an
///   update changed them, every column under `REPLICA IDENTITY FULL`; null otherwise.
/// - `key`: the replica identity's columns (from the new row, or the old one for a delete): what to fetch by.
/// - `unchanged`: only when not empty, the columns an update did not touch whose values are stored out of line
///   (TOAST): the server does not send them, and they are not in `row`. Fetch the row (`fetch:`) when you need them.
struct WalChangeEncoder {
    /// What the encoder keeps per table: the parts of every payload that depend on the table only.
    struct Table {
        let relation: PgOutputRelation
        /// `schema.table`: the channel of its changes.
        let channel: String
        /// `"schema":"…","table":"…"`.
        let header: [UInt8]
        /// `"column":` per column.
        let keys: [[UInt8]]
        let kinds: [ValueKind]

        init(_ relation: PgOutputRelation) {
            self.relation = relation
            channel = relation.schema + "." + relation.name
            var header: [UInt8] = []
            JSONBytes.appendString(relation.schema, to: &header, key: "schema")
            header.append(UInt8(ascii: ","))
            JSONBytes.appendString(relation.name, to: &header, key: "table")
            self.header = header
            keys = relation.columns.map { column in
                var bytes: [UInt8] = []
                JSONBytes.appendQuoted(Array(column.name.utf8), to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                return bytes
            }
            kinds = relation.columns.map { ValueKind(typeOID: $0.typeOID) }
        }
    }

    /// How a column's text becomes JSON.
    enum ValueKind {
        case integer, floating, boolean, json, text

        init(typeOID: UInt32) {
            switch typeOID {
            case 20, 21, 23, 26: self = .integer  // int8, int2, int4, oid
            case 700, 701, 1700: self = .floating  // float4, float8, numeric
            case 16: self = .boolean
            case 114, 3802: self = .json  // json, jsonb
            default: self = .text
            }
        }
    }

    enum Operation: String {
        case insert = "INSERT"
        case update = "UPDATE"
        case delete = "DELETE"
    }

    /// The payload of one row change. Throws when a tuple does not match its table's description.
    static func payload(
        _ operation: Operation, table: Table, new: PgOutputMessage.TupleData?, old: PgOutputMessage.TupleData?, oldIsKey: Bool
    ) throws(WalDecodingError) -> String {
        let columns = table.relation.columns.count
        for tuple in [new, old].compactMap({ $0 }) where tuple.values.count != columns {
            throw WalDecodingError(
                message: String(operation.rawValue.prefix(1)), offset: 0,
                reason: "a tuple of \(tuple.values.count) columns for \(table.channel), which has \(columns)")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        bytes += #"{"op":""#.utf8
        bytes += operation.rawValue.utf8
        bytes += #"","#.utf8
        bytes += table.header
        bytes += #","key":"#.utf8
        if let source = operation == .delete ? old : new {
            appendObject(source, table: table, keysOnly: true, to: &bytes)
        } else {
            bytes += "null".utf8
        }
        bytes += #","row":"#.utf8
        if let row = new ?? old {
            appendObject(row, table: table, keysOnly: new == nil && oldIsKey, to: &bytes)
        } else {
            bytes += "null".utf8
        }
        bytes += #","old":"#.utf8
        if let old { appendObject(old, table: table, keysOnly: oldIsKey, to: &bytes) } else { bytes += "null".utf8 }
        if let new, new.values.contains(where: { if case .unchanged = $0 { true } else { false } }) {
            bytes += #","unchanged":["#.utf8
            var first = true
            for (index, value) in new.values.enumerated() {
                guard case .unchanged = value else { continue }
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                bytes += table.keys[index].dropLast()
            }
            bytes.append(UInt8(ascii: "]"))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The payload of a truncated table: `{"op":"TRUNCATE","schema":…,"table":…,"key":null,"row":null,"old":null}`.
    static func truncatePayload(table: Table, cascade: Bool, restartIdentity: Bool) -> String {
        var bytes: [UInt8] = Array(#"{"op":"TRUNCATE","#.utf8)
        bytes += table.header
        bytes += #","key":null,"row":null,"old":null,"cascade":"#.utf8
        bytes += (cascade ? "true" : "false").utf8
        bytes += #","restart_identity":"#.utf8
        bytes += (restartIdentity ? "true" : "false").utf8
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func appendObject(_ tuple: PgOutputMessage.TupleData, table: Table, keysOnly: Bool, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "{"))
        var first = true
        for (index, value) in tuple.values.enumerated() {
            if keysOnly, !table.relation.columns[index].isKey { continue }
            if case .unchanged = value { continue }
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            bytes += table.keys[index]
            switch value {
            case .null, .unchanged:
                bytes += "null".utf8
            case .text(let text):
                appendValue(text, kind: table.kinds[index], to: &bytes)
            }
        }
        bytes.append(UInt8(ascii: "}"))
    }

    private static func appendValue(_ text: UnsafeRawBufferPointer, kind: ValueKind, to bytes: inout [UInt8]) {
        switch kind {
        case .integer:
            bytes.append(contentsOf: text)
        case .floating:
            // NaN, Infinity and -Infinity are not JSON numbers.
            if let last = text.last, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(last) {
                bytes.append(contentsOf: text)
            } else {
                JSONBytes.appendQuoted(text, to: &bytes)
            }
        case .boolean:
            bytes += (text.first == UInt8(ascii: "t") ? "true" : "false").utf8
        case .json:
            bytes.append(contentsOf: text)
        case .text:
            JSONBytes.appendQuoted(text, to: &bytes)
        }
    }
}

/// JSON string quoting on UTF-8 bytes (only ASCII is escaped; multi-byte sequences pass unchanged).
enum JSONBytes {
    private static let hex = Array("0123456789abcdef".utf8)

    static func appendQuoted<Bytes: Collection<UInt8>>(_ text: Bytes, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text {
            switch byte {
            case UInt8(ascii: "\""): bytes += [0x5C, 0x22]
            case UInt8(ascii: "\\"): bytes += [0x5C, 0x5C]
            case 0x0A: bytes += [0x5C, UInt8(ascii: "n")]
            case 0x0D: bytes += [0x5C, UInt8(ascii: "r")]
            case 0x09: bytes += [0x5C, UInt8(ascii: "t")]
            case ..<0x20: bytes += [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `"key":"value"`.
    static func appendString(_ value: String, to bytes: inout [UInt8], key: String) {
        appendQuoted(Array(key.utf8), to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendQuoted(Array(value.utf8), to: &bytes)
    }
}
