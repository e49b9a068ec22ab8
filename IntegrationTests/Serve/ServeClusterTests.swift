import Foundation
import PGEventsHarness
import PGEventsRedis
import Testing

@testable import PGEventsServe

@Suite("pgevents serve on a Redis Cluster", .serialized)
struct ServeClusterTests {
    /// Three streams in two hash slots: `{orders}.audit` shares the slot of `orders` (its hash tag), `changes` has
    /// another.
    let streams = [
        ServeConfiguration.Stream(key: "changes", format: .raw), ServeConfiguration.Stream(key: "orders", format: .raw),
        ServeConfiguration.Stream(key: "{orders}.audit", format: .raw),
    ]

    /// `stream:n` for each message, in the order received.
    static func received(_ transcript: WebSocketTranscript) -> [String] {
        transcript.json.compactMap { message in
            guard let stream = message["stream"]?.string, let n = message["payload"]?["n"]?.scalarText else { return nil }
            return "\(stream):\(n)"
        }
    }

    @Test("streams on different primaries reach a WebSocket client live, each in its order; a client resumes with since= across them")
    func liveAndResumed() async throws {
        #expect(RedisHashSlot.of("changes") != RedisHashSlot.of("orders"))
        #expect(RedisHashSlot.of("orders") == RedisHashSlot.of("{orders}.audit"))
        let database = try await Shared.database()
        try await withTemporaryRedisCluster { cluster in
            try await RedisCluster.withCluster(cluster.configuration) { writer in
                @Sendable func add(_ stream: String, _ n: Int) async throws -> String {
                    let reply = try await writer.command(jobEntry(stream: stream, payload: #"{"n":\#(n)}"#), slot: RedisHashSlot.of(stream))
                    return try #require(reply.string)
                }
                // The streams' primaries differ: one XREAD could not read them all.
                let primaries = try await writer.primaries()
                #expect(primaries.count == 3)
                let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
                let keys = streams.map(\.key)
                try await withGateway(testConfiguration(streams: streams), databaseURL: database.url, redis: cluster.configuration) {
                    gateway in
                    async let live = webSocket(gateway.url("/broadcast", ["token": token])) { $0.count == 6 }
                    try await gateway.waitFor("1 client") { $0.connections.load(ordering: .relaxed) == 1 }
                    var last: [String: String] = [:]
                    for (n, stream) in ["changes", "orders", "{orders}.audit", "changes", "orders", "{orders}.audit"].enumerated() {
                        last[stream] = try await add(stream, n + 1)
                    }
                    let seen = Self.received(try await live)
                    #expect(Set(seen) == ["changes:1", "orders:2", "{orders}.audit:3", "changes:4", "orders:5", "{orders}.audit:6"])
                    for stream in keys {
                        let numbers = seen.filter { $0.hasPrefix("\(stream):") }.compactMap {
                            $0.split(separator: ":").last.flatMap { Int($0) }
                        }
                        #expect(numbers.count == 2 && numbers == numbers.sorted(), "\(stream): \(numbers)")
                    }
                    try await gateway.waitFor("the client gone") { $0.connections.load(ordering: .relaxed) == 0 }
                    // While the client is away: one more entry in each stream; then it resumes from what it had.
                    for (n, stream) in keys.enumerated() { _ = try await add(stream, 7 + n) }
                    let since = keys.compactMap { key in last[key].map { "\(key)@\($0)" } }.joined(separator: ",")
                    async let resumed = webSocket(gateway.url("/broadcast", ["token": token, "since": since])) { $0.count == 4 }
                    try await gateway.waitFor("the resumed client") { $0.connections.load(ordering: .relaxed) == 1 }
                    _ = try await add("changes", 10)
                    let again = Self.received(try await resumed)
                    #expect(Set(again) == ["changes:7", "orders:8", "{orders}.audit:9", "changes:10"])
                    #expect(again.firstIndex(of: "changes:7")! < again.firstIndex(of: "changes:10")!)
                }
            }
        }
    }
}
