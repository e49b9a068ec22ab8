import Foundation
import HummingbirdWSClient
import Logging
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Synchronization
import Testing

@testable import PGEventsServe

@Suite("pgevents serve: resume and backpressure", .serialized)
struct BroadcastDeliveryTests {
    let stream = ServeConfiguration.Stream(key: "changes", format: .raw)

    /// The `n` field of each event's payload, in the order received.
    static func numbers(_ transcript: WebSocketTranscript) -> [Int] {
        transcript.json.compactMap { $0["payload"]?["n"]?.scalarText.flatMap { Int($0) } }
    }

    @Test(
        "a client that drops and comes back with since= gets what it missed, then live events: no gap, no repeat — across a gateway restart too"
    )
    func resumeAfterDrop() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            let writer = try await redis.connect()
            let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
            let configuration = testConfiguration(streams: [stream])
            // First connection: events 1…3, then the client leaves.
            let first = try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                async let transcript = webSocket(gateway.url("/broadcast", ["token": token])) {
                    Self.numbers(WebSocketTranscript(messages: $0)).count == 3
                }
                try await gateway.waitFor("1 client") { $0.connections.load(ordering: .relaxed) == 1 }
                for n in 1...3 { try await addJob(writer, stream: "changes", payload: #"{"n":\#(n)}"#) }
                let seen = try await transcript
                // While it is away: 4…6 with this gateway running, 7…8 while no gateway runs at all.
                try await gateway.waitFor("the client gone") { $0.connections.load(ordering: .relaxed) == 0 }
                for n in 4...6 { try await addJob(writer, stream: "changes", payload: #"{"n":\#(n)}"#) }
                return seen
            }
            #expect(Self.numbers(first) == [1, 2, 3])
            let last = try #require(first.json.last?["id"]?.string)
            for n in 7...8 { try await addJob(writer, stream: "changes", payload: #"{"n":\#(n)}"#) }
            // A new gateway (a restart); the client resumes from the last ID it saw.
            try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                let gotMissed = AsyncStream<Void>.makeStream()
                // A raw client: the missed entries arrive right behind the 101 response (see RawWebSocket).
                async let transcript = RawWebSocket.run(
                    port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": token, "since": last])
                ) {
                    // A client that fails before the replay ends the wait below too (the failure is thrown there).
                    defer { gotMissed.continuation.finish() }
                    return try $0.transcript { messages in
                        let numbers = Self.numbers(WebSocketTranscript(messages: messages))
                        if numbers.count == 5 { gotMissed.continuation.yield() }
                        return numbers.count == 7
                    }
                }
                var iterator = gotMissed.stream.makeAsyncIterator()
                await iterator.next()
                for n in 9...10 { try await addJob(writer, stream: "changes", payload: #"{"n":\#(n)}"#) }
                let resumed = try await transcript
                #expect(Self.numbers(resumed) == Array(4...10))
                let ids = resumed.json.compactMap { $0["id"]?.string }
                #expect(Set(ids).count == ids.count)
                #expect(!ids.contains(last))
            }
            await writer.close()
        }
    }

    @Test("a resume from before what MAXLEN kept is told so (type gap), then gets the oldest kept entries")
    func resumeAcrossTrim() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            let writer = try await redis.connect()
            let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
            let firstID = try await addJob(writer, stream: "changes", payload: #"{"n":1}"#)
            for n in 2...10 { try await addJob(writer, stream: "changes", payload: #"{"n":\#(n)}"#, maxLength: 3) }
            try await withGateway(testConfiguration(streams: [stream]), databaseURL: database.url, redis: redis.configuration) { gateway in
                let transcript = try await RawWebSocket.run(
                    port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": token, "since": firstID])
                ) {
                    try $0.transcript { $0.count == 4 }
                }
                #expect(transcript.json.first?["type"] == .string("gap"))
                #expect(Self.numbers(transcript) == [8, 9, 10])
            }
            await writer.close()
        }
    }

    @Test("a client that stops reading is dropped with close code 4000 while another receives everything")
    func slowClientDropped() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            let writer = try await redis.connect()
            let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
            let configuration = testConfiguration(streams: [stream], queue: 64, closeTimeout: 60)
            try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                let (resume, resumeContinuation) = AsyncStream<Void>.makeStream()
                let slowSeen = Mutex(0)
                // The slow client reads nothing until told; then it reads what is left and the close frame.
                async let slowClose = withTimeout(120) {
                    try await WebSocketClient.connect(
                        url: gateway.url("/broadcast", ["token": token]), configuration: .init(maxFrameSize: 1 << 22),
                        logger: Logger(label: "slow", factory: { _ in SwiftLogNoOpLogHandler() })
                    ) { inbound, _, _ in
                        var gate = resume.makeAsyncIterator()
                        await gate.next()
                        for try await _ in inbound.messages(maxSize: 1 << 24) { slowSeen.withLock { $0 += 1 } }
                    }
                }
                try await gateway.waitFor("the slow client") { $0.connections.load(ordering: .relaxed) == 1 }
                let total = 1500
                let fastCount = Mutex(0)
                async let fast = webSocket(gateway.url("/broadcast", ["token": token]), within: 120) { messages in
                    fastCount.withLock { $0 = messages.count }
                    return messages.count == total
                }
                try await gateway.waitFor("2 clients") { $0.connections.load(ordering: .relaxed) == 2 }
                // 1500 entries of 16 KB, far more than the socket buffers hold for a reader that does not read, written
                // 50 at a time, each time once the fast client has all before them: it keeps up (never more than 50
                // pending, within its queue of 64), the slow one cannot.
                let padding = String(repeating: "x", count: 16_000)
                for chunk in stride(from: 1, through: total, by: 50) {
                    let commands: [[RedisArgument]] = (chunk..<(chunk + 50)).map { n in
                        [
                            "XADD", "changes", "*", "seq", RedisArgument(n), "channel", "changes", "payload",
                            RedisArgument(#"{"n":\#(n),"pad":"\#(padding)"}"#), "created_at", "x",
                        ]
                    }
                    _ = try await writer.pipeline(commands)
                    try await withTimeout(60) {
                        while fastCount.withLock({ $0 }) < chunk + 49 { try await Task.sleep(for: .milliseconds(5)) }
                    }
                }
                let fastSeen = try await fast
                #expect(Self.numbers(fastSeen) == Array(1...total))
                try await gateway.waitFor("the slow client dropped") { $0.slowClientsDropped.load(ordering: .relaxed) == 1 }
                resumeContinuation.yield()
                let close = try await slowClose
                #expect(close.map { UInt16(webSocketErrorCode: $0.closeCode) } == 4000)
                #expect(close?.reason == "slow_client")
                #expect(slowSeen.withLock { $0 } < total)
            }
            await writer.close()
        }
    }
}
