import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Synchronization

/// `load-1000`, `throughput` and `latency`: writers commit single-row INSERTs into the source's table while the
/// processor runs, a listener and a consumer timestamp each event (see `ScenarioBench`). With `source: .wal` the
/// table is `events_wal` (no trigger, no notification: the `notified` stage stays empty) and the processor streams a
/// slot of the scenario's own, which is dropped afterwards.
extension ScenarioBench {
    enum LiveKind: String {
        case load = "load-1000"
        case throughput
        case latency
    }

    /// Notification receive times per sending backend, in order; and counts.
    final class Receiver: Sendable {
        let times = Mutex<[Int32: [Int64]]>([:])
        let count = Atomic<Int>(0)
        let last = Atomic<Int64>(0)
    }

    /// What the consumer took: deliveries per row id, and what it could not read.
    final class Taken: Sendable {
        let deliveries = Mutex<[UInt8]>([])
        let count = Atomic<Int>(0)
        let unreadable = Atomic<Int>(0)
        let last = Atomic<Int64>(0)
        /// Set when the run is over: the consumer stops.
        let stop = Atomic<Bool>(false)
    }

    func runLive(_ kind: LiveKind, on servers: BenchServers, progress: @escaping @Sendable (Progress) -> Void) async throws -> BenchResult {
        let started = Date()
        let writerCount = options.writers?.first ?? (kind == .latency ? 8 : 4)
        let duration = options.duration ?? 10
        let rate = options.rate
        let total: Int? =
            switch kind {
            case .load: options.events
            case .throughput: nil
            case .latency: max(1, Int((rate * duration).rounded()))
            }
        let database = try await servers.makeDatabase()
        let queue = "\(servers.keyPrefix):jobs:\(kind.rawValue)"
        let records = StageRecords()
        let notified = Receiver()
        let raw = Receiver()
        let taken = Taken()
        let name = options.source.name(kind.rawValue, pipeline: options.pipeline)
        let source = options.source

        // The processor, in this task group, with the hand-off probe.
        if source == .wal {
            try await PostgresConnection.withConnection(database.configuration) { connection in
                _ = try await WalSetup.create(
                    on: connection, slot: Self.liveSlot, publication: Self.liveSlot, tables: [source.table], logger: logger)
            }
        }
        let processor = try liveProcessor(queue: queue, database: database, servers: servers, records: records)
        let listener = try await database.connect()
        let rawListener = options.compareRaw ? try await database.connect() : nil
        var rss = (start: residentMegabytes() ?? 0, end: 0.0, max: 0.0)
        var writeStart: Int64 = 0
        var writeEnd: Int64 = 0
        var committedIDs: [Int64] = []
        var ordered: [(pid: Int32, ids: [Int64])] = []
        var backlogAtEnd = 0
        var drained = false

        do {
            try await listener.listen("new_event")
            try await rawListener?.listen("new_event")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await processor.run() }
                group.addTask { try await Self.receive(on: listener, into: notified, keepTimes: true) }
                if let rawListener { group.addTask { try await Self.receive(on: rawListener, into: raw, keepTimes: false) } }
                group.addTask { try await Self.consume(queue, redis: servers.redis, into: taken, records: records) }
                try await Self.waitForProcessor(database, source: source)
                rss.start = residentMegabytes() ?? rss.start
                rss.max = rss.start

                // Writers, with a ticker for progress and memory.
                let ticker = Self.startTicker(name, total: total, duration: duration, taken: taken, progress: progress)
                writeStart = benchWallNanoseconds()
                let startInstant = ContinuousClock.now
                let writeStartNs = writeStart
                let written: [(pid: Int32, ids: [Int64])]
                do {
                    written = try await Self.write(
                        kind, writers: writerCount, total: total, rate: rate, duration: duration, start: (writeStartNs, startInstant),
                        into: (database, source.table), records: records, name: name)
                } catch {
                    ticker.cancel()
                    throw error
                }
                writeEnd = benchWallNanoseconds()
                ordered = written.map { ($0.pid, $0.ids) }
                committedIDs = written.flatMap(\.ids)
                backlogAtEnd = max(0, committedIDs.count - taken.count.load(ordering: .relaxed))

                drained = try await Self.drain(taken, committed: committedIDs.count)
                try await Task.sleep(for: .milliseconds(200))  // late duplicates, if any, show up here
                ticker.cancel()
                rss.max = max(await ticker.value, rss.max)
                rss.end = residentMegabytes() ?? 0
                rss.max = max(rss.max, rss.end)
                taken.stop.store(true, ordering: .relaxed)
                group.cancelAll()
            }
        } catch {
            await listener.close()
            await rawListener?.close()
            await dropLiveSlot(database)
            try? await database.drop()
            throw error
        }
        await listener.close()
        await rawListener?.close()
        await dropLiveSlot(database)
        try? await database.drop()

        let measured = LiveMeasurement(
            rss: rss, writeStart: writeStart, writeEnd: writeEnd, committedIDs: committedIDs, ordered: ordered, backlogAtEnd: backlogAtEnd,
            drained: drained)
        return liveResult(
            kind, name: name, started: started, servers: servers, writers: writerCount, duration: duration, measured: measured,
            records: records, notified: notified, raw: raw, taken: taken)
    }

    /// Counts (and, with `keepTimes`, timestamps by sender) every notification until cancelled.
    static func receive(on connection: PostgresConnection, into receiver: Receiver, keepTimes: Bool) async throws {
        var iterator = await connection.notifications().makeAsyncIterator()
        while !Task.isCancelled, let batch = try await iterator.nextBatch() {
            guard let last = batch.last else { continue }
            if keepTimes {
                receiver.times.withLock { times in
                    for notification in batch {
                        times[notification.senderPID, default: []].append(Int64(notification.receivedAt.timeIntervalSince1970 * 1e9))
                    }
                }
            }
            receiver.count.add(batch.count, ordering: .relaxed)
            receiver.last.store(Int64(last.receivedAt.timeIntervalSince1970 * 1e9), ordering: .relaxed)
        }
    }

    /// The slot (and publication) of a live scenario on `source: .wal`.
    static let liveSlot = "pgevents_bench_live"

    /// Drops the live scenario's slot and publication, if it made them (a slot left behind would keep WAL).
    private func dropLiveSlot(_ database: BenchDatabase) async {
        guard options.source == .wal else { return }
        do {
            try await PostgresConnection.withConnection(database.configuration) { try await Self.dropSlot(Self.liveSlot, on: $0) }
        } catch {
            logger.warning(
                "pgevents bench: could not drop the replication slot", metadata: ["slot": "\(Self.liveSlot)", "error": "\(error)"])
        }
    }

    /// The reference processor delivering the source's channel to `queue`, with a probe that stamps each event's row
    /// id when Redis has taken its chunk.
    func liveProcessor(queue: String, database: BenchDatabase, servers: BenchServers, records: StageRecords) throws -> EventProcessor {
        let configuration = try ProcessorConfiguration(
            yaml: """
                consumer: bench
                \(options.source.processorYAML(slot: Self.liveSlot))
                channels: {"\(options.source.channel)": \(options.pipeline.channelYAML(queue: queue, table: options.source.table))}
                batch_size: \(options.batchSize)
                catch_up_interval: 1
                key_prefix: "\(servers.keyPrefix):seen"
                """, file: "bench.yml")
        var probed = EventProcessor(configuration: configuration, postgres: database.configuration, redis: servers.redis, logger: logger)
        probed.onDelivered = { events in
            let now = benchWallNanoseconds()
            let ids = events.compactMap { event in
                event.payload.utf8.withContiguousStorageIfAvailable { rowID(in: $0) } ?? rowID(in: Array(event.payload.utf8))
            }
            records.set(.queued, ids, now)
        }

        return probed
    }

    /// What a live run measured, for its figures.
    struct LiveMeasurement {
        var rss: (start: Double, end: Double, max: Double)
        var writeStart: Int64, writeEnd: Int64
        var committedIDs: [Int64]
        /// Each writer's backend pid and the ids it committed, in order.
        var ordered: [(pid: Int32, ids: [Int64])]
        var backlogAtEnd: Int
        var drained: Bool
    }

    /// The result of a live run: notifications matched to rows, the ledger, the stages and the scenario's figures.
    func liveResult(
        _ kind: LiveKind, name: String, started: Date, servers: BenchServers, writers writerCount: Int, duration: Double,
        measured: LiveMeasurement,
        records: StageRecords, notified: Receiver, raw: Receiver, taken: Taken
    ) -> BenchResult {
        let (rss, writeStart, writeEnd, committedIDs) = (measured.rss, measured.writeStart, measured.writeEnd, measured.committedIDs)
        let (ordered, backlogAtEnd, drained, rate) = (measured.ordered, measured.backlogAtEnd, measured.drained, options.rate)
        // Notifications to rows: the k-th from a writer's backend is its k-th commit.
        let times = notified.times.withLock { $0 }
        for (pid, ids) in ordered {
            for (id, time) in zip(ids, times[pid] ?? []) { records.set(.notified, id, time) }
        }
        let ledger = EventLedger()
        ledger.setCommitted(committedIDs)
        let deliveries = taken.deliveries.withLock { $0 }
        for (index, count) in deliveries.enumerated() where count > 0 {
            for _ in 0..<count { ledger.delivered(Int64(index + 1)) }
        }
        let summary = ledger.summary
        let snapshot = records.snapshot()
        let report = StageReport(snapshot, ids: committedIDs)

        let committed = committedIDs.count
        let writeSeconds = Double(writeEnd - writeStart) / 1e9
        let lastConsumed = taken.last.load(ordering: .relaxed)
        let totalSeconds = Double(max(lastConsumed, writeEnd) - writeStart) / 1e9
        let eventsPerSecond = Double(summary.delivered) / max(totalSeconds, 1e-9)
        let lastCommit = snapshot[.committed]?.max() ?? writeEnd
        var extra: [String: Double] = [
            "commits_per_s": Double(committed) / max(writeSeconds, 1e-9),
            "notifications_per_s": Double(notified.count.load(ordering: .relaxed))
                / max(Double(notified.last.load(ordering: .relaxed) - writeStart) / 1e9, 1e-9),
            "backlog_at_end": Double(backlogAtEnd),
            "write_s": writeSeconds,
            "writers": Double(writerCount),
            "clamped_intervals": Double(report.clamped),
            "unexpected": Double(summary.unexpected.count),
        ]
        if drained { extra["drain_s"] = max(0, Double(lastConsumed - writeEnd) / 1e9) }
        extra["processor_fraction_of_commits"] = eventsPerSecond / max(extra["commits_per_s"] ?? 1, 1e-9)
        if kind == .load { extra["consumed_after_last_commit_s"] = Double(lastConsumed - lastCommit) / 1e9 }
        if kind == .latency { extra["rate"] = rate }
        if kind == .throughput {
            extra["rss_start_mb"] = rss.start
            extra["rss_end_mb"] = rss.end
            extra["rss_max_mb"] = rss.max
            // The bench's own per-event memory, which the growth includes: stage records, notification times,
            // writers' id lists, delivery counts.
            extra["records_mb"] =
                records.megabytes + Double(notified.count.load(ordering: .relaxed) * 8 + committed * 8 + deliveries.count) / 1_048_576
        }
        if options.compareRaw {
            let rawCount = raw.count.load(ordering: .relaxed)
            let rawSeconds = Double(raw.last.load(ordering: .relaxed) - writeStart) / 1e9
            let rawRate = Double(rawCount) / max(rawSeconds, 1e-9)
            extra["raw_events_per_s"] = rawRate
            extra["fraction_of_raw"] = eventsPerSecond / max(rawRate, 1e-9)
        }
        var settings = ["writers": String(writerCount), "batch_size": String(options.batchSize), "source": options.source.rawValue]
        switch kind {
        case .load: settings["events"] = String(options.events)
        case .throughput: settings["duration_s"] = String(duration)
        case .latency:
            settings["rate"] = String(rate)
            settings["duration_s"] = String(duration)
        }
        let note: String =
            switch kind {
            case .latency: "latency_us: scheduled send (open loop) → consumed; stages from the commit's acknowledgement"
            default: "latency_us: commit acknowledged → consumed"
            }
        return result(
            name, servers: (servers.postgresVersion, servers.redisVersion), started: started, events: committed, duration: totalSeconds,
            eventsPerSecond: eventsPerSecond, latency: report.endToEnd.latency, stages: report.latencies,
            lost: summary.lost.count, duplicated: summary.duplicated.count, errors: taken.unreadable.load(ordering: .relaxed),
            extra: extra, note: note + (drained ? "" : "; NOT drained within 30 s of no progress"), settings: settings,
            distribution: report.endToEnd.distribution)
    }

    // MARK: The phases of a live scenario

    /// Reports progress every 250 ms until cancelled; returns the largest resident size it saw (MB).
    static func startTicker(
        _ name: String, total: Int?, duration: Double, taken: Taken, progress: @escaping @Sendable (Progress) -> Void
    ) -> Task<Double, Never> {
        Task {
            let begin = ContinuousClock.now
            var maximum = 0.0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                let elapsed = (ContinuousClock.now - begin).inSeconds
                if let megabytes = residentMegabytes() { maximum = max(maximum, megabytes) }
                let fraction = total.map { Double(taken.count.load(ordering: .relaxed)) / Double($0) } ?? elapsed / duration
                progress(
                    Progress(
                        scenario: name, fraction: min(1, fraction),
                        message: String(format: "%.1f s, %d consumed", elapsed, taken.count.load(ordering: .relaxed))))
            }
            return maximum
        }
    }

    /// The writers: `writerCount` connections, each committing single-row INSERTs one at a time until `total`
    /// events were written (load; latency, open loop at `rate` from `start`) or `duration` passed (throughput).
    /// Returns each writer's backend pid and the ids it committed, in order.
    static func write(
        _ kind: LiveKind, writers writerCount: Int, total: Int?, rate: Double, duration: Double,
        start: (wall: Int64, instant: ContinuousClock.Instant),
        into target: (database: BenchDatabase, table: String), records: StageRecords, name: String
    ) async throws -> [(pid: Int32, ids: [Int64])] {
        let database = target.database
        let insert = "INSERT INTO \(target.table) DEFAULT VALUES RETURNING id"
        let next = SharedCounter()
        let (writeStartNs, startInstant) = start
        return try await withThrowingTaskGroup(of: (pid: Int32, ids: [Int64]).self) { writers in
            for _ in 0..<writerCount {
                writers.addTask {
                    let connection = try await database.connect()
                    let pid = try await connection.query("SELECT pg_backend_pid()").scalar(Int32.self)
                    var ids: [Int64] = []
                    writing: while true {
                        var scheduled: Int64 = 0
                        switch kind {
                        case .load, .latency:
                            let index = next.next()
                            guard let total, index < total else { break writing }
                            if kind == .latency {
                                // Open loop: the i-th insert is due at start + i/rate whether or not earlier ones
                                // finished; its latency counts from then (no coordinated omission).
                                let offset = Double(index) / rate
                                scheduled = writeStartNs + Int64(offset * 1e9)
                                try await Task.sleep(until: startInstant + .nanoseconds(Int64(offset * 1e9)), clock: .continuous)
                            }
                        case .throughput:
                            guard (ContinuousClock.now - startInstant).inSeconds < duration else { break writing }
                        }
                        let id: Int64
                        do {
                            id = try await connection.query(insert).scalar(Int64.self)
                        } catch {
                            await connection.close()
                            throw HarnessError(code: .commandFailed, message: "pgevents bench \(name): a writer's INSERT failed: \(error)")
                        }
                        let now = benchWallNanoseconds()
                        records.set(.committed, id, now)
                        if scheduled > 0 { records.set(.scheduled, id, scheduled) }
                        ids.append(id)
                    }
                    await connection.close()
                    return (pid, ids)
                }
            }
            var all: [(pid: Int32, ids: [Int64])] = []
            for try await writer in writers { all.append(writer) }
            return all
        }
    }

    /// Waits until `committed` jobs were consumed (true), or 30 s pass without one (false).
    static func drain(_ taken: Taken, committed: Int) async throws -> Bool {
        var lastCount = -1
        var lastProgress = ContinuousClock.now
        while true {
            let count = taken.count.load(ordering: .relaxed)
            if count >= committed { return true }
            if count != lastCount {
                lastCount = count
                lastProgress = .now
            }
            if ContinuousClock.now - lastProgress > .seconds(30) { return false }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Takes jobs from `queue` with `BRPOP` (then `RPOP … 1000` for what else is there) until `stop`.
    static func consume(_ queue: String, redis: RedisConfiguration, into taken: Taken, records: StageRecords) async throws {
        func record(_ items: [[UInt8]], at now: Int64) {
            var ids: [Int64] = []
            ids.reserveCapacity(items.count)
            for item in items {
                if let id = rowID(in: item), id > 0 { ids.append(id) } else { taken.unreadable.add(1, ordering: .relaxed) }
            }
            records.set(.consumed, ids, now)
            taken.deliveries.withLock { deliveries in
                for id in ids {
                    let index = Int(id - 1)
                    if deliveries.count <= index { deliveries.append(contentsOf: repeatElement(0, count: index + 1 - deliveries.count)) }
                    if deliveries[index] < 255 { deliveries[index] += 1 }
                }
            }
            taken.count.add(ids.count, ordering: .relaxed)
            taken.last.store(now, ordering: .relaxed)
        }

        try await RedisConnection.withConnection(redis) { connection in
            while !taken.stop.load(ordering: .relaxed), !Task.isCancelled {
                let reply = try await connection.command("BRPOP", RedisArgument(queue), "0.1")
                guard let first = reply.array?.last?.bytes else { continue }
                var items = [first]
                var now = benchWallNanoseconds()
                record(items, at: now)
                while true {
                    let more = try await connection.command("RPOP", RedisArgument(queue), "1000")
                    guard let elements = more.array, !elements.isEmpty else { break }
                    now = benchWallNanoseconds()
                    items = elements.compactMap(\.bytes)
                    record(items, at: now)
                    if elements.count < 1000 { break }
                }
            }
        }
    }

    /// Waits until the processor has registered its consumer and its listener is connected, or (WAL) streams its
    /// slot (at most 15 s).
    static func waitForProcessor(_ database: BenchDatabase, source: SourceMode = .journal) async throws {
        try await database.connect().closeAfter { connection in
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                let ready = try await connection.query(
                    source == .wal
                        ? "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = '\(liveSlot)'"
                        : """
                        SELECT EXISTS (SELECT FROM pgevents.consumers WHERE name = 'bench')
                           AND EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgevents-listener')
                        """
                ).scalar(Bool.self)
                if ready { return }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw HarnessError(
                code: .startupFailed, message: "pgevents bench: the processor did not register its consumer and listen within 15 s")
        }
    }
}
