import Foundation
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Synchronization
import Testing

@testable import PGEventsServe

@Suite("pgevents serve: limits, shutdown and restart", .serialized)
struct GatewayLifecycleTests {
    let stream = ServeConfiguration.Stream(key: "changes", format: .raw)

    /// The `n` field of each event's payload, in the order received.
    static func numbers(_ messages: [String]) -> [Int] {
        messages.compactMap(JSONValue.parse).compactMap { $0["payload"]?["n"]?.scalarText.flatMap { Int($0) } }
    }

    @Test("a message up to max_message_bytes is answered; a larger one closes the connection with 1009 (message too big)")
    func maximumMessageSize() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            // testConfiguration: max_message_bytes 4096, SQL off (every text message is answered with an error).
            try await withGateway(testConfiguration(streams: [stream]), databaseURL: database.url, redis: redis.configuration) { gateway in
                let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
                let path = gateway.pathAndQuery("/broadcast", ["token": token])
                let fits = try await RawWebSocket.run(port: gateway.port, pathAndQuery: path) { socket in
                    try socket.send(String(repeating: "x", count: 4096))
                    return try socket.transcript { $0.count == 1 }
                }
                #expect(fits.json.first?["success"] == .bool(false), "\(fits.messages)")
                let tooBig = try await RawWebSocket.run(port: gateway.port, pathAndQuery: path) { socket in
                    try socket.send(String(repeating: "x", count: 4097))
                    return try socket.transcript()
                }
                #expect(tooBig.messages.isEmpty)
                #expect(tooBig.closeCode == 1009, "closed with \(String(describing: tooBig.closeCode)) \(tooBig.closeReason ?? "")")
            }
        }
    }

    @Test("a client that answers pings stays connected; one that does not is closed with 1001 Ping timeout and removed")
    func pingTimeout() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            var configuration = testConfiguration(streams: [stream])
            configuration.clients.pingInterval = 0.3
            try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
                let path = gateway.pathAndQuery("/broadcast", ["token": token])
                let port = gateway.port
                async let answering = RawWebSocket.run(port: port, pathAndQuery: path) { socket in
                    try socket.transcript()
                }
                let silent = try await RawWebSocket.run(port: port, pathAndQuery: path) { try $0.transcript(answerPings: false) }
                #expect(silent.pingsIgnored == 1, "closed at the second ping, with the first unanswered")
                #expect(silent.closeCode == 1001, "closed with \(String(describing: silent.closeCode))")
                #expect(silent.closeReason == "Ping timeout")
                try await gateway.waitFor("the silent client removed") { $0.connections.load(ordering: .relaxed) == 1 }
                // The answering client is still there, several pings later; the gateway's shutdown closes it (1000).
                try await Task.sleep(for: .seconds(1))
                #expect(gateway.metrics.connections.load(ordering: .relaxed) == 1)
                await gateway.shutDown()
                let kept = try await answering
                #expect(kept.pingsAnswered >= 3, "answered \(kept.pingsAnswered) pings")
                #expect(kept.closeCode == 1000)
            }
        }
    }

    @Test(
        "max_connections: beyond it a WebSocket gets too_many_connections and close 1013, an SSE request 503 with the same error (both counted); a place freed is taken again"
    )
    func maximumConnections() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            var configuration = testConfiguration(streams: [stream])
            configuration.clients.maxConnections = 2
            try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
                let path = gateway.pathAndQuery("/broadcast", ["token": token])
                let port = gateway.port
                // Two clients hold their places (their sockets close when the objects go away).
                let holders = try await RawWebSocket.blocking {
                    [try RawWebSocket(port: port, pathAndQuery: path), try RawWebSocket(port: port, pathAndQuery: path)]
                }
                try await gateway.waitFor("2 clients") { $0.connections.load(ordering: .relaxed) == 2 }
                let third = try await RawWebSocket.run(port: port, pathAndQuery: path) { try $0.transcript() }
                #expect(third.json.first?["error"] == .string("too_many_connections"), "\(third.messages)")
                #expect(third.closeCode == 1013)
                let refused = try await RawEventStream.get(port: port, pathAndQuery: gateway.pathAndQuery("/events", ["token": token]))
                #expect(refused.status == 503)
                #expect(JSONValue.parse(refused.body)?["error"] == .string("too_many_connections"), "\(refused.body)")
                #expect(gateway.metrics.connectionsRefused.load(ordering: .relaxed) == 2)
                try await RawWebSocket.blocking { holders[0].closeNow() }
                try await gateway.waitFor("1 client") { $0.connections.load(ordering: .relaxed) == 1 }
                let admitted = try await RawWebSocket.run(port: port, pathAndQuery: path) { socket in
                    try socket.send("hello")
                    return try socket.transcript { $0.count == 1 }
                }
                #expect(admitted.messages.count == 1)
                withExtendedLifetime(holders) {}
            }
        }
    }

    @Test(
        "the gateway shut down mid-stream closes its client (1000); a new gateway resumes it from its last ID: every entry written before, during and after the restart once, in order"
    )
    func restartMidStream() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
            let configuration = testConfiguration(streams: [stream])
            let total = 150
            let writing = Mutex<Task<Void, any Error>?>(nil)
            let first = try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                let halfway = AsyncStream<Void>.makeStream()
                async let transcript = RawWebSocket.run(
                    port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": token])
                ) {
                    // A client that fails before halfway ends the wait below too (the failure is thrown there).
                    defer { halfway.continuation.finish() }
                    return try $0.transcript { messages in
                        if Self.numbers(messages).count == 20 { halfway.continuation.yield() }
                        return false  // until the gateway closes
                    }
                }
                try await gateway.waitFor("1 client") { $0.connections.load(ordering: .relaxed) == 1 }
                // Entries every 10 ms, on through the shutdown, the downtime and the second gateway's start.
                let redisConfiguration = redis.configuration
                writing.withLock {
                    $0 = Task {
                        let writer = try await RedisConnection.connect(redisConfiguration)
                        for n in 1...total {
                            try await addJob(writer, stream: "changes", payload: #"{"n":\#(n)}"#)
                            try await Task.sleep(for: .milliseconds(10))
                        }
                        await writer.close()
                    }
                }
                var iterator = halfway.stream.makeAsyncIterator()
                await iterator.next()
                await gateway.shutDown()
                return try await transcript
            }
            #expect(first.closeCode == 1000, "closed with \(String(describing: first.closeCode)) \(first.closeReason ?? "")")
            let seen = Self.numbers(first.messages)
            #expect(seen == Array(1...seen.count))
            let last = try #require(first.json.last?["id"]?.string)
            let resumed = try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                try await RawWebSocket.run(
                    port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": token, "since": last])
                ) {
                    try $0.transcript { Self.numbers($0).last == total }
                }
            }
            try await writing.withLock { $0 }?.value
            #expect(seen.count < total, "the first gateway saw every entry: nothing was written across the restart")
            #expect(seen + Self.numbers(resumed.messages) == Array(1...total))
        }
    }
}
