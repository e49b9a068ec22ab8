import Foundation
import Logging
import PGEventsPostgres
import Testing

@testable import PGEvents

/// Builds protocol messages byte by byte, as the server writes them.
struct WireBuilder {
    var bytes: [UInt8] = []
    mutating func byte(_ value: Character) { bytes.append(value.asciiValue!) }
    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
    mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    mutating func string(_ value: String) { bytes += Array(value.utf8) + [0] }
    mutating func text(_ value: String) {
        byte("t")
        u32(UInt32(value.utf8.count))
        bytes += Array(value.utf8)
    }
}

func decode(_ builder: WireBuilder) throws -> PgOutputMessage {
    try builder.bytes.withUnsafeBytes { try PgOutputMessage.read($0) }
}

/// `public.tasks (id int8 key, state text, amount numeric, done bool, meta jsonb, body text)`.
func tasksRelation() -> WireBuilder {
    var relation = WireBuilder()
    relation.byte("R")
    relation.u32(16_384)
    relation.string("public")
    relation.string("tasks")
    relation.byte("d")
    relation.u16(6)
    for (name, type, key) in [
        ("id", UInt32(20), true), ("state", 25, false), ("amount", 1700, false), ("done", 16, false), ("meta", 3802, false),
        ("body", 25, false),
    ] {
        relation.u8(key ? 1 : 0)
        relation.string(name)
        relation.u32(type)
        relation.u32(UInt32.max)
    }
    return relation
}

