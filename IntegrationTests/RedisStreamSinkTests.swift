import Foundation
import PGEventsHarness
import PGEventsRedis
import Testing

@testable import PGEvents

/// Events built in place (the sink takes any `SourceEvent`; where they come from is the consumers' tests).
private func events(
    _ seqs: ClosedRange<Int64>, channel: (Int64) -> String = { _ in "orders" },
    createdAt: Date = Date(timeIntervalSince1970: 1_714_566_896.789)
) -> [SourceEvent] {
    seqs.map { seq in SourceEvent(seq: seq, channel: channel(seq), payload: "{\"n\":\(seq)}", createdAt: createdAt) }
}

/// One stream entry as `XREADGROUP` returns it: its ID and its fields, in order.
private struct Entry: Equatable {
    var id: String
    var fields: [String]

    /// The value of `field`.
    subscript(_ field: String) -> String? {
        stride(from: 0, to: fields.count - 1, by: 2).first { fields[$0] == field }.map { fields[$0 + 1] }
    }
}

/// Creates `group` on `stream` for entries added from now on (`$`), creating the stream if needed.
private func createGroup(_ redis: RedisConnection, _ stream: String, group: String = "workers") async throws {
    try await redis.command("XGROUP", "CREATE", RedisArgument(stream), RedisArgument(group), "$", "MKSTREAM")
}

/// The entries `group` has not been given yet (`>`), as consumer `worker-1`; empty when there are none.
private func readGroup(_ redis: RedisConnection, _ stream: String, group: String = "workers", count: Int = 100_000) async throws -> [Entry]
{
    let reply = try await redis.command(
        "XREADGROUP", "GROUP", RedisArgument(group), "worker-1", "COUNT", RedisArgument(count), "STREAMS", RedisArgument(stream), ">")
    guard let streams = reply.array else { return [] }  // null: nothing new
    return try streams.flatMap { stream -> [Entry] in
        let entries = try #require(stream.array?.last?.array)
        return try entries.map { entry in
            let parts = try #require(entry.array)
            let id = try #require(parts.first?.string)
            let fields = try #require(parts.last?.array).map { $0.string ?? "?" }
            return Entry(id: id, fields: fields)
        }
    }
}

private func length(_ redis: RedisConnection, _ stream: String) async throws -> Int64 {
    try #require(try await redis.command("XLEN", RedisArgument(stream)).integer)
}

