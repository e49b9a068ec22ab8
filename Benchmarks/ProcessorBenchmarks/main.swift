// Measures the journal processor on throwaway servers:
//   burst    — 100,000 events committed in one transaction, then drained: events/s.
//   writers  — single-row notifying INSERTs from several connections as fast as they commit, with the
//              processor running: commits/s, and whether the processor kept up (backlog at the end).
//   latency  — single-row INSERTs on an open-loop schedule (default 1,000/s): insert → taken by BRPOP.
//
//   PGEVENTS_BENCHMARKS=1 swift run -c release pgevents-processor-bench [--burst N] [--rate R] [--seconds S]
import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Double) -> Double {
    arguments.firstIndex(of: name).flatMap { arguments.indices.contains($0 + 1) ? Double(arguments[$0 + 1]) : nil } ?? fallback
}
let burstSize = Int(option("--burst", 100_000))
let rate = option("--rate", 1_000)
let seconds = option("--seconds", 5)
let writerCount = Int(option("--writers", 4))
let batchSize = Int(option("--batch", 1_000))

func elapsed(since start: ContinuousClock.Instant) -> Double {
    let duration = ContinuousClock.now - start
    return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func wallNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

let journalSQL = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("sql/pgevents/001_journal.sql").path, encoding: .utf8)

let postgres = try await TemporaryPostgres.start()
let redis = try await TemporaryRedis.start()
try await postgres.makeTemplate { connection in
    try await connection.execute(journalSQL)
    try await connection.execute("""
        CREATE TABLE events (id bigserial PRIMARY KEY, sent_ns bigint NOT NULL, body text NOT NULL DEFAULT '');
        CREATE TRIGGER events_journal AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('new_event');
        """)
}
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}
let configuration = try ProcessorConfiguration(yaml: "consumer: bench\nchannels: {new_event: {queue: jobs}}\ncatch_up_interval: 1")
print("PostgreSQL \(postgres.binaries.version), Redis \(redis.version), \(ProcessInfo.processInfo.activeProcessorCount) cores")

let only = arguments.firstIndex(of: "--only").map { arguments[$0 + 1] }
// MARK: burst
if only == nil || only == "burst" {
    let database = try await postgres.makeDatabase()
    let writer = try await database.connect()
    let insertStart = ContinuousClock.now
    try await writer.query("INSERT INTO events (sent_ns) SELECT 0 FROM generate_series(1, $1)", [burstSize])
    let insertSeconds = elapsed(since: insertStart)
    let delivery = JournalDelivery(
        configuration: .init(postgres: database.configuration, redis: redis.configuration, consumer: JournalConsumer(name: "burst"), sink: RedisListSink(defaultQueue: "burst"), batchSize: batchSize),
        logger: Logger(label: "bench"))
    let clock = ProcessInfo.processInfo.systemUptime
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let cpuBefore = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    let progress = try await delivery.drain()
    let drainSeconds = ProcessInfo.processInfo.systemUptime - clock
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let cpuAfter = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    let reader = try await redis.connect()
    let queued = try await reader.command("LLEN", "burst").integer ?? -1
    print(String(format: "burst (chunks of \(batchSize)): %d events inserted in one transaction in %.2f s; drained %d (queued %d) in %.2f s = %.0f events/s; processor CPU %.1f µs/event",
                 burstSize, insertSeconds, progress.delivered, queued, drainSeconds, Double(progress.delivered) / drainSeconds,
                 (cpuAfter - cpuBefore) / Double(max(progress.delivered, 1)) * 1e6))
    await delivery.close()
    await writer.close()
    await reader.close()
}

/// Runs the processor while `body` runs; stops it afterwards.
func withProcessor(_ database: TemporaryDatabase, _ body: () async throws -> Void) async throws {
    let processor = JournalProcessor(configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "bench"))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await processor.run() }
        try await body()
        group.cancelAll()
    }
}

