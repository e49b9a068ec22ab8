import Testing

@testable import PGEvents
@testable import PGEventsRedis

@Suite("Redis Cluster: slots, addresses, redirections, URLs")
struct RedisClusterLogicTests {
    @Test func crc16IsXmodem() {
        // The check value of CRC-16/XMODEM, and the example of the Redis Cluster specification.
        #expect(RedisHashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisHashSlot.crc16([UInt8]()) == 0)
    }

    @Test func hashTagsFollowTheSpecification() {
        #expect(RedisHashSlot.hashedPart(of: "{user1000}.following") == "user1000")
        #expect(RedisHashSlot.hashedPart(of: "foo{}{bar}") == "foo{}{bar}")  // an empty first tag: the whole key
        #expect(RedisHashSlot.hashedPart(of: "foo{{bar}}zap") == "{bar")
        #expect(RedisHashSlot.hashedPart(of: "foo{bar}{zap}") == "bar")
        #expect(RedisHashSlot.hashedPart(of: "jobs") == "jobs")
        #expect(RedisHashSlot.hashedPart(of: "a}b{") == "a}b{")
        #expect(RedisHashSlot.hashedPart(of: "é{ü}") == "ü")
        #expect(RedisHashSlot.of("{user1000}.following") == RedisHashSlot.of("{user1000}.followers"))
        #expect(RedisHashSlot.of("pgevents:seen:app:1:delivered:{jobs}") == RedisHashSlot.of("jobs"))
        #expect((0..<RedisHashSlot.count).contains(RedisHashSlot.of("anything")))
    }

    @Test func tagsCarryTheHashedPartUnlessItHoldsABrace() {
        #expect(RedisHashSlot.tag(forHashedPart: "jobs") == "{jobs}")
        #expect(RedisHashSlot.tag(forHashedPart: "{bar") == "{{bar}")
        #expect(RedisHashSlot.of("x:{{bar}") == RedisHashSlot.of("foo{{bar}}zap"))
        #expect(RedisHashSlot.tag(forHashedPart: "a}b") == nil)
        #expect(RedisHashSlot.tag(forHashedPart: "") == nil)
    }

