import CHiredis
import Testing

@testable import PGEventsRedis

/// Tests `RedisReply.converting` on `redisReply` trees built in memory the way hiredis builds them.
@Suite("RedisReply conversion from hiredis")
struct RedisReplyConversionTests {
    /// A hiredis reply to build; `.raw` sets fields directly to build malformed replies.
    indirect enum Node {
        case status(String)
        case error(String)
        case integer(Int64)
        case string([UInt8])
        case nilReply
        case array([Node])
        case raw(type: Int32, length: Int = 0, elements: Int = 0)
        case arrayWithMissingElement(count: Int)
    }

    /// Owns the memory of one built reply tree and frees it (never with freeReplyObject: it is not hiredis' memory).
    final class Tree {
        private var cleanups: [() -> Void] = []
        private(set) var root: UnsafeMutablePointer<redisReply>?

        init(_ node: Node) {
            root = build(node)
        }

        deinit {
            for cleanup in cleanups.reversed() { cleanup() }
        }

        private func build(_ node: Node) -> UnsafeMutablePointer<redisReply> {
            var value = redisReply()
            switch node {
            case .status(let text):
                setString(&value, type: REDIS_REPLY_STATUS, bytes: Array(text.utf8))
            case .error(let text):
                setString(&value, type: REDIS_REPLY_ERROR, bytes: Array(text.utf8))
            case .string(let bytes):
                setString(&value, type: REDIS_REPLY_STRING, bytes: bytes)
            case .integer(let number):
                value.type = REDIS_REPLY_INTEGER
                value.integer = number
            case .nilReply:
                value.type = REDIS_REPLY_NIL
            case .array(let children):
                value.type = REDIS_REPLY_ARRAY
                value.elements = children.count
                if !children.isEmpty {  // hiredis leaves `element` NULL for an empty array
                    let elements = UnsafeMutablePointer<UnsafeMutablePointer<redisReply>?>.allocate(capacity: children.count)
                    for (index, child) in children.enumerated() {
                        (elements + index).initialize(to: build(child))
                    }
                    cleanups.append { elements.deallocate() }
                    value.element = elements
                }
            case .raw(let type, let length, let elements):
                value.type = type
                value.len = length
                value.elements = elements
            case .arrayWithMissingElement(let count):
                value.type = REDIS_REPLY_ARRAY
                value.elements = count
                let elements = UnsafeMutablePointer<UnsafeMutablePointer<redisReply>?>.allocate(capacity: count)
                elements.initialize(repeating: nil, count: count)
                elements[0] = build(.integer(1))
                cleanups.append { elements.deallocate() }
                value.element = elements
            }
            let reply = UnsafeMutablePointer<redisReply>.allocate(capacity: 1)
            reply.initialize(to: value)
            cleanups.append {
                reply.deinitialize(count: 1)
                reply.deallocate()
            }
            return reply
        }

        /// Copies `bytes` into a NUL-terminated buffer, as hiredis does.
        private func setString(_ value: inout redisReply, type: Int32, bytes: [UInt8]) {
            let storage = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawPointer(storage).copyMemory(from: source.baseAddress ?? UnsafeRawPointer(storage), byteCount: bytes.count)
            }
            storage[bytes.count] = 0
            cleanups.append { storage.deallocate() }
            value.type = type
            value.str = storage
            value.len = bytes.count
        }
    }

    private func convert(_ node: Node) throws(RedisError) -> RedisReply {
        let tree = Tree(node)
        guard let root = tree.root else { throw RedisError(code: .invalidArgument, message: "no tree") }
        return try withExtendedLifetime(tree) { () throws(RedisError) -> RedisReply in
            try RedisReply.converting(UnsafePointer(root))
        }
    }

    private func malformed(_ node: Node, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: RedisError.self, sourceLocation: sourceLocation) { try convert(node) }
        #expect(error?.code == .protocolViolation, sourceLocation: sourceLocation)
    }

    @Test func scalars() throws {
        #expect(try convert(.status("OK")) == .status("OK"))
        #expect(
            try convert(.error("WRONGTYPE Operation against a key holding the wrong kind of value"))
                == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        #expect(try convert(.integer(Int64.max)) == .integer(Int64.max))
        #expect(try convert(.integer(Int64.min)) == .integer(Int64.min))
        #expect(try convert(.integer(0)) == .integer(0))
        #expect(try convert(.nilReply) == .null)
    }

    @Test func bulkStringsAreBinarySafe() throws {
        let bytes: [UInt8] = [0x61, 0x00, 0xFF, 0x00, 0x0A]
        #expect(try convert(.string(bytes)) == .bulk(bytes))
        #expect(try convert(.string([])) == .bulk([]))
        let large = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try convert(.string(large)) == .bulk(large))
    }

    @Test func emptyStringWithoutStorage() throws {
        #expect(try convert(.raw(type: REDIS_REPLY_STRING)) == .bulk([]))
        #expect(try convert(.raw(type: REDIS_REPLY_STATUS)) == .status(""))
    }

    @Test func flatArray() throws {
        let reply = try convert(.array([.string(Array("jobs".utf8)), .string(Array("payload".utf8))]))
        #expect(reply == .array([.bulk(Array("jobs".utf8)), .bulk(Array("payload".utf8))]))
    }

    @Test func emptyArray() throws {
        #expect(try convert(.array([])) == .array([]))
    }

    @Test func nestedArraysWithNilAndErrors() throws {
        // e.g. the reply to EXEC, or XREAD: arrays of arrays with nils and errors inside.
        let node = Node.array([
            .integer(1),
            .nilReply,
            .array([
                .string([0x00]),
                .array([.status("QUEUED"), .error("ERR inner"), .array([])]),
                .nilReply,
            ]),
            .string(Array("end".utf8)),
        ])
        let expected = RedisReply.array([
            .integer(1),
            .null,
            .array([
                .bulk([0x00]),
                .array([.status("QUEUED"), .error("ERR inner"), .array([])]),
                .null,
            ]),
            .bulk(Array("end".utf8)),
        ])
        #expect(try convert(node) == expected)
    }

    @Test func largeArray() throws {
        let reply = try convert(.array((0..<10_000).map { .integer(Int64($0)) }))
        #expect(reply.array?.count == 10_000)
        #expect(reply.array?.last == .integer(9_999))
    }

    @Test func malformedReplies() {
        malformed(.raw(type: 99))
        malformed(.raw(type: 0))
        malformed(.raw(type: REDIS_REPLY_STRING, length: 3))  // no storage for three bytes
        malformed(.raw(type: REDIS_REPLY_ERROR, length: 1))
        malformed(.raw(type: REDIS_REPLY_ARRAY, elements: 2))  // no element vector
        malformed(.raw(type: REDIS_REPLY_ARRAY, elements: -3))  // a negative count (size_t (-3)) is no empty array
        malformed(.raw(type: REDIS_REPLY_STRING, length: -1))
        malformed(.arrayWithMissingElement(count: 3))
        malformed(.array([.integer(1), .array([.raw(type: 42)])]))  // deep inside
    }
}