// MARK: writers
if only == nil || only == "writers" {
    let database = try await postgres.makeDatabase()
    let reader = try await redis.connect()
    _ = try await reader.command("DEL", "jobs")
    var committed = 0
    var backlog = 0
    var drainedAfter = 0.0
    try await withProcessor(database) {
        let start = ContinuousClock.now
        committed = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<writerCount {
                group.addTask {
                    let writer = try await database.connect()
                    var count = 0
                    while elapsed(since: start) < seconds {
                        try await writer.query("INSERT INTO events (sent_ns) VALUES ($1)", [Int(wallNanoseconds())])
                        count += 1
                    }
                    await writer.close()
                    return count
                }
            }
            var sum = 0
            for try await count in group { sum += count }
            return sum
        }
        backlog = committed - Int(try await reader.command("LLEN", "jobs").integer ?? 0)
        let drainStart = ContinuousClock.now
        while try await reader.command("LLEN", "jobs").integer ?? 0 < committed { try await Task.sleep(for: .milliseconds(5)) }
        drainedAfter = elapsed(since: drainStart)
    }
    print(String(format: "writers: %d connections committed %d single-row INSERTs in %.0f s = %.0f commits/s; backlog at the end %d, drained %.3f s later",
                 writerCount, committed, seconds, Double(committed) / seconds, backlog, drainedAfter))
    await reader.close()
}

// MARK: latency
if only == nil || only == "latency" {
    let database = try await postgres.makeDatabase()
    let consumer = try await redis.connect()
    _ = try await consumer.command("DEL", "jobs")
    let total = Int(rate * seconds)
    var latencies: [Double] = []
    latencies.reserveCapacity(total)
    try await withProcessor(database) {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Open loop: the i-th insert is due at start + i/rate, whether or not the previous ones finished.
                var writers: [PostgresConnection] = []
                for _ in 0..<4 { writers.append(try await database.connect()) }
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { inserts in
                    var inFlight = 0
                    for index in 0..<total {
                        let due = start + .nanoseconds(Int64(Double(index) / rate * 1e9))
                        try await Task.sleep(until: due, clock: .continuous)
                        let writer = writers[index % writers.count]
                        inserts.addTask { try await writer.query("INSERT INTO events (sent_ns) VALUES ($1)", [Int(wallNanoseconds())]) }
                        inFlight += 1
                        while inFlight > 512 { try await inserts.next(); inFlight -= 1 }
                    }
                    try await inserts.waitForAll()
                }
                for writer in writers { await writer.close() }
            }
            while latencies.count < total {
                let reply = try await consumer.command("BRPOP", "jobs", 5)
                guard let item = reply.array?.last?.bytes else {
                    let check = try await database.connect()
                    let journal = try await check.query("SELECT count(*) FROM pgevents.journal").scalar(Int.self)
                    let consumers = try await check.query("SELECT string_agg(name || ' ' || done_snapshot::text || ' ' || coalesce(batch_snapshot::text, '-'), '; ') FROM pgevents.consumers").scalar(String?.self)
                    let activity = try await check.query("SELECT string_agg(application_name || ':' || state || ':' || left(query, 60), E'\n') FROM pg_stat_activity WHERE datname = current_database()").scalar(String?.self)
                    print("latency: no job within 5 s after \(latencies.count); journal \(journal) consumers \(consumers ?? "-")\n\(activity ?? "")")
                    break
                }
                let now = wallNanoseconds()
                let object = try JSONSerialization.jsonObject(with: Data(item)) as? [String: Any]
                let sent = ((object?["row"] as? [String: Any])?["sent_ns"] as? NSNumber)?.int64Value ?? now
                latencies.append(Double(now - sent) / 1e6)
            }
            try await group.waitForAll()
        }
    }
    latencies.sort()
    func percentile(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
    print(String(format: "latency at %.0f events/s for %.0f s (%d events): insert → BRPOP p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
                 rate, seconds, latencies.count, percentile(0.5), percentile(0.9), percentile(0.99), percentile(0.999), latencies.last ?? .nan))
    await consumer.close()
}

await redis.shutdown()
await postgres.shutdown()