@Suite("WAL decoding: replication framing, pgoutput messages, change payloads")
struct WalDecodingTests {
    @Test("LSNs read and print as PostgreSQL writes them")
    func logSequenceNumbers() {
        #expect(LogSequenceNumber("16/B374D848")?.rawValue == 0x16_B374_D848)
        #expect(LogSequenceNumber("16/B374D848")?.description == "16/B374D848")
        #expect(LogSequenceNumber("0/0") == .zero)
        for bad in ["", "16", "16/", "/1", "x/1", "1/2/3", "123456789/0"] { #expect(LogSequenceNumber(bad) == nil, "\(bad)") }
    }

    @Test("a status update confirms one position for write, flush and apply")
    func statusUpdate() {
        let bytes = ReplicationMessage.statusUpdate(flushed: LogSequenceNumber(rawValue: 0x0102_0304_0506_0708), now: 1)
        #expect(bytes.count == 34)
        #expect(bytes[0] == UInt8(ascii: "r"))
        #expect(
            Array(bytes[1...8]) == [1, 2, 3, 4, 5, 6, 7, 8] && Array(bytes[9...16]) == [1, 2, 3, 4, 5, 6, 7, 8]
                && Array(bytes[17...24]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(bytes[33] == 0)
    }

    @Test("keepalives and WAL data are told apart; a reply request is seen")
    func framing() throws {
        var keepalive = WireBuilder()
        keepalive.byte("k")
        keepalive.u64(0x10)
        keepalive.u64(0)
        keepalive.u8(1)
        try keepalive.bytes.withUnsafeBytes { bytes in
            guard case .keepalive(let end, let reply) = try ReplicationMessage.read(bytes) else {
                Issue.record("not a keepalive")
                return
            }
            #expect(end.rawValue == 0x10 && reply)
        }
        var data = WireBuilder()
        data.byte("w")
        data.u64(1)
        data.u64(2)
        data.u64(3)
        data.byte("B")
        try data.bytes.withUnsafeBytes { bytes in
            guard case .walData(let start, let end, let payload) = try ReplicationMessage.read(bytes) else {
                Issue.record("not WAL data")
                return
            }
            #expect(start.rawValue == 1 && end.rawValue == 2 && Array(payload) == [UInt8(ascii: "B")])
        }
    }

    @Test("every truncated or unknown message is an error naming the message and the byte, never a crash")
    func malformed() throws {
        let relation = tasksRelation().bytes
        for length in 0..<relation.count {
            #expect(throws: WalDecodingError.self) { try Array(relation[..<length]).withUnsafeBytes { try PgOutputMessage.read($0) } }
        }
        var unknown = WireBuilder()
        unknown.byte("Z")
        let error = #expect(throws: WalDecodingError.self) { try decode(unknown) }
        #expect(
            error?.description
                == "cannot decode replication message 'Z' at byte 1: unknown pgoutput message kind (is the slot's plugin pgoutput, protocol version 1?)"
        )
        var huge = WireBuilder()
        huge.byte("I")
        huge.u32(1)
        huge.byte("N")
        huge.u16(1)
        huge.byte("t")
        huge.u32(UInt32.max)
        #expect(throws: WalDecodingError.self) { try decode(huge) }
        var manyRelations = WireBuilder()
        manyRelations.byte("T")
        manyRelations.u32(UInt32.max)
        manyRelations.u8(0)
        #expect(throws: WalDecodingError.self) { try decode(manyRelations) }
    }

    @Test("row changes become typed JSON: numbers keep every digit, NaN is a string, json is embedded, TOAST-unchanged is listed")
    func payloads() throws {
        guard case .relation(let relation) = try decode(tasksRelation()) else {
            Issue.record("not a relation")
            return
        }
        let table = WalChangeEncoder.Table(relation)
        #expect(table.channel == "public.tasks")
        var insert = WireBuilder()
        insert.byte("I")
        insert.u32(16_384)
        insert.byte("N")
        insert.u16(6)
        insert.text("7")
        insert.text("say \"hi\"\n\u{1}")
        insert.text("123456789012345678901234567890.5")
        insert.text("t")
        insert.text(#"{"a": 1}"#)
        insert.byte("n")
        guard case .insert(_, let new) = try decode(insert) else {
            Issue.record("not an insert")
            return
        }
        #expect(
            try WalChangeEncoder.payload(.insert, table: table, new: new, old: nil, oldIsKey: false)
                == #"{"op":"INSERT","schema":"public","table":"tasks","key":{"id":7},"row":{"id":7,"state":"say \"hi\"\n\u0001","amount":123456789012345678901234567890.5,"done":true,"meta":{"a": 1},"body":null},"old":null}"#
        )
        var update = WireBuilder()
        update.byte("U")
        update.u32(16_384)
        update.byte("K")
        update.u16(6)
        update.text("7")
        for _ in 0..<5 { update.byte("n") }
        update.byte("N")
        update.u16(6)
        update.text("8")
        update.text("x")
        update.text("NaN")
        update.text("f")
        update.byte("n")
        update.byte("u")
        guard case .update(_, let old, let oldIsKey, let changed) = try decode(update) else {
            Issue.record("not an update")
            return
        }
        #expect(
            try WalChangeEncoder.payload(.update, table: table, new: changed, old: old, oldIsKey: oldIsKey)
                == #"{"op":"UPDATE","schema":"public","table":"tasks","key":{"id":8},"row":{"id":8,"state":"x","amount":"NaN","done":false,"meta":null},"old":{"id":7},"unchanged":["body"]}"#
        )
        var short = WireBuilder()
        short.byte("I")
        short.u32(16_384)
        short.byte("N")
        short.u16(1)
        short.text("7")
        guard case .insert(_, let partial) = try decode(short) else {
            Issue.record("not an insert")
            return
        }
        #expect(throws: WalDecodingError.self) {
            try WalChangeEncoder.payload(.insert, table: table, new: partial, old: nil, oldIsKey: false)
        }
    }

    @Test("source: wal reads its slot and publication, with defaults from the consumer and names checked")
    func configuration() throws {
        let defaults = try ProcessorConfiguration(yaml: "source: wal\nconsumer: Task-Queue\nchannels: {public.tasks: {queue: q}}\n")
        #expect(defaults.wal == .init(slot: "pgevents_task_queue", publication: "pgevents_task_queue", messages: true))
        let given = try ProcessorConfiguration(
            yaml: "source: wal\nwal: {slot: s1, publication: p1, messages: false}\nchannels: {public.tasks: {queue: q}}\n")
        #expect(given.wal == .init(slot: "s1", publication: "p1", messages: false))
        let bad = #expect(throws: ProcessorError.self) {
            try ProcessorConfiguration(yaml: "source: wal\nwal: {slot: Bad-Slot}\nchannels: {public.tasks: {queue: q}}\n")
        }
        #expect(
            bad?.message.contains("'slot' must be 1 to 63 lower-case letters, digits and underscores, got 'Bad-Slot'") == true,
            "\(String(describing: bad))")
        let misplaced = #expect(throws: ProcessorError.self) {
            try ProcessorConfiguration(yaml: "wal: {slot: s}\nchannels: {new_event: {queue: q}}\n")
        }
        #expect(misplaced?.message.contains("'wal' is only read with source: wal") == true)
    }

    @Test("wal.status_interval: seconds between confirmations to the slot, 0.1 unless given, 0.001 to 60")
    func statusInterval() throws {
        let defaults = try ProcessorConfiguration(yaml: "source: wal\nchannels: {public.tasks: {queue: q}}\n")
        #expect(defaults.wal?.statusInterval == .milliseconds(100))
        let given = try ProcessorConfiguration(yaml: "source: wal\nwal: {status_interval: 2.5}\nchannels: {public.tasks: {queue: q}}\n")
        #expect(given.wal?.statusInterval == .milliseconds(2_500))
        for bad in ["0", "61", "soon"] {
            let error = #expect(throws: ProcessorError.self) {
                try ProcessorConfiguration(yaml: "source: wal\nwal: {status_interval: \(bad)}\nchannels: {public.tasks: {queue: q}}\n")
            }
            let message = error?.message ?? ""
            #expect(message.contains(":2:") && message.contains("status_interval"), "\(message)")
        }
    }
}

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    final class Lines: @unchecked Sendable {  // guarded by the lock
        let lock = NSLock()
        var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
    }

    @Test("one object per line: time, level, label, message, metadata as fields (nested kept), reserved keys prefixed, text escaped")
    func lines() throws {
        let captured = Lines()
        var logger = Logger(label: "pgevents.test") { label in JSONLogHandler(label: label) { captured.append($0) } }
        logger[metadataKey: "consumer"] = "tasks"
        logger.info("line one\nwith \"quotes\"", metadata: ["message": "shadow", "list": ["a", "b"], "nested": ["k": "v"]])
        let line = try #require(captured.lines.first)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info" && object["label"] as? String == "pgevents.test")
        #expect(object["message"] as? String == "line one\nwith \"quotes\"")
        #expect(object["meta_message"] as? String == "shadow" && object["consumer"] as? String == "tasks")
        #expect(object["list"] as? [String] == ["a", "b"] && (object["nested"] as? [String: String]) == ["k": "v"])
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
    }
}
