// Measures the journal processor on throwaway servers:
//   burst    — 100,000 events committed in one transaction, then drained: events/s.
//   writers  — single-row notifying INSERTs from several connections as fast as they commit, with the
//              processor running: commits/s, and whether the processor kept up (backlog at the end).
//   latency  — single-row INSERTs on an open-loop schedule (default 1,000/s): insert → taken by BRPOP.
//
//   rtt      — (only with --only rtt) the building blocks: a query, a Redis PING, NOTIFY → received.
//   replication — (only with --only replication) publisher commit → subscriber trigger → notification.
//
//   PGEVENTS_BENCHMARKS=1 swift run -c release pgevents-processor-bench [--only burst|writers|latency|rtt|replication]
//       [--burst N] [--rate R] [--seconds S] [--writers N] [--async-commit] [--log-level trace]
import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Synchronization

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Double) -> Double {
    arguments.firstIndex(of: name).flatMap { arguments.indices.contains($0 + 1) ? Double(arguments[$0 + 1]) : nil } ?? fallback
}
let burstSize = Int(option("--burst", 100_000))
let rate = option("--rate", 1_000)
let seconds = option("--seconds", 5)
let writerCount = Int(option("--writers", 4))
let batchSize = Int(option("--batch", 1_000))
let asyncCommit = arguments.contains("--async-commit")

/// Percentiles of latencies in milliseconds: "p50 … ms, p90 …, p99 …, p99.9 …, max …".
func summary(_ values: [Double]) -> String {
    let sorted = values.sorted()
    func percentile(_ p: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
    return String(format: "p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms",
                  percentile(0.5), percentile(0.9), percentile(0.99), percentile(0.999), sorted.last ?? .nan)
}

/// Commit acknowledgement times by send time, written by the insert tasks and read by the consumer.
final class CommitTimes: Sendable {
    let times = Mutex<[Int64: Int64]>([:])
}

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
    handler.logLevel = arguments.firstIndex(of: "--log-level").flatMap { Logger.Level(rawValue: arguments[$0 + 1]) } ?? .warning
    return handler
}
let configuration = try ProcessorConfiguration(yaml: "consumer: bench\nchannels: {new_event: {queue: jobs}}\ncatch_up_interval: 1")
print("PostgreSQL \(postgres.binaries.version), Redis \(redis.version), \(ProcessInfo.processInfo.activeProcessorCount) cores")

let only = arguments.firstIndex(of: "--only").map { arguments[$0 + 1] }
// MARK: round trips
// The building blocks of the pipeline's latency, one at a time on an idle machine: a query through
// PostgresConnection, a Redis PING, and NOTIFY → received by a listening connection.
if only == "rtt" {
    let database = try await postgres.makeDatabase()
    let connection = try await database.connect()
    let listener = try await database.connect()
    let cache = try await redis.connect()
    var query: [Double] = [], ping: [Double] = [], notify: [Double] = []
    try await listener.listen("rtt")
    var notifications = await listener.notifications().makeAsyncIterator()
    for _ in 0..<2_000 {
        var start = ContinuousClock.now
        try await connection.query("SELECT 1")
        query.append(elapsed(since: start) * 1000)
        start = ContinuousClock.now
        _ = try await cache.command("PING")
        ping.append(elapsed(since: start) * 1000)
        start = ContinuousClock.now
        try await connection.notify("rtt", payload: "x")
        _ = try await notifications.next()
        notify.append(elapsed(since: start) * 1000)
    }
    print("SELECT 1:            \(summary(query))")
    print("Redis PING:          \(summary(ping))")
    print("NOTIFY → received:   \(summary(notify))")
}

// MARK: replication
// Publisher commit → subscriber trigger → notification, on a ReplicationPair (only with --only replication):
// pair setup time, then an open-loop schedule of single-row INSERTs on the publisher.
if only == "replication" {
    let setupStart = ContinuousClock.now
    let pair = try await ReplicationPair.start()
    let table = "CREATE TABLE public.ticks (id bigserial PRIMARY KEY, sent_ns bigint NOT NULL)"
    let publisherSetup = try await pair.publisherDatabase.connect()
    try await publisherSetup.execute(table)
    let subscriberSetup = try await pair.subscriberDatabase.connect()
    try await subscriberSetup.execute(table + """
        ;
        CREATE FUNCTION notify_tick() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('ticks', NEW.id || ' ' || NEW.sent_ns); RETURN NULL; END $$;
        CREATE TRIGGER ticks_notify AFTER INSERT ON public.ticks FOR EACH ROW EXECUTE FUNCTION notify_tick();
        ALTER TABLE public.ticks ENABLE ALWAYS TRIGGER ticks_notify;
        """)
    try await pair.publish("ticks_pub", tables: [.init(QualifiedName(schema: "public", name: "ticks"))])
    try await pair.subscribe("ticks_sub", to: "ticks_pub")
    let setupSeconds = elapsed(since: setupStart)
    let listener = try await pair.subscriberDatabase.connect()
    try await listener.listen("ticks")
    let stream = await listener.notifications()
    let total = Int(rate * seconds)
    let committed = CommitTimes()
    var latencies: [Double] = [], afterCommit: [Double] = []
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            var writers: [PostgresConnection] = []
            for _ in 0..<4 { writers.append(try await pair.publisherDatabase.connect()) }
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { inserts in
                for index in 0..<total {
                    try await Task.sleep(until: start + .nanoseconds(Int64(Double(index) / rate * 1e9)), clock: .continuous)
                    let writer = writers[index % writers.count]
                    inserts.addTask {
                        let sent = wallNanoseconds()
                        try await writer.query("INSERT INTO ticks (sent_ns) VALUES ($1)", [Int(sent)])
                        let done = wallNanoseconds()
                        committed.times.withLock { $0[sent] = done }
                    }
                }
                try await inserts.waitForAll()
            }
            for writer in writers { await writer.close() }
        }
        var notifications = stream.makeAsyncIterator()
        while latencies.count < total, let notification = try await notifications.next() {
            let now = wallNanoseconds()
            guard let sent = notification.payload.split(separator: " ").last.flatMap({ Int64($0) }) else { continue }
            latencies.append(Double(now - sent) / 1e6)
            if let done = committed.times.withLock({ $0[sent] }) { afterCommit.append(Double(now - done) / 1e6) }
        }
        try await group.waitForAll()
    }
    print(String(format: "replication: pair set up (2 clusters, schema, publication, subscription, initial copy) in %.2f s", setupSeconds))
    print(String(format: "replication at %.0f rows/s for %.0f s (%d rows):", rate, seconds, latencies.count))
    print("  publisher insert sent → subscriber notification:     \(summary(latencies))")
    print("  publisher commit acknowledged → subscriber notification: \(summary(afterCommit))")
    for connection in [publisherSetup, subscriberSetup, listener] { await connection.close() }
    await pair.shutdown()
}

