import Testing

@testable import PGEventsRedis

@Suite("RedisArgument")
struct RedisArgumentTests {
    @Test func fromString() {
        #expect(RedisArgument("LPUSH").bytes == Array("LPUSH".utf8))
        #expect(RedisArgument("jörg").bytes == [0x6A, 0xC3, 0xB6, 0x72, 0x67])
        #expect(RedisArgument("").bytes == [])
        #expect(RedisArgument("a\0b").bytes == [0x61, 0x00, 0x62])
        let literal: RedisArgument = "GET"
        #expect(literal == RedisArgument("GET"))
    }

    @Test func fromBytesIsBinarySafe() {
        let bytes: [UInt8] = [0x00, 0xFF, 0x0D, 0x0A, 0x80]
        #expect(RedisArgument(bytes).bytes == bytes)
    }

    @Test func fromInteger() {
        #expect(RedisArgument(42).bytes == Array("42".utf8))
        #expect(RedisArgument(-7).bytes == Array("-7".utf8))
        #expect(RedisArgument(Int.min).bytes == Array("-9223372036854775808".utf8))
        let literal: RedisArgument = 10
        #expect(literal == RedisArgument("10"))
    }

    @Test func fromDouble() {
        #expect(RedisArgument(0.5).bytes == Array("0.5".utf8))
        #expect(RedisArgument(1.0).bytes == Array("1.0".utf8))
        #expect(RedisArgument(-2.25).bytes == Array("-2.25".utf8))
        #expect(RedisArgument(1e-5).bytes == Array("1e-05".utf8))
        #expect(RedisArgument(Double.infinity).bytes == Array("inf".utf8))
        #expect(RedisArgument(-Double.infinity).bytes == Array("-inf".utf8))
    }

    @Test func hashable() {
        let set: Set<RedisArgument> = ["a", "a", 1, RedisArgument([0x61])]
        #expect(set.count == 2)
    }

    @Test func argvIsBinarySafe() {
        let arguments: [RedisArgument] = ["SET", "", RedisArgument([0x00, 0xFF, 0x00])]
        let seen = RedisConnection.withArgv(arguments) { argc, argv, lengths -> [[UInt8]] in
            guard let argv, let lengths else { return [] }
            return (0..<Int(argc)).map { index in
                guard let start = argv[index] else { return [] }
                return Array(UnsafeRawBufferPointer(start: start, count: lengths[index]))
            }
        }
        #expect(seen == [Array("SET".utf8), [], [0x00, 0xFF, 0x00]])
    }

    @Test func argvForOnlyEmptyArgumentsHasAddresses() {
        let allPresent = RedisConnection.withArgv(["", ""]) { argc, argv, lengths in
            argc == 2 && argv?[0] != nil && argv?[1] != nil && lengths?[0] == 0 && lengths?[1] == 0
        }
        #expect(allPresent)
    }

    @Test func commandNameNeverShowsArguments() {
        #expect(RedisConnection.commandName("lpush") == "LPUSH")
        #expect(RedisConnection.commandName("CLIENT") == "CLIENT")
        #expect(RedisConnection.commandName("my-module.cmd") == "MY-MODULE.CMD")
        #expect(RedisConnection.commandName(RedisArgument([0x00, 0x01])) == "<unnamed>")
        #expect(RedisConnection.commandName("") == "<unnamed>")
        #expect(RedisConnection.commandName("secret value") == "<unnamed>")
        #expect(RedisConnection.commandName(RedisArgument(String(repeating: "a", count: 33))) == "<unnamed>")
    }
}
