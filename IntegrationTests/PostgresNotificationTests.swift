import Foundation
import PGEventsHarness
import PGEventsPostgres
import Testing

@Suite("NOTIFY round trips on a real server")
struct PostgresNotificationTests {
    @Test("payloads arrive byte for byte, up to 7,999 bytes")
    func payloadsIntact() async throws {
        let database = try await Shared.database()
        let listener = try await database.connect()
        let sender = try await database.connect()
        try await listener.listen("events")
        let sequence = await listener.notifications()

        let payloads = [
            "plain", "", "multi-byte: żółć 日本語 🎉👩‍👩‍👧", "quotes ' and \" and `", #"back\slash \n not a newline"#,
            "line\nbreak\ttab", "comma,separated,values", String(repeating: "x", count: 7_999),
            String(repeating: "é", count: 3_999),  // 7,998 bytes of two-byte characters
        ]
        for payload in payloads { try await sender.notify("events", payload: payload) }
        try await sender.notify("events", payload: "END")

        let received = try await withTimeout(10) {
            var iterator = sequence.makeAsyncIterator()
            return try await collect(&iterator, until: "END")
        }
        #expect(received.map(\.payload) == payloads)
        #expect(received.allSatisfy { $0.channel == "events" })
        let senderPID = await sender.backendPID
        #expect(received.allSatisfy { $0.senderPID == senderPID })
        #expect(received[7].payloadBytes.count == 7_999)
        await listener.close()
        await sender.close()
    }

    @Test("an 8,000-byte payload fails with SQLSTATE 22023 and a clear message")
    func oversizedPayload() async throws {
        let connection = try await Shared.database().connect()
        let error = await #expect(throws: PostgresError.self) {
            try await connection.notify("events", payload: String(repeating: "x", count: 8_000))
        }
        #expect(error?.code == .server)
        #expect(error?.sqlState == "22023")
        #expect(error?.message == "payload string too long")
        #expect(error?.description.contains("22023") == true)
        // The connection is still usable.
        #expect(try await connection.query("SELECT 1").scalar(Int.self) == 1)
        await connection.close()
    }

    @Test("a rolled-back transaction notifies nothing; identical payloads in one transaction arrive once")
    func transactionSemantics() async throws {
        let database = try await Shared.database()
        let listener = try await database.connect()
        let sender = try await database.connect()
        try await listener.listen("tx")
        let sequence = await listener.notifications()

        try await sender.execute("BEGIN")
        try await sender.notify("tx", payload: "rolled back")
        try await sender.execute("ROLLBACK")

        try await sender.execute("BEGIN")
        for payload in ["same", "same", "other", "same"] { try await sender.notify("tx", payload: payload) }
        try await sender.execute("COMMIT")
        try await sender.notify("tx", payload: "END")

        let received = try await withTimeout(10) {
            var iterator = sequence.makeAsyncIterator()
            return try await collect(&iterator, until: "END")
        }
        #expect(received.map(\.payload) == ["same", "other"])
        await listener.close()
        await sender.close()
    }

    @Test(
        "any channel name works: mixed case, spaces, quotes, multi-byte",
        arguments: [
            "MixedCase", "with space", #"quote " inside"#, "semi;colon", "ünïcødé", String(repeating: "c", count: 63),
        ])
    func channelNames(channel: String) async throws {
        let database = try await Shared.database()
        let listener = try await database.connect()
        try await listener.listen(channel)
        try await listener.listen("control")
        let sequence = await listener.notifications()
        let sender = try await database.connect()
        try await sender.notify(channel, payload: "hello")
        try await sender.notify("other", payload: "not for us")
        if channel.lowercased() != channel {
            try await sender.notify(channel.lowercased(), payload: "not for us either: channel names are case-sensitive")
        }
        try await sender.notify("control", payload: "END")

        let received = try await withTimeout(10) {
            var iterator = sequence.makeAsyncIterator()
            return try await collect(&iterator, until: "END")
        }
        #expect(received.map(\.channel) == [channel])
        #expect(await listener.listeningChannels == [channel, "control"])
        await listener.close()
        await sender.close()
    }

    @Test("channel names PostgreSQL would change are refused before they reach the server")
    func invalidChannelNames() async throws {
        let connection = try await Shared.database().connect()
        for bad in ["", String(repeating: "c", count: 64), "nul\u{0}byte"] {
            let error = await #expect(throws: PostgresError.self) { try await connection.listen(bad) }
            #expect(error?.code == .invalidArgument)
        }
        await connection.close()
    }

    @Test("terminating the listening backend ends the sequence with connectionLost, without a query")
    func terminatedBackend() async throws {
        let database = try await Shared.database()
        let listener = try await database.connect()
        try await listener.listen("events")
        let sequence = await listener.notifications()
        let pid = await listener.backendPID
        let admin = try await database.connect()

        let started = ContinuousClock.now
        let killed = try await admin.query("SELECT pg_terminate_backend($1)", [Int(pid)]).scalar(Bool.self)
        #expect(killed)
        let outcome: Result<Int, any Error> = try await withTimeout(10) {
            do {
                var count = 0
                for try await _ in sequence { count += 1 }
                return .success(count)
            } catch {
                return .failure(error)
            }
        }
        let elapsed = ContinuousClock.now - started
        guard case .failure(let error as PostgresError) = outcome else {
            Issue.record("the sequence ended without a connection error: \(outcome)")
            return
        }
        #expect(error.code == .connectionLost)
        #expect(listener.isUsable == false)
        // Later calls fail the same way, without touching the dead socket.
        await #expect(throws: PostgresError.self) { try await listener.query("SELECT 1") }
        print("connection loss noticed after \(elapsed)")
        await admin.close()
    }

    @Test("closing the connection ends the sequence without error")
    func closeEndsSequence() async throws {
        let listener = try await Shared.database().connect()
        try await listener.listen("events")
        let sequence = await listener.notifications()
        await listener.close()
        let count = try await withTimeout(10) {
            var count = 0
            for try await _ in sequence { count += 1 }
            return count
        }
        #expect(count == 0)
        let error = await #expect(throws: PostgresError.self) { try await listener.query("SELECT 1") }
        #expect(error?.code == .connectionClosed)
    }
}