@Suite("The job writer's streams")
struct RedisStreamWriterTests {
    @Test("events land in their channel's stream with seq, channel, payload and created_at, readable by a group")
    func routingAndFields() async throws {
        try await withTemporaryRedis { server in
            let redis = try await server.connect()
            for stream in ["s:orders", "s:users", "s:other"] { try await createGroup(redis, stream) }
            let sink = streamWriter(streams: ["orders": "s:orders", "users": "s:users"], defaultStream: "s:other", maxLength: 10_000)
            let channels: [Int64: String] = [1: "orders", 2: "users", 3: "orders", 4: "audit"]
            let batch = events(1...4, channel: { channels[$0]! })
            #expect(try await sink.deliver(batch, consumer: "app:1", on: redis) == Counts(pushed: 4, duplicates: 0))

            let orders = try await readGroup(redis, "s:orders")
            #expect(
                orders.map(\.fields) == [
                    ["seq", "1", "channel", "orders", "payload", "{\"n\":1}", "created_at", "2024-05-01T12:34:56.789Z"],
                    ["seq", "3", "channel", "orders", "payload", "{\"n\":3}", "created_at", "2024-05-01T12:34:56.789Z"],
                ])
            #expect(try await readGroup(redis, "s:users").map { $0["seq"] } == ["2"])
            let other = try await readGroup(redis, "s:other")
            #expect(other.map { $0["channel"] } == ["audit"])
            #expect(other.map { $0["payload"] } == ["{\"n\":4}"])

            // Delivered entries are pending for the group until acknowledged.
            let ids = orders.map { RedisArgument($0.id) }
            #expect(try await redis.command(["XACK", "s:orders", "workers"] + ids).integer == 2)
            // One delivered position per stream, not a key per event; and it never expires.
            #expect(try await redis.command("HLEN", "pgevents:seen:app:1:delivered").integer == 3)
            #expect(try await redis.command("TTL", "pgevents:seen:app:1:delivered").integer == -1)
            #expect(try await redis.command("DBSIZE").integer == 4)
            await redis.close()
        }
    }

    @Test("a replay adds nothing and counts the events as duplicates")
    func replay() async throws {
        try await withTemporaryRedis { server in
            let redis = try await server.connect()
            try await createGroup(redis, "jobs")
            let sink = streamWriter(defaultStream: "jobs")
            #expect(try await sink.deliver(events(1...4), consumer: "app:1", on: redis) == Counts(pushed: 4, duplicates: 0))
            #expect(try await readGroup(redis, "jobs").count == 4)

            #expect(try await sink.deliver(events(1...4), consumer: "app:1", on: redis) == Counts(pushed: 0, duplicates: 4))
            #expect(try await length(redis, "jobs") == 4)
            #expect(try await readGroup(redis, "jobs").isEmpty)

            // A chunk overlapping what was delivered adds only what is new, in order.
            #expect(try await sink.deliver(events(3...6), consumer: "app:1", on: redis) == Counts(pushed: 2, duplicates: 2))
            #expect(try await readGroup(redis, "jobs").map { $0["seq"] } == ["5", "6"])

            // Another consumer's key space is its own: the same seqs are new to it.
            #expect(try await sink.deliver(events(1...2), consumer: "other:1", on: redis) == Counts(pushed: 2, duplicates: 0))
            #expect(try await length(redis, "jobs") == 8)
            await redis.close()
        }
    }

    @Test("MAXLEN ~ trims approximately; without a maximum nothing is trimmed")
    func trimming() async throws {
        try await withTemporaryRedis { server in
            let redis = try await server.connect()
            // `~` trims whole macro nodes only, so a stream may exceed the maximum by up to one node.
            let config = try await redis.command("CONFIG", "GET", "stream-node-max-entries").array
            let nodeSize = try #require(Int64(config?.last?.string ?? ""))

            let trimmed = streamWriter(defaultStream: "trimmed", maxLength: 1_000)
            #expect(try await trimmed.deliver(events(1...3_000), consumer: "app:1", on: redis) == Counts(pushed: 3_000, duplicates: 0))
            #expect(try await trimmed.deliver(events(3_001...4_000), consumer: "app:1", on: redis) == Counts(pushed: 1_000, duplicates: 0))
            let trimmedLength = try await length(redis, "trimmed")
            #expect(trimmedLength >= 1_000 && trimmedLength <= 1_000 + nodeSize, "XLEN \(trimmedLength)")
            // The oldest entries went; the newest stayed.
            let newest = try await redis.command("XREVRANGE", "trimmed", "+", "-", "COUNT", 1)
            #expect(newest.array?.first?.array?.last?.array?[1].string == "4000")
            let oldest = try await redis.command("XRANGE", "trimmed", "-", "+", "COUNT", 1)
            let oldestSeq = try #require(Int(oldest.array?.first?.array?.last?.array?[1].string ?? ""))
            #expect(oldestSeq > 2_900)

            let untrimmed = streamWriter(defaultStream: "untrimmed", maxLength: nil)
            #expect(try await untrimmed.deliver(events(1...3_000), consumer: "app:2", on: redis) == Counts(pushed: 3_000, duplicates: 0))
            #expect(try await length(redis, "untrimmed") == 3_000)

            await redis.close()
        }
    }

    @Test("after SCRIPT FLUSH the script is loaded again and delivery goes on")
    func scriptFlush() async throws {
        try await withTemporaryRedis { server in
            let redis = try await server.connect()
            let sink = streamWriter(defaultStream: "jobs")
            #expect(try await sink.deliver(events(1...3), consumer: "app:1", on: redis) == Counts(pushed: 3, duplicates: 0))
            try await redis.command("SCRIPT", "FLUSH")
            // Spans two script calls, both answered NOSCRIPT first.
            #expect(try await sink.deliver(events(1...700), consumer: "app:1", on: redis) == Counts(pushed: 697, duplicates: 3))
            #expect(try await length(redis, "jobs") == 700)
            try await redis.command("SCRIPT", "FLUSH")
            // A copy of the sink shares the cached SHA-1, and recovers the same way.
            let copy = sink
            #expect(try await copy.deliver(events(701...701), consumer: "app:1", on: redis) == Counts(pushed: 1, duplicates: 0))
            #expect(try await length(redis, "jobs") == 701)
            await redis.close()
        }
    }

    @Test("a stream key holding another type refuses its event; the others are written; the retry writes it once")
    func wrongType() async throws {
        try await withTemporaryRedis { server in
            let redis = try await server.connect()
            try await redis.command("RPUSH", "s:orders", "a list, not a stream")
            let writer = streamWriter(streams: ["orders": "s:orders"], defaultStream: "s:other")
            let batch = events(1...4, channel: { $0 == 2 || $0 == 4 ? "orders" : "users" })
            let outcome = try await writer.write(batch, consumer: "app:1", on: redis)
            #expect(outcome.written == 2)
            // The refused event names Redis' error; the later event of the same stream is not tried (its order).
            #expect(outcome.failures.map(\.job.event.seq) == [2, 4])
            #expect(outcome.failures.first?.message.hasPrefix("WRONGTYPE") == true, "\(outcome.failures)")
            #expect(outcome.failures.last?.message.hasPrefix("WRONGTYPE") == true, "the job not tried carries its stream's refusal")
            #expect(try await length(redis, "s:other") == 2)
            #expect(try await redis.command("HEXISTS", "pgevents:seen:app:1:delivered", "s:s:orders").integer == 0)

            try await redis.command("DEL", "s:orders")
            #expect(try await writer.deliver(batch, consumer: "app:1", on: redis) == Counts(pushed: 2, duplicates: 2))
            #expect(try await length(redis, "s:orders") == 2)
            #expect(try await length(redis, "s:other") == 2)
            await redis.close()
        }
    }

    @Test("10,000 events in one call: split into script calls, each added once, in order")
    func tenThousand() async throws {
        try await withTemporaryRedis { server in
            let redis = try await server.connect()
            try await createGroup(redis, "jobs")
            let sink = streamWriter(defaultStream: "jobs", maxLength: 20_000)
            let batch = events(1...10_000)
            #expect(try await sink.deliver(batch, consumer: "app:1", on: redis) == Counts(pushed: 10_000, duplicates: 0))
            let entries = try await readGroup(redis, "jobs", count: 20_000)
            #expect(entries.count == 10_000)
            #expect(entries.map { $0["seq"] } == (1...10_000).map { String($0) })
            #expect(try await sink.deliver(batch, consumer: "app:1", on: redis) == Counts(pushed: 0, duplicates: 10_000))
            #expect(try await length(redis, "jobs") == 10_000)
            await redis.close()
        }
    }

    @Test("created_at is ISO-8601 in UTC with milliseconds, truncated")
    func timestamps() {
        #expect(StreamTimestamp.text(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(StreamTimestamp.text(Date(timeIntervalSince1970: 1_714_566_896.789)) == "2024-05-01T12:34:56.789Z")
        #expect(StreamTimestamp.text(Date(timeIntervalSince1970: 1_714_566_896.789_999)) == "2024-05-01T12:34:56.789Z")
        #expect(StreamTimestamp.text(Date(timeIntervalSince1970: 1_709_164_800.5)) == "2024-02-29T00:00:00.500Z")
        #expect(StreamTimestamp.text(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        #expect(StreamTimestamp.text(Date(timeIntervalSince1970: -0.001)) == "1969-12-31T23:59:59.999Z")
        #expect(StreamTimestamp.text(Date(timeIntervalSince1970: 253_402_300_799.999)) == "9999-12-31T23:59:59.999Z")
    }
}