/// `RedisReply.parse(resp:)`: hiredis' reader and the conversion, on bytes.
@Suite("RedisReply.parse(resp:)")
struct RedisReplyParseTests {
    @Test("whole replies of every RESP2 type, in order")
    func replies() throws {
        let bytes = Array("+OK\r\n-ERR no\r\n:-42\r\n$3\r\na\u{0}b\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n*1\r\n:1\r\n+x\r\n".utf8)
        #expect(
            try RedisReply.parse(resp: bytes) == [
                .status("OK"), .error("ERR no"), .integer(-42), .bulk([0x61, 0, 0x62]), .bulk([]), .null, .null, .array([]),
                .array([.array([.integer(1)]), .status("x")]),
            ])
        #expect(try RedisReply.parse(resp: []) == [])
        // Bytes that are not UTF-8 stay bytes in a bulk string.
        #expect(try RedisReply.parse(resp: [0x24, 0x32, 0x0D, 0x0A, 0xFF, 0xFE, 0x0D, 0x0A]) == [.bulk([0xFF, 0xFE])])
    }

    @Test(
        "malformed and incomplete input is a protocol violation with hiredis' reason",
        arguments: [
            ("?what\r\n", "Protocol error, got \"?\" as reply type byte"),
            (":abc\r\n", "Bad integer value"),
            ("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "No support for nested multi bulk replies with depth > 7"),
            ("+OK\r\n*2\r\n$5\r\nhel", "the bytes end inside a reply (1 complete before it)"),
            ("+OK", "the bytes end inside a reply (0 complete before it)"),
            ("*2\r\n:1\r\n", "the bytes end inside a reply"),
            ("$3\r\nab", "the bytes end inside a reply"),
        ])
    func malformed(resp: String, message: String) {
        let error = #expect(throws: RedisError.self) { try RedisReply.parse(resp: Array(resp.utf8)) }
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.hasPrefix(message) == true, "\(error?.message ?? "no error")")
    }

    // Found by fuzzing (FuzzTests, Benchmarks/Fuzz): hiredis allocates an array's element vector when it reads
    // the header, 16 GiB for *2147483647, and walking it to free it took seconds to over a minute. How long the
    // refusal takes is not asserted (speed belongs to benchmarks); the time limit is a hang guard.
    @Test("an array header promising more elements than the bytes can hold is refused at once", .timeLimit(.minutes(1)))
    func hugeArrays() throws {
        for header in ["*2147483647\r\n", "*2\r\n:1\r\n*2147483647\r\n$2\r\nok\r\n", String(repeating: "*2147483647\r\n", count: 20)] {
            let error = #expect(throws: RedisError.self) { try RedisReply.parse(resp: Array(header.utf8)) }
            #expect(
                error?.message.hasPrefix("an array header promises 2147483647 elements, more than the") == true,
                "\(error?.message ?? "no error")")
        }
        // The bound is the input's size: an array that could still be complete is read.
        #expect(try RedisReply.parse(resp: Array("*2\r\n+\r\n+\r\n".utf8)) == [.array([.status(""), .status("")])])
    }
}