// MARK: burst
// Twice in one run: payloads passed through, then the full pipeline (JSON decoding, a row fetched per event,
// two rules, a job rendered from a template) — the ratio shows what the pipeline costs.
let pipelineChannels = try ProcessorConfiguration(yaml: """
    channels:
      new_event:
        decode: json
        fetch: {table: public.events, key: id, from: event.row.id}
        rule_mode: all_matches
        rules:
          - name: odd
            when: {all: [{field: event.op, eq: INSERT}, {field: row.sent_ns, gte: 0}]}
            enqueue: {queue: burst, job: {id: "{{event.row.id}}", sent: "{{row.sent_ns}}", table: "{{event.table}}"}}
          - name: never
            when: {field: event.row.id, lt: 0}
            enqueue: {queue: never, job: {id: "{{event.row.id}}"}}
    """).channels
for withPipeline in [false, true] where only == nil || only == "burst" {
    let database = try await postgres.makeDatabase()
    let writer = try await database.connect()
    let insertStart = ContinuousClock.now
    try await writer.query("INSERT INTO events (sent_ns) SELECT 0 FROM generate_series(1, $1)", [burstSize])
    let insertSeconds = elapsed(since: insertStart)
    let pipeline = EventPipeline(channels: Dictionary(uniqueKeysWithValues: pipelineChannels.map { ($0.name, $0.pipeline) }), deadLetterQueue: "dead")
    let reader = try await redis.connect()
    _ = try await reader.command("DEL", "burst")
    let delivery = JournalDelivery(
        configuration: .init(postgres: database.configuration, redis: redis.configuration, consumer: JournalConsumer(name: "burst"),
                             sink: RedisListSink(defaultQueue: "burst"), batchSize: batchSize, pipeline: withPipeline ? pipeline : nil),
        logger: Logger(label: "bench"))
    let clock = ProcessInfo.processInfo.systemUptime
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let cpuBefore = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    let progress = try await delivery.drain()
    let drainSeconds = ProcessInfo.processInfo.systemUptime - clock
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let cpuAfter = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    let queued = try await reader.command("LLEN", "burst").integer ?? -1
    print(String(format: "burst %@ (chunks of \(batchSize)): %d events inserted in one transaction in %.2f s; drained %d (queued %d) in %.2f s = %.0f events/s; processor CPU %.1f µs/event",
                 withPipeline ? "with decode+fetch+rules" : "pass-through", burstSize, insertSeconds, progress.delivered, queued, drainSeconds,
                 Double(progress.delivered) / drainSeconds, (cpuAfter - cpuBefore) / Double(max(progress.delivered, 1)) * 1e6))
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
                    if asyncCommit { try await writer.execute("SET synchronous_commit = off") }
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
    print(String(format: "writers: %d connections (synchronous_commit %@) committed %d single-row INSERTs in %.0f s = %.0f commits/s; backlog at the end %d, drained %.3f s later",
                 writerCount, asyncCommit ? "off" : "on", committed, seconds, Double(committed) / seconds, backlog, drainedAfter))
    await reader.close()
}

// MARK: latency
if only == nil || only == "latency" {
    let database = try await postgres.makeDatabase()
    let consumer = try await redis.connect()
    _ = try await consumer.command("DEL", "jobs")
    let total = Int(rate * seconds)
    var latencies: [Double] = []
    var afterCommit: [Double] = []
    latencies.reserveCapacity(total)
    // When each insert's commit was acknowledged to the writer, by its sent_ns: splits the latency into
    // the insert's own round trip and what follows the commit (notify → processor → Redis → BRPOP).
    let committed = CommitTimes()
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
                        inserts.addTask {
                            let sent = wallNanoseconds()
                            try await writer.query("INSERT INTO events (sent_ns) VALUES ($1)", [Int(sent)])
                            let done = wallNanoseconds()
                            committed.times.withLock { $0[sent] = done }
                        }
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
                if let done = committed.times.withLock({ $0[sent] }) { afterCommit.append(Double(now - done) / 1e6) }
            }
            try await group.waitForAll()
        }
    }
    print(String(format: "latency at %.0f events/s for %.0f s (%d events):", rate, seconds, latencies.count))
    print("  insert sent → BRPOP:        \(summary(latencies))")
    print("  commit acknowledged → BRPOP: \(summary(afterCommit)) (\(afterCommit.count) matched)")
    await consumer.close()
}

await redis.shutdown()
await postgres.shutdown()

