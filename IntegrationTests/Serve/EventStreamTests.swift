import Foundation
import PGEventsHarness
import PGEventsRedis
import Testing

@testable import PGEventsServe

@Suite("pgevents serve: SSE on /events", .serialized)
struct EventStreamTests {
    let streams = [ServeConfiguration.Stream(key: "a", format: .raw), ServeConfiguration.Stream(key: "b", format: .raw)]

    static func numbers(_ events: [RawEventStream.Event]) -> [Int] {
        events.compactMap { JSONValue.parse($0.data)?["payload"]?["n"]?.scalarText.flatMap { Int($0) } }
    }

    @Test("SSE: events of the channels asked for, each with a cursor ID over both streams; Last-Event-ID resumes with no gap and no repeat")
    func resumeWithLastEventID() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            let writer = try await redis.connect()
            let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
            try await withGateway(testConfiguration(streams: streams), databaseURL: database.url, redis: redis.configuration) { gateway in
                let path = gateway.pathAndQuery("/events", ["token": token, "channels": "orders"])
                async let first = RawEventStream.get(port: gateway.port, pathAndQuery: path) { Self.numbers($0).count == 3 }
                try await gateway.waitFor("1 client") { $0.connections.load(ordering: .relaxed) == 1 }
                // Across streams, order is the entries' IDs, and two streams' entries of one millisecond tie: they are
                // written 2 ms apart. The channel "other" is not asked for.
                for (stream, channel, n) in [("a", "orders", 1), ("b", "other", 100), ("b", "orders", 2), ("a", "orders", 3)] {
                    try await addJob(writer, stream: stream, channel: channel, payload: #"{"n":\#(n)}"#)
                    try await Task.sleep(for: .milliseconds(2))
                }
                let seen = try await first
                #expect(seen.status == 200)
                #expect(Self.numbers(seen.events) == [1, 2, 3])
                let cursor = try #require(seen.events.last?.id, "\(seen.body)")
                #expect(cursor.contains("a@") && cursor.contains("b@"))
                try await gateway.waitFor("the client gone") { $0.connections.load(ordering: .relaxed) == 0 }
                // Missed while away, in both streams.
                try await addJob(writer, stream: "b", channel: "orders", payload: #"{"n":4}"#)
                try await addJob(writer, stream: "a", channel: "orders", payload: #"{"n":5}"#)
                let gotMissed = AsyncStream<Void>.makeStream()
                async let second = { () async throws -> RawEventStream.Response in
                    // A client that fails before the replay ends the wait below too (the failure is thrown there).
                    defer { gotMissed.continuation.finish() }
                    return try await RawEventStream.get(port: gateway.port, pathAndQuery: path, headers: ["Last-Event-ID": cursor]) {
                        events in
                        let numbers = Self.numbers(events)
                        if numbers.count == 2 { gotMissed.continuation.yield() }
                        return numbers.count == 3
                    }
                }()
                var iterator = gotMissed.stream.makeAsyncIterator()
                await iterator.next()
                try await addJob(writer, stream: "a", channel: "orders", payload: #"{"n":6}"#)
                let resumed = try await second
                // Replayed stream by stream (a, then b), then live.
                #expect(Set(Self.numbers(resumed.events).prefix(2)) == [4, 5])
                #expect(Self.numbers(resumed.events).last == 6)
                #expect(resumed.events.allSatisfy { $0.id != cursor })
            }
            await writer.close()
        }
    }

    @Test("SSE: keep-alive comments from the hub's clock while idle, and the response ends when the token expires")
    func keepaliveAndExpiry() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            var configuration = testConfiguration(streams: streams)
            configuration.clients.pingInterval = 1
            try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                let token = try await makeToken([
                    "database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true),
                    "exp": .number(Date().timeIntervalSince1970 + 3),
                ])
                // Read until the server ends the response (the reader's own limit is 30 s).
                let response = try await RawEventStream.get(
                    port: gateway.port, pathAndQuery: gateway.pathAndQuery("/events", ["token": token]))
                #expect(response.status == 200)
                #expect(response.body.components(separatedBy: ": keep-alive").count - 1 >= 1, "\(response.body)")
                #expect(gateway.metrics.tokensExpired.load(ordering: .relaxed) == 1)
                try await gateway.waitFor("the client gone") { $0.connections.load(ordering: .relaxed) == 0 }
            }
        }
    }

    @Test("SSE refusals are HTTP statuses with GC2's error JSON")
    func refusals() async throws {
        let database = try await makeGrantedDatabase(role: "serve_sse_reader")
        try await withTemporaryRedis { redis in
            try await withGateway(testConfiguration(streams: streams), databaseURL: database.url, redis: redis.configuration) { gateway in
                let sub = try await makeToken(["database": .string(database.name), "uid": .string("serve_sse_reader")])
                let cases: [([String: String], Int, String)] = [
                    ([:], 401, "missing_token"),
                    (["token": "x.y.z"], 401, "invalid_token"),
                    (["token": sub], 400, "missing_rel"),
                    (["token": sub, "rel": "secret.salaries"], 403, "not_allowed"),
                    (["token": sub, "rel": "public.parcels", "since": "nonsense"], 400, "invalid_parameter"),
                ]
                for (query, status, code) in cases {
                    let response = try await RawEventStream.get(port: gateway.port, pathAndQuery: gateway.pathAndQuery("/events", query))
                    #expect(response.status == status, "\(code)")
                    #expect(JSONValue.parse(response.body)?["error"] == .string(code), "\(code): \(response.body)")
                }
                let ping = try await RawEventStream.get(port: gateway.port, pathAndQuery: "/ping")
                #expect(ping.status == 200 && ping.body == "pong")
            }
        }
    }
}