    @Test func nodeAddresses() {
        #expect(RedisNodeAddress("127.0.0.1:7000") == RedisNodeAddress(host: "127.0.0.1", port: 7000))
        #expect(RedisNodeAddress("[::1]:7000") == RedisNodeAddress(host: "::1", port: 7000))
        #expect(RedisNodeAddress("::1:7000") == RedisNodeAddress(host: "::1", port: 7000))
        #expect(RedisNodeAddress(host: "::1", port: 7000).description == "[::1]:7000")
        #expect(RedisNodeAddress("redis.local:6379")?.description == "redis.local:6379")
        for bad in ["", "host", ":7000", "host:", "host:0", "host:70000", "host:7x", "[::1]7000", "a/b:1"] {
            #expect(RedisNodeAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func redirections() {
        let moved = RedisRedirection("MOVED 3999 127.0.0.1:6381")
        #expect(moved?.kind == .moved && moved?.slot == 3999 && moved?.node == RedisNodeAddress(host: "127.0.0.1", port: 6381))
        #expect(RedisRedirection("ASK 3999 127.0.0.1:6381")?.kind == .ask)
        #expect(RedisRedirection("MOVED 16384 127.0.0.1:6381") == nil)
        #expect(RedisRedirection("MOVED x 127.0.0.1:6381") == nil)
        #expect(RedisRedirection("WRONGTYPE Operation against a key holding the wrong kind of value") == nil)
        #expect(RedisRedirection("ERR MOVED 1 a:1") == nil)
    }

    @Test func clusterURLs() throws {
        let configuration = try RedisConfiguration(
            "redis+cluster://:s3cret@10.0.0.1:7000?addr=10.0.0.2:7001&addr=[::1]:7002&command_timeout=2")
        #expect(configuration.isCluster)
        #expect(configuration.address == RedisNodeAddress(host: "10.0.0.1", port: 7000))
        #expect(configuration.clusterSeeds == [.init(host: "10.0.0.2", port: 7001), .init(host: "::1", port: 7002)])
        #expect(configuration.password == "s3cret")
        #expect(configuration.url == "redis+cluster://:********@10.0.0.1:7000?addr=10.0.0.2:7001&addr=[::1]:7002&command_timeout=2.0")
        let again = try RedisConfiguration(configuration.urlIncludingSecrets)
        #expect(again == configuration)
        let node = configuration.node(.init(host: "10.0.0.3", port: 7003))
        #expect(!node.isCluster && node.clusterSeeds.isEmpty && node.port == 7003 && node.password == "s3cret" && node.commandTimeout == 2)

        for (url, expected) in [
            ("redis+cluster://h:7000/1", "database 0 only"),
            ("redis+cluster://h:7000?addr=nope", "invalid addr"),
            ("redis://h:7000?addr=h2:7001", "unknown query parameter 'addr'"),
        ] {
            let error = #expect(throws: RedisError.self) { try RedisConfiguration(url) }
            #expect(error?.message.contains(expected) == true, "\(url): \(error?.message ?? "")")
        }
    }

    @Test func slotMapFromClusterSlots() throws {
        let asked = RedisNodeAddress(host: "10.0.0.9", port: 7000)
        func node(_ host: String, _ port: Int64) -> RedisReply {
            .array([.bulk(Array(host.utf8)), .integer(port), .bulk(Array("id".utf8))])
        }
        let reply = RedisReply.array([
            .array([.integer(0), .integer(5460), node("", 7000), node("10.0.0.2", 7003)]),
            .array([.integer(5461), .integer(10922), node("10.0.0.2", 7001)]),
            .array([.integer(10923), .integer(16383), node("?", 7002)]),
        ])
        let map = try RedisClusterSlots(parsing: reply, askedNode: asked)
        #expect(map.primaries[0] == asked)
        #expect(map.primaries[5460] == asked)
        #expect(map.primaries[5461] == .init(host: "10.0.0.2", port: 7001))
        #expect(map.primaries[16383] == nil)
        #expect(map.coveredSlots == 10923)
        #expect(map.distinctPrimaries == [asked, .init(host: "10.0.0.2", port: 7001)])
        #expect(map.nodes.count == 3)
        #expect(throws: RedisError.self) {
            try RedisClusterSlots(parsing: .array([.array([.integer(5), .integer(2), node("a", 1)])]), askedNode: asked)
        }
        #expect(throws: RedisError.self) { try RedisClusterSlots(parsing: .integer(1), askedNode: asked) }
    }

    @Test func writerKeysOnAClusterShareTheDestinationsSlot() throws {
        let writer = RedisJobWriter()
        let keys = writer.keys(consumer: "app:1", tag: "{jobs}")
        #expect(keys.delivered == "pgevents:seen:app:1:delivered:{jobs}")
        #expect(keys.batchIndex == "pgevents:seen:app:1:batches:{jobs}")
        #expect(keys.deadLetters == "pgevents:dead:{jobs}")
        let slot = RedisHashSlot.of("jobs")
        #expect(
            [keys.delivered, keys.batchIndex, keys.batchIndex + ":order", keys.deadLetters].allSatisfy { RedisHashSlot.of($0) == slot })
        let batch = BatchDestination(
            queue: "jobs", sink: .list, streamMaxLength: nil, channel: "parcels", group: #"{"event.op":"INSERT"}"#,
            spec: BatchSpec(maxItems: 10, maxAge: .seconds(2)))
        let staging = writer.stagingKey(keys: keys, batch)
        #expect(RedisHashSlot.of(staging) == slot && RedisHashSlot.of(staging + ":meta") == slot)
        // One server: the layout of earlier releases, unchanged.
        let server = writer.keys(consumer: "app:1", tag: nil)
        #expect(server.delivered == writer.deliveredKey(consumer: "app:1") && server.delivered == "pgevents:seen:app:1:delivered")
        #expect(writer.stagingKey(keys: server, batch) == #"pgevents:seen:app:1:batch:parcels:jobs:{"event.op":"INSERT"}"#)

        #expect(throws: ProcessorError.self) { try RedisJobWriter(keyPrefix: "pg{x}").checkClusterNames(consumer: "app:1") }
        #expect(throws: ProcessorError.self) { try RedisJobWriter(deadLetterQueue: "{dead}").checkClusterNames(consumer: "app:1") }
        try writer.checkClusterNames(consumer: "app:1")
    }
}
