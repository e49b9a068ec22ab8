import PGEventsRedis
import Testing

@Suite("RedisReply")
struct RedisReplyTests {
    @Test func stringAccessor() {
        #expect(RedisReply.status("OK").string == "OK")
        #expect(RedisReply.bulk(Array("jörg".utf8)).string == "jörg")
        #expect(RedisReply.bulk([0xFF, 0xFE]).string == nil)  // not UTF-8
        #expect(RedisReply.bulk([]).string == "")
        #expect(RedisReply.error("ERR x").string == nil)
        #expect(RedisReply.integer(1).string == nil)
        #expect(RedisReply.null.string == nil)
    }

    @Test func otherAccessors() {
        #expect(RedisReply.integer(-5).integer == -5)
        #expect(RedisReply.bulk(Array("5".utf8)).integer == nil)
        #expect(RedisReply.array([.null]).array == [.null])
        #expect(RedisReply.null.array == nil)
        #expect(RedisReply.bulk([0, 1]).bytes == [0, 1])
        #expect(RedisReply.status("OK").bytes == Array("OK".utf8))
        #expect(RedisReply.integer(1).bytes == nil)
        #expect(RedisReply.null.isNull)
        #expect(!RedisReply.bulk([]).isNull)
        #expect(!RedisReply.array([]).isNull)
        #expect(RedisReply.error("ERR no").errorMessage == "ERR no")
        #expect(RedisReply.status("ERR no").errorMessage == nil)
    }

    @Test func descriptionOfScalarsLikeRedisCli() {
        #expect(RedisReply.status("OK").description == "OK")
        #expect(RedisReply.error("ERR unknown command").description == "(error) ERR unknown command")
        #expect(RedisReply.integer(42).description == "(integer) 42")
        #expect(RedisReply.null.description == "(nil)")
        #expect(RedisReply.bulk(Array("hello".utf8)).description == "\"hello\"")
        #expect(RedisReply.bulk([]).description == "\"\"")
        #expect(RedisReply.array([]).description == "(empty array)")
    }

    @Test func bulkEscapesLikeSdscatrepr() {
        let bytes: [UInt8] = [0x61, 0x00, 0xFF, 0x0A, 0x0D, 0x09, 0x07, 0x08, 0x22, 0x5C, 0x7F, 0x20] + Array("é".utf8)
        #expect(RedisReply.bulk(bytes).description == #""a\x00\xff\n\r\t\a\b\"\\\x7f \xc3\xa9""#)
    }

    @Test func descriptionOfArraysLikeRedisCli() {
        let flat = RedisReply.array([.bulk(Array("jobs".utf8)), .bulk(Array("payload".utf8))])
        #expect(flat.description == "1) \"jobs\"\n2) \"payload\"")

        let nested = RedisReply.array([
            .integer(1),
            .array([.bulk(Array("a".utf8)), .array([.null, .status("OK")])]),
            .array([]),
        ])
        #expect(
            nested.description == """
                1) (integer) 1
                2) 1) "a"
                   2) 1) (nil)
                      2) OK
                3) (empty array)
                """)

        let ten = RedisReply.array((1...10).map { .integer(Int64($0)) })
        let lines = ten.description.split(separator: "\n")
        #expect(lines.first == " 1) (integer) 1")
        #expect(lines.last == "10) (integer) 10")

        let nestedInTen = RedisReply.array(Array(repeating: .null, count: 9) + [.array([.integer(1), .integer(2)])])
        #expect(nestedInTen.description.hasSuffix("10) 1) (integer) 1\n    2) (integer) 2"))
    }
}
