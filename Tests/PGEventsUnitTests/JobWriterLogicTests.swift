import Foundation
import PGEventsRedis
import Testing

@testable import PGEvents

private func event(_ seq: Int64, batch: Int64 = 0, channel: String = "c", payload: String = "p") -> SourceEvent {
    SourceEvent(seq: seq, batch: batch, channel: channel, payload: payload, createdAt: Date(timeIntervalSince1970: 0))
}

@Suite("Delivery positions, slices and replies of the job writer")
struct JobWriterLogicTests {
    @Test("positions order by batch, then seq (negative keys too), then the job's index, as fixed-width digit strings")
    func positions() {
        let ordered = [
            Job(event: event(5, batch: 1), destination: .list("q"), body: ""),
            Job(event: event(5, batch: 1), index: 1, destination: .list("q"), body: ""),
            Job(event: event(6, batch: 1), destination: .list("q"), body: ""),
            Job(event: event(-7, batch: 2), destination: .list("q"), body: ""),
            Job(event: event(0, batch: 2), destination: .list("q"), body: ""),
            Job(event: event(Int64.max, batch: 2), destination: .list("q"), body: ""),
            Job(event: event(1, batch: 3), destination: .list("q"), body: ""),
        ].map(\.position)
        #expect(ordered == ordered.sorted())
        #expect(Set(ordered.map(\.utf8.count)) == [46])
        #expect(ordered.allSatisfy { $0.allSatisfy(\.isNumber) })
        #expect(Job(event: event(3), index: 2, destination: .list("q"), body: "").key == "3:2")
    }

    @Test("each destination kind has its own field; a dead letter names the field it stands in for")
    func fields() {
        #expect(RedisJobWriter.field(for: .list("jobs")) == "l:jobs")
        #expect(RedisJobWriter.field(for: .stream("jobs", maxLength: 10)) == "s:jobs")
        #expect(RedisJobWriter.field(for: .deadLetter("dead", replacing: nil)) == "d:dead")
        let batch = BatchDestination(queue: "out", sink: .stream, streamMaxLength: nil, channel: "ch", group: "{}", spec: BatchSpec())
        #expect(RedisJobWriter.field(for: .batch(batch)) == "b:stream:ch:out")
    }

    @Test("slices hold at most 500 jobs and about 8 MB, never nothing")
    func slices() {
        let small = (1...1_234).map { Job(event: event(Int64($0)), destination: .list("q"), body: "x") }
        #expect(RedisJobWriter.slices(small).map(\.count) == [500, 500, 234])
        let big = String(repeating: "y", count: 3 << 20)
        let large = (1...5).map { Job(event: event(Int64($0)), destination: .list("q"), body: big) }
        #expect(RedisJobWriter.slices(large).map(\.count) == [2, 2, 1])
        let huge = [Job(event: event(1), destination: .list("q"), body: String(repeating: "z", count: 9 << 20))]
        #expect(RedisJobWriter.slices(huge).map(\.count) == [1])
        #expect(RedisJobWriter.slices([]).isEmpty)
    }

    @Test(
        "'not now' errors are outages; the rest refuse the call's jobs",
        arguments: [
            ("LOADING Redis is loading the dataset in memory", true), ("BUSY Redis is busy running a script", true),
            ("OOM command not allowed when used memory > 'maxmemory'.", true),
            ("READONLY You can't write against a read only replica.", true),
            ("MASTERDOWN Link with MASTER is down", true), ("NOREPLICAS Not enough good replicas to write.", true),
            ("WRONGTYPE Operation against a key holding the wrong kind of value", false), ("ERR Error running script", false),
        ])
    func outages(message: String, outage: Bool) {
        #expect(RedisJobWriter.isOutage(message) == outage)
    }

    @Test("the script's reply: written, duplicates, refusals with Redis' message, the jobs not tried carrying it")
    func reply() throws {
        let jobs = (1...5).map { Job(event: event(Int64($0)), destination: .list($0 % 2 == 0 ? "bad" : "good"), body: "\($0)") }
        let reply = RedisReply.array([
            .bulk(Array("10F1S".utf8)), .integer(0), .integer(0), .integer(-2), .integer(0),
            .integer(3), .bulk(Array("WRONGTYPE Operation against a key".utf8)),
        ])
        let outcome = try RedisJobWriter.outcome(of: reply, slice: jobs[...])
        #expect(outcome.written == 2)
        #expect(outcome.duplicates == 1)
        #expect(outcome.failures.map(\.job.event.seq) == [3, 5])
        #expect(outcome.failures.allSatisfy { $0.message.hasPrefix("WRONGTYPE") })
        #expect(!outcome.knowsBatchDeadline)

        let refused = try RedisJobWriter.outcome(of: .error("ERR Error running script"), slice: jobs[...])
        #expect(refused.failures.count == 5)
        #expect(throws: RedisError.self) { try RedisJobWriter.outcome(of: .error("LOADING Redis is loading"), slice: jobs[...]) }
        #expect(throws: RedisError.self) { try RedisJobWriter.outcome(of: .integer(3), slice: jobs[...]) }
    }
}

@Suite("The processor file's hardening settings")
struct HardeningConfigurationTests {
    @Test("wait, chunk_bytes, query_timeout, allow_redis_eviction, max_attempts and attempt_backoff are read")
    func read() throws {
        let configuration = try ProcessorConfiguration(
            yaml: """
                channels:
                  c: {queue: q, max_attempts: 5, attempt_backoff: 0.25}
                chunk_bytes: 4096
                query_timeout: 2.5
                allow_redis_eviction: true
                wait: {replicas: 2, timeout: 0.5, append_only: true}
                """)
        #expect(configuration.chunkBytes == 4_096)
        #expect(configuration.queryTimeout == 2.5)
        #expect(configuration.allowRedisEviction)
        #expect(configuration.redisWait == RedisWait(replicas: 2, timeout: .milliseconds(500), appendOnly: true))
        #expect(configuration.channels[0].pipeline.maxAttempts == 5)
        #expect(configuration.channels[0].pipeline.attemptBackoff == .milliseconds(250))
        let defaults = try ProcessorConfiguration(yaml: "channels: {c: {queue: q}}")
        #expect(defaults.redisWait == nil && !defaults.allowRedisEviction && defaults.pruneInterval == 10)
        #expect(defaults.channels[0].pipeline.maxAttempts == 3)
    }

    @Test(
        "bad values name the file, line and key",
        arguments: [
            ("channels: {c: {queue: q}}\nwait: {timeout: 1}", "processor.yml:2:7: wait: 'replicas' is missing"),
            ("channels: {c: {queue: q}}\nwait: {replicas: 0}", "processor.yml:2:18: wait.replicas: replicas: 0 waits for nothing"),
            ("channels: {c: {queue: q, max_attempts: 0}}", "processor.yml:1:40: channels.c.max_attempts:"),
            ("channels: {c: {queue: q}}\nchunk_bytes: 10", "processor.yml:2:14: chunk_bytes:"),
        ])
    func errors(yaml: String, expected: String) {
        let error = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: yaml) }
        #expect(error?.message.hasPrefix(expected) == true, "\(error?.message ?? "")")
    }
}
