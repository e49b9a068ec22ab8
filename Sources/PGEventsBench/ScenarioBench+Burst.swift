import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Synchronization

/// `burst`: `burstSize` events committed in one transaction, then drained by the processor's delivery
/// (`EventDelivery.drain`, what the processor runs on a wake-up) with nothing else running in the process:
/// the drain rate, and the process's CPU time per event during the drain. The jobs are then read back from
/// Redis for the ledger (not timed).
///
/// With `source: .wal`: the rows go into `events_wal`, a table in a publication with no trigger, and the drain streams
/// them from a replication slot (the WAL sender's decoding runs on the same machine, inside the timed drain).
///
/// With `compareRaw`: the same number of rows committed in one transaction into `raw_events`, whose row
/// trigger sends `pg_notify('raw_event', id)`, received by a LISTEN loop that only counts: notifications per
/// second from the commit's acknowledgement to the last one received.
extension ScenarioBench {
    func runBurst(on servers: BenchServers, progress: @escaping @Sendable (Progress) -> Void) async throws -> BenchResult {
        let started = Date()
        let size = options.burstSize
        let database = try await servers.makeDatabase()
        let queue = "\(servers.keyPrefix):jobs:burst"
        do {
            let writer = try await database.connect()
            let wal = options.source == .wal
            let table = options.source.table
            if wal {
                _ = try await WalSetup.create(
                    on: writer, slot: Self.burstSlot, publication: Self.burstSlot, tables: [table], logger: logger)
            }
            let insertStart = ContinuousClock.now
            try await writer.query("INSERT INTO \(table) (body) SELECT '' FROM generate_series(1, $1)", [size])
            let insertSeconds = (ContinuousClock.now - insertStart).inSeconds
            progress(
                Progress(
                    scenario: "burst", fraction: 0.2,
                    message: String(format: "%d events committed in %.2f s; draining", size, insertSeconds)))

            // The processor's own delivery, built from a configuration as `pgevents process` builds it.
            let configuration = try ProcessorConfiguration(
                yaml: """
                    consumer: bench
                    \(options.source.processorYAML(slot: Self.burstSlot))
                    channels: {"\(options.source.channel)": \(options.pipeline.channelYAML(queue: queue, table: table))}
                    batch_size: \(options.batchSize)
                    key_prefix: "\(servers.keyPrefix):seen"
                    """, file: "bench.yml")
            var processor = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: servers.redis, logger: logger)
            // When Redis took the first chunk: on the WAL, the server decodes the whole transaction before it sends
            // its first change, and that wait is part of the drain.
            let firstChunk = SharedCounter()
            processor.onDelivered = { _ in
                _ = firstChunk.value.compareExchange(expected: 0, desired: Int(benchWallNanoseconds()), ordering: .relaxed)
            }
            // On the thread `pgevents process` would give its connections (the WAL's: one for stream and Redis).
            let thread = processor.makeDeliveryThread()
            defer { thread?.shutdown() }
            let source = processor.makeSource(executor: thread)
            let delivery = processor.makeDelivery(source: source, executor: thread)
            let cpuBefore = processCPUSeconds()
            let drainStart = ContinuousClock.now
            let drainStartWall = benchWallNanoseconds()
            var delivered = 0
            var chunks = 0
            if let stream = source as? WalSource {
                // The WAL sender sends the transaction as it decodes it: drain what has come, wait for more.
                let deadline = ContinuousClock.now + .seconds(300)
                while delivered < size, ContinuousClock.now < deadline {
                    let outcome = try await delivery.drain()
                    delivered += outcome.delivered
                    chunks += outcome.chunks
                    if outcome.delivered == 0 { await stream.waitForEvents() }
                }
            } else {
                // One drain takes the whole batch; a second one finds nothing unless a retry split it.
                while delivered < size {
                    let outcome = try await delivery.drain()
                    if outcome.delivered == 0 { break }
                    delivered += outcome.delivered
                    chunks += outcome.chunks
                }
            }
            // Batches still open (fewer than 10 jobs of a group) are sent now, inside the timed drain.
            if options.pipeline == .batch { try await delivery.flushBatches(all: true) }
            let drainSeconds = (ContinuousClock.now - drainStart).inSeconds
            let cpuSeconds = processCPUSeconds() - cpuBefore
            await (source as? WalSource)?.close()
            await delivery.close()
            if wal { try await Self.dropSlot(Self.burstSlot, on: writer) }
            progress(
                Progress(
                    scenario: "burst", fraction: 0.6, message: String(format: "drained %d in %.2f s; checking", delivered, drainSeconds)))

            // The ledger: the table's ids against the jobs in the list.
            let ledger = EventLedger()
            ledger.setCommitted(try await writer.query("SELECT id FROM \(table)").map { try $0.decode(Int64.self, at: 0) })
            let redis = try await RedisConnection.connect(servers.redis)
            var unreadable = 0
            var messages = 0
            while true {
                let reply = try await redis.command("RPOP", RedisArgument(queue), "10000")
                guard let elements = reply.array, !elements.isEmpty else { break }
                messages += elements.count
                for element in elements {
                    // A batch message holds several jobs, each with its "id".
                    let ids = element.bytes.map { options.pipeline == .batch ? rowIDs(in: $0) : rowID(in: $0).map { [$0] } ?? [] } ?? []
                    if ids.isEmpty { unreadable += 1 }
                    for id in ids { ledger.delivered(id) }
                }
            }
            await redis.close()

            var extra: [String: Double] = [
                "insert_s": insertSeconds, "drain_s": drainSeconds,
                "cpu_us_per_event": cpuSeconds / Double(max(delivered, 1)) * 1e6,
                "unreadable": Double(unreadable),
                "messages": Double(messages), "events_per_message": Double(delivered) / Double(max(messages, 1)),
                "chunks": Double(chunks), "events_per_chunk": Double(delivered) / Double(max(chunks, 1)),
                "first_chunk_s": Double(max(0, Int64(firstChunk.value.load(ordering: .relaxed)) - drainStartWall)) / 1e9,
            ]
            let eventsPerSecond = Double(delivered) / max(drainSeconds, 1e-9)
            if options.compareRaw {
                progress(Progress(scenario: "burst", fraction: 0.8, message: "raw LISTEN loop"))
                let rawRate = try await rawBurst(database: database, writer: writer, size: size)
                extra["raw_events_per_s"] = rawRate
                extra["fraction_of_raw"] = eventsPerSecond / max(rawRate, 1e-9)
            }
            await writer.close()
            try? await database.drop()
            let summary = ledger.summary
            return result(
                options.source.name("burst", pipeline: options.pipeline), servers: (servers.postgresVersion, servers.redisVersion),
                started: started, events: size,
                duration: drainSeconds,
                eventsPerSecond: eventsPerSecond, lost: summary.lost.count, duplicated: summary.duplicated.count, errors: unreadable,
                extra: extra,
                note:
                    "events_per_s: drain rate (EventDelivery.drain, source \(options.source.rawValue), pipeline \(options.pipeline.rawValue)); cpu_us_per_event: this process during the drain",
                settings: ["burst": String(size), "batch_size": String(options.batchSize), "source": options.source.rawValue])
        } catch {
            try? await database.drop()
            throw error
        }
    }

    static let burstSlot = "pgevents_bench_burst"

    /// Drops a bench slot once its WAL sender has gone (at most 30 s), and its publication.
    static func dropSlot(_ slot: String, on connection: PostgresConnection) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while try await connection.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active", [slot]).scalar(
            Int.self) > 0,
            ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await connection.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [slot])
        try await connection.execute("DROP PUBLICATION IF EXISTS \(PostgresIdentifier.quote(slot))")
    }

    /// The raw receive rate of `size` notifications committed in one transaction.
    private func rawBurst(database: BenchDatabase, writer: PostgresConnection, size: Int) async throws -> Double {
        let listener = try await database.connect()
        try await listener.listen("raw_event")
        let receiver = Receiver()
        let task = Task { try await Self.receive(on: listener, into: receiver, keepTimes: false) }
        try await writer.query("INSERT INTO public.raw_events (body) SELECT '' FROM generate_series(1, $1)", [size])
        let committed = benchWallNanoseconds()
        let deadline = ContinuousClock.now + .seconds(120)
        while receiver.count.load(ordering: .relaxed) < size, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        task.cancel()
        await listener.close()
        let received = receiver.count.load(ordering: .relaxed)
        guard received >= size else {
            throw HarnessError(
                code: .commandFailed,
                message: "pgevents bench burst: the raw LISTEN loop received \(received) of \(size) notifications within 120 s")
        }
        return Double(received) / max(Double(receiver.last.load(ordering: .relaxed) - committed) / 1e9, 1e-9)
    }
}
