public import Logging
import Metrics
public import PGEventsPostgres
public import PGEventsRedis
public import PGEventsSystem

import struct Foundation.Date

/// Moves events from a source (the journal, a table) to Redis, chunk by chunk, in one line:
/// **source → pipeline → job writer → acknowledge**. The stages overlap: while Redis takes one chunk, PostgreSQL
/// acknowledges the previous one and reads the next; the cursor only ever passes events Redis has taken
/// (at least once; the writer's delivered positions make replays push nothing twice).
///
/// **An event never stops delivery.** What belongs to one event — a payload that cannot be decoded, a fetch key
/// that is not a value of its column's type, a job Redis refuses (`WRONGTYPE` on its queue), a job larger than
/// Redis takes — sends that event (or job) to the dead-letter list with the reason, after the channel's
/// `max_attempts` where another try could help, and the rest of the chunk is delivered in order
/// (``deliver(_:postgres:redis:)`` is the one place that decides).
///
/// **An outage is not an event's fault.** PostgreSQL or Redis unreachable, Redis `LOADING`, `BUSY`, `OOM`,
/// `READONLY` (a demoted primary: the connection is dropped and made again): nothing is read or dropped, the
/// cursor does not move, and it retries with backoff for as long as it takes. Every PostgreSQL statement has
/// a deadline (``Configuration/queryTimeout``), so a frozen server is noticed, not waited for.
///
/// It consumes only while it holds the consumer's leader lock (a session advisory lock), so several processors on
/// one configuration never deliver the same events: the others stand by and take over when the leader's
/// connection goes away. Used by one task at a time (the processor's loop).
public final class EventDelivery {
    /// How the delivery reaches its servers and what it delivers.
    public struct Configuration: Sendable {
        public var postgres: PostgresConfiguration
        public var redis: RedisConfiguration
        public var source: any EventSource
        /// Decoding, rows, rules and destinations, per channel.
        public var pipeline: EventPipeline
        /// Key prefix and dead-letter list of the writer.
        public var writer: RedisJobWriter
        /// Events per chunk (one read, one write, one acknowledgement).
        public var batchSize: Int
        /// Payload bytes per chunk, about (always at least one event): a run of large payloads cannot take the
        /// processor's memory with it.
        public var chunkBytes: Int
        /// Register a new consumer at the start of the journal (else: from now on).
        public var fromStart: Bool
        /// How long a PostgreSQL statement may wait for its answer before the connection is dropped.
        public var queryTimeout: Duration
        /// Delay before retry `attempt` (1, 2, …) after an outage.
        public var retryDelay: @Sendable (Int) -> Duration
        /// How durable a chunk must be in Redis before it is acknowledged (replicas, append-only file); nil: in the
        /// primary's memory.
        public var wait: RedisWait?
        /// Called with each chunk once Redis has taken it (its jobs are queued), before it is acknowledged: a probe
        /// for measurements (`pgevents bench` records when each event was queued). Keep it cheap; nil by default.
        public var onDelivered: (@Sendable ([SourceEvent]) -> Void)?
        /// Where the delivery reports its role (leader or standby), what it delivered last and why it retries, for
        /// probes; nil: nowhere.
        public var status: ProcessorStatus?
        /// Labels of its metrics beside `consumer` (`database` when one process serves several).
        public var metricDimensions: [(String, String)] = []
        /// The delivery's thread: its Redis connection (one server) runs on it. A loop that runs the delivery with
        /// this thread as its task executor (``EventProcessor`` does, for the WAL source, whose stream runs on it too)
        /// reads, decodes and writes without switching threads. nil: every connection on a thread of its own.
        public var executor: ThreadExecutor?

        public init(
            postgres: PostgresConfiguration, redis: RedisConfiguration, source: any EventSource,
            pipeline: EventPipeline = EventPipeline(channels: [:]), writer: RedisJobWriter = RedisJobWriter(),
            batchSize: Int = 1_000, chunkBytes: Int = 16 << 20, fromStart: Bool = true, queryTimeout: Duration = .seconds(30),
            retryDelay: @escaping @Sendable (Int) -> Duration = { attempt in .milliseconds(min(10_000, 100 << min(attempt - 1, 7))) },
            wait: RedisWait? = nil, onDelivered: (@Sendable ([SourceEvent]) -> Void)? = nil, status: ProcessorStatus? = nil
        ) {
            self.status = status
            self.wait = wait
            self.postgres = postgres
            self.redis = redis
            self.source = source
            self.pipeline = pipeline
            self.writer = writer
            self.batchSize = batchSize
            self.chunkBytes = chunkBytes
            self.fromStart = fromStart
            self.queryTimeout = queryTimeout
            self.retryDelay = retryDelay
            self.onDelivered = onDelivered
        }
    }

    /// What a `drain` did.
    public struct Progress: Sendable, Equatable {
        public var delivered = 0
        public var duplicates = 0
        public var deadLettered = 0
        public var chunks = 0
        /// False when another processor holds the consumer's leader lock (this one stood by).
        public var isLeader = true
    }

    public let configuration: Configuration
    private let logger: Logger
    private var postgres: PostgresConnection?
    private var redis: RedisSink?
    private var holdsLeaderLock = false
    /// `<consumer>:<instance>`: the consumer's key space in Redis.
    private var keySpace: String?
    private var prepared: PreparedPipeline?
    private var writer: RedisJobWriter
    private var attempt = 0
    private var announcedStandby = false
    private let deliveredCounter: Counter
    private let duplicateCounter: Counter
    private let retryCounter: Counter
    private let latency: Timer
    private let batchedItems: Counter
    /// When the oldest open batch is due (by Redis' reply); nil: none known to be open.
    public private(set) var nextBatchDeadline: ContinuousClock.Instant?

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.writer = configuration.writer
        let dimensions = [("consumer", configuration.source.name)] + configuration.metricDimensions
        deliveredCounter = Counter(label: "pgevents_events_delivered_total", dimensions: dimensions)
        duplicateCounter = Counter(label: "pgevents_events_duplicate_total", dimensions: dimensions)
        retryCounter = Counter(label: "pgevents_delivery_retries_total", dimensions: dimensions)
        latency = Timer(label: "pgevents_commit_to_queued_seconds", dimensions: dimensions)
        batchedItems = Counter(label: "pgevents_batched_jobs_total", dimensions: dimensions)
        // Batches staged by an earlier run (or another processor) are due at an unknown time: look at once.
        if configuration.pipeline.batches { nextBatchDeadline = .now }
    }

    /// Delivers the source's current batch for this consumer (everything committed before it started, and not
    /// delivered yet), then returns. Retries outages until it succeeds or the task is cancelled; `shouldStop` is
    /// checked between chunks (a chunk in flight is always finished and acknowledged first).
    @discardableResult
    public func drain(shouldStop: () -> Bool = { false }) async throws -> Progress {
        var progress = Progress()
        var prefetched: EventChunk?  // read, not delivered
        var unacknowledged: EventChunk?  // delivered, ack not sent yet
        let source = configuration.source
        let limit = configuration.batchSize
        let bytes = configuration.chunkBytes
        while !shouldStop() {
            try Task.checkCancellation()
            do {
                let postgres = try await postgresConnection()
                guard try await acquireLeadership(on: postgres) else {
                    progress.isLeader = false
                    configuration.status?.update { $0.problem = nil }
                    return progress
                }
                let chunk: EventChunk
                if let prefetched {
                    chunk = prefetched
                } else {
                    // A source that does not read ahead reads here what follows the chunk delivered last.
                    chunk = try await source.next(
                        on: postgres, limit: limit, maxBytes: bytes, after: source.readsAhead ? nil : unacknowledged)
                }
                prefetched = nil
                if !chunk.events.isEmpty {
                    let pending = unacknowledged
                    let redis = try await redisConnection()
                    // Redis takes this chunk while PostgreSQL records the previous one and reads the next. Both sides
                    // use the same PostgreSQL connection in turn (its actor orders the statements).
                    async let postgresSide: EventChunk? = {
                        guard !chunk.completesBatch, source.readsAhead else {
                            if let pending { try await source.ack(pending, on: postgres) }
                            return nil
                        }
                        return try await source.next(on: postgres, limit: limit, maxBytes: bytes, after: chunk, acknowledging: pending)
                    }()
                    let outcome = try await deliver(chunk.events, postgres: postgres, redis: redis)
                    // Durable enough (replicas, append-only file) before the journal may move past it.
                    if let wait = configuration.wait { try await wait.wait(on: redis) }
                    configuration.onDelivered?(chunk.events)
                    if let status = configuration.status, let last = chunk.events.last {
                        status.update {
                            $0.delivered += outcome.written
                            $0.lastDelivered = .init(batch: last.batch, seq: last.seq, at: Date.now)
                        }
                    }
                    progress.delivered += outcome.written
                    progress.duplicates += outcome.duplicates
                    progress.deadLettered += outcome.deadLettered
                    deliveredCounter.increment(by: outcome.written)
                    duplicateCounter.increment(by: outcome.duplicates)
                    let now = Date.now
                    for event in chunk.events { latency.recordSeconds(now.timeIntervalSince(event.createdAt)) }
                    prefetched = try await postgresSide
                    // A long drain does not hold back batches that fall due meanwhile.
                    if let deadline = nextBatchDeadline, deadline <= .now { try await flushBatches(all: false, on: redis) }
                } else if let pending = unacknowledged {
                    try await source.ack(pending, on: postgres)
                }
                unacknowledged = chunk
                progress.chunks += 1
                if attempt > 0 { configuration.status?.update { $0.problem = nil } }
                attempt = 0
                // A finished batch ends the drain: whatever committed since sent a wake-up of its own (or is found
                // by the next catch-up). Opening the next batch in the acknowledgement's statement was measured: no
                // latency gained, and three writes of the consumer's row per idle drain instead of one.
                if chunk.completesBatch {
                    try await source.ack(chunk, on: postgres)
                    return progress
                }
            } catch let error where Self.isRetryable(error) {
                // Read again from the stored cursor; what was delivered and not acknowledged is replayed, and the
                // writer's delivered positions make the replay push nothing twice.
                prefetched = nil
                unacknowledged = nil
                try await pause(after: error, doing: "delivery")
            }
        }
        // Stopped between chunks: record what was delivered.
        if let pending = unacknowledged, let postgres {
            do {
                try await source.ack(pending, on: postgres)
            } catch {
                logger.warning(
                    "could not record the last delivered chunk; it will be replayed (without duplicate jobs)",
                    metadata: [
                        "consumer": "\(source.name)", "error": "\(error)",
                    ])
            }
        }
        return progress
    }

    /// What delivering one chunk did.
    struct ChunkOutcome {
        var written = 0
        var duplicates = 0
        var deadLettered = 0
    }

    /// Delivers one chunk: the pipeline makes its jobs, the writer writes them; the events and jobs that fail are
    /// tried again where that can help, then dead-lettered — the one place where per-event failures are decided.
    private func deliver(_ events: [SourceEvent], postgres: PostgresConnection, redis: RedisSink) async throws -> ChunkOutcome {
        let keySpace = keySpace ?? configuration.source.name
        let prepared = try await preparedPipeline(on: postgres)
        let output = try await prepared.process(events, on: postgres, logger: logger)
        var outcome = try await writer.write(output.jobs, consumer: keySpace, on: redis)
        var result = ChunkOutcome(written: outcome.written, duplicates: outcome.duplicates)
        record(batches: outcome, reason: "full")

        var letters: [Job] = output.failures.map { failure in
            deadLetterCounter(reason: failure.stage).increment()
            logDeadLetter(failure.event, reason: failure.reason, detail: failure.sqlState.map { "SQLSTATE \($0)" })
            return DeadLetter(reason: failure.reason, sqlState: failure.sqlState, attempts: 1, hint: failure.hint)
                .job(for: failure.event, queue: writer.deadLetterQueue)
        }
        // Jobs Redis refused: again after the channel's backoff, up to its max_attempts, then dead-lettered.
        var tries = 1
        var refused = outcome.failures
        while !refused.isEmpty {
            var again: [Job] = []
            var wait = Duration.zero
            for failure in refused {
                let channel = configuration.pipeline.channels[failure.job.event.channel]
                let maxAttempts = channel?.maxAttempts ?? 3
                if failure.permanent || tries >= maxAttempts {
                    deadLetterCounter(reason: "redis").increment()
                    logDeadLetter(
                        failure.job.event, reason: failure.message, detail: "job for \(failure.job.destination.name), \(tries) attempt(s)")
                    letters.append(
                        DeadLetter(
                            reason: "Redis did not take the job for \(failure.job.destination.name): \(failure.message)",
                            redisError: failure.message, attempts: tries,
                            hint: failure.permanent
                                ? "shrink the job, or raise Redis' proto-max-bulk-len; then replay (pgevents dead-letters replay)"
                                : "fix the key \(failure.job.destination.name) (redis-cli TYPE \(failure.job.destination.name)), then replay (pgevents dead-letters replay)",
                            refusedJob: failure.job
                        ).job(for: failure.job.event, queue: writer.deadLetterQueue))
                } else {
                    again.append(failure.job)
                    let backoff = (channel?.attemptBackoff ?? .milliseconds(100)) * (1 << min(tries - 1, 10))
                    wait = wait == .zero ? backoff : min(wait, backoff)
                }
            }
            guard !again.isEmpty else { break }
            try await Task.sleep(for: wait)
            tries += 1
            outcome = try await writer.write(again, consumer: keySpace, on: redis)
            result.written += outcome.written
            result.duplicates += outcome.duplicates
            record(batches: outcome, reason: "full")
            refused = outcome.failures
        }
        guard !letters.isEmpty else { return result }
        // Dead letters in position order, so that the dead-letter list's delivered position only moves forward.
        letters.sort { $0.position < $1.position }
        let stored = try await writer.write(letters, consumer: keySpace, on: redis)
        if let failure = stored.failures.first {
            throw ProcessorError(
                code: .sinkRejected,
                message:
                    "the dead-letter list \(writer.deadLetterQueue) refuses writes (\(failure.message)); delivery waits until it takes them: fix the key (redis-cli TYPE \(writer.deadLetterQueue))"
            )
        }
        result.deadLettered += letters.count
        return result
    }

    private func deadLetterCounter(reason: String) -> Counter {
        Counter(
            label: "pgevents_dead_letters_total",
            dimensions: [("consumer", configuration.source.name)] + configuration.metricDimensions + [("reason", reason)])
    }

    /// Logs a dead letter: which event, and why. Payloads are logged only at debug level.
    private func logDeadLetter(_ event: SourceEvent, reason: String, detail: String?) {
        var metadata: Logger.Metadata = [
            "consumer": "\(configuration.source.name)", "channel": "\(event.channel)", "seq": "\(event.seq)",
            "reason": "\(reason)", "dead_letter_queue": "\(writer.deadLetterQueue)",
        ]
        if let detail { metadata["detail"] = "\(detail)" }
        logger.warning("event sent to the dead-letter list", metadata: metadata)
        logger.debug(
            "dead-lettered payload", metadata: ["seq": "\(event.seq)", "payload": "\(TextExcerpt.excerpt(event.payload, limit: 200))"])
    }

    // MARK: Batches

    /// Sends the batches that are due (their first item has waited their `max_seconds`); with `all`, every open
    /// batch (at shutdown). Retries outages like `drain` (until cancelled) unless `retrying` is false; returns
    /// how many batches were sent.
    @discardableResult
    public func flushBatches(all: Bool = false, retrying: Bool = true) async throws -> Int {
        guard configuration.pipeline.batches else { return 0 }
        while true {
            try Task.checkCancellation()
            do {
                // The key space (consumer and instance) comes from PostgreSQL, once.
                if keySpace == nil { _ = try await postgresConnection() }
                return try await flushBatches(all: all, on: redisConnection())
            } catch let error where retrying && Self.isRetryable(error) {
                try await pause(after: error, doing: "sending batches")
            }
        }
    }

    @discardableResult
    private func flushBatches(all: Bool, on redis: RedisSink) async throws -> Int {
        let outcome = try await writer.flushBatches(all: all, consumer: keySpace ?? configuration.source.name, on: redis)
        record(batches: outcome, reason: all ? "drained" : "due")
        if outcome.batchesSent > 0 {
            logger.debug(
                "batches sent",
                metadata: [
                    "batches": "\(outcome.batchesSent)", "jobs": "\(outcome.batchItemsSent)", "reason": "\(all ? "drained" : "due")",
                ])
        }
        return outcome.batchesSent
    }

    /// Counts the batches `outcome` sent or dead-lettered, and notes when the next one is due.
    private func record(batches outcome: WriteOutcome, reason: String) {
        if outcome.batchesSent > 0 {
            Counter(
                label: "pgevents_batches_flushed_total",
                dimensions: [("consumer", configuration.source.name)] + configuration.metricDimensions + [("reason", reason)]
            )
            .increment(by: outcome.batchesSent)
        }
        if outcome.batchesDeadLettered > 0 {
            deadLetterCounter(reason: "batch").increment(by: outcome.batchesDeadLettered)
            logger.warning(
                "Redis refused batches; they were sent whole to the dead-letter list",
                metadata: [
                    "consumer": "\(configuration.source.name)", "batches": "\(outcome.batchesDeadLettered)",
                    "dead_letter_queue": "\(writer.deadLetterQueue)",
                ])
        }
        if outcome.written > 0, configuration.pipeline.batches { batchedItems.increment(by: outcome.written) }
        if outcome.knowsBatchDeadline {
            nextBatchDeadline = outcome.nextBatchDueMilliseconds.map { ContinuousClock.now + .milliseconds($0) }
        }
    }

    // MARK: Pruning

    /// Deletes journal events every consumer has delivered, in short transactions of at most `limit` events each,
    /// until caught up or `budget` has passed; returns how many, and whether it caught up. (The processor prunes
    /// with a `JournalPruner` of its own, beside delivery; this is for tools and tests.)
    @discardableResult
    public func prune(limit: Int = 5_000, budget: Duration = .seconds(1)) async throws -> (deleted: Int, caughtUp: Bool) {
        let connection = try await postgresConnection()
        let clock = ContinuousClock()
        let start = clock.now
        var deleted = 0
        while true {
            let count = try await JournalSource.prune(on: connection, limit: limit)
            deleted += count
            if count < limit { return (deleted, true) }
            if clock.now - start >= budget { return (deleted, false) }
            await Task.yield()
        }
    }

    /// Closes both connections (releasing the leader lock).
    public func close() async {
        await postgres?.close()
        await redis?.close()
        postgres = nil
        redis = nil
        holdsLeaderLock = false
    }

    // MARK: Connections

    /// Waits before the next attempt after an outage, dropping broken connections (and a Redis that became a
    /// replica, `READONLY`).
    private func pause(after error: any Error, doing what: String) async throws {
        attempt += 1
        retryCounter.increment()
        configuration.status?.update { $0.problem = "\(what) failed: \(error)" }
        let delay = configuration.retryDelay(attempt)
        logger.warning(
            "\(what) failed; retrying",
            metadata: [
                "consumer": "\(configuration.source.name)", "attempt": "\(attempt)", "retry_in": "\(delay)", "error": "\(error)",
            ])
        if let error = error as? RedisError, error.serverErrorPrefix == "READONLY" {
            await redis?.close()
            redis = nil
        }
        await dropBrokenConnections()
        try await Task.sleep(for: delay)
    }

    private func postgresConnection() async throws -> PostgresConnection {
        if let postgres, postgres.isUsable { return postgres }
        await postgres?.close()
        postgres = nil
        holdsLeaderLock = false
        prepared = nil
        let connection = try await PostgresConnection.connect(configuration.postgres, logger: logger)
        postgres = connection
        let seconds = Int((configuration.queryTimeout.inSeconds * 1000).rounded(.up))
        try await connection.query("SELECT set_config('statement_timeout', $1, false)", [String(seconds)])
        await connection.setQueryTimeout(configuration.queryTimeout)
        let instance = try await configuration.source.prepare(on: connection, fromStart: configuration.fromStart)
        keySpace = "\(configuration.source.name):\(instance)"
        // The row lookups are checked against the catalog at once: a missing table stops the processor at start.
        prepared = try await configuration.pipeline.prepare(on: connection)
        return connection
    }

    private func preparedPipeline(on connection: PostgresConnection) async throws -> PreparedPipeline {
        if let prepared { return prepared }
        let pipeline = try await configuration.pipeline.prepare(on: connection)
        prepared = pipeline
        return pipeline
    }

    private func redisConnection() async throws -> RedisSink {
        if let redis, await redis.isUsable { return redis }
        await redis?.close()
        let sink = try await RedisSink.connect(configuration.redis.withProcessorTimeout, logger: logger, executor: configuration.executor)
        redis = sink
        writer.maxJobBytes = await Self.maxBulkLength(on: sink) ?? configuration.writer.maxJobBytes
        return sink
    }

    /// Redis' `proto-max-bulk-len` (the smallest of a cluster's primaries), when `CONFIG GET` is allowed (managed
    /// services often rename it).
    static func maxBulkLength(on redis: RedisSink) async -> Int? {
        var smallest: Int?
        for server in (try? await redis.servers()) ?? [] {
            guard let reply = try? await server.command("CONFIG", "GET", "proto-max-bulk-len"), let parts = reply.array, parts.count == 2,
                let text = parts[1].string, let value = Int(text)
            else { return nil }
            smallest = min(smallest ?? value, value)
        }
        return smallest.map { $0 - 1_024 }  // room for the command around the job
    }

    private func dropBrokenConnections() async {
        if let postgres, !postgres.isUsable {
            await postgres.close()
            self.postgres = nil
            holdsLeaderLock = false
        }
        if let redis, await !redis.isUsable {
            await redis.close()
            self.redis = nil
        }
    }

    /// Takes the consumer's session advisory lock if this connection does not hold it yet. A standby says once
    /// that it waits, and which backend holds the lock.
    private func acquireLeadership(on connection: PostgresConnection) async throws -> Bool {
        if holdsLeaderLock { return true }
        let name = configuration.source.name
        let acquired = try await connection.query(
            "SELECT pg_try_advisory_lock(hashtextextended('pgevents.consumer:' || $1, 0))", [name]
        ).scalar(Bool.self)
        if acquired {
            holdsLeaderLock = true
            announcedStandby = false
            configuration.status?.update {
                $0.role = .leader
                $0.leaderHolder = nil
            }
            logger.info("leader", metadata: ["consumer": "\(name)"])
        } else if !announcedStandby {
            announcedStandby = true
            let holder = try? await connection.query(
                """
                SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local')
                  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted
                   AND ((l.classid::int8 << 32) | (l.objid::int8 & 4294967295)) = hashtextextended('pgevents.consumer:' || $1, 0)
                """, [name]
            ).first.map { row in
                "pid \(try row.decode(Int.self, at: 0)) (\(try row.decode(String.self, at: 1)), \(try row.decode(String.self, at: 2)))"
            }
            configuration.status?.update {
                $0.role = .standby
                $0.leaderHolder = holder
            }
            logger.info(
                "standby: another processor holds the consumer's leader lock; waiting to take over",
                metadata: [
                    "consumer": "\(name)", "holder": "\(holder ?? "unknown")",
                ])
        }
        return acquired
    }

    /// Failures that pass are retried: every Redis error, lost PostgreSQL connections, and the PostgreSQL
    /// errors that say "not now" — connection exceptions (08…), operator intervention such as a shutdown or
    /// crash restart in progress or a statement timeout (57…), insufficient resources (53…), serialization
    /// failures and deadlocks (40…). Everything else (a missing journal, a missing privilege, a bug) ends the
    /// processor, so that it is seen: never an event's content.
    static func isRetryable(_ error: any Error) -> Bool {
        if let error = error as? PostgresError {
            if error.isConnectionError { return true }
            guard let state = error.sqlState else { return false }
            return ["08", "57", "53", "40"].contains(String(state.prefix(2)))
        }
        // Redis errors that reach here are outages (lost connections, timeouts, LOADING, OOM, READONLY…): the
        // writer reports refusals of single jobs in its outcome instead.
        if error is RedisError { return true }
        if let error = error as? ProcessorError { return error.code == .sinkRejected }
        return false
    }
}

/// The names of earlier versions.
@available(*, deprecated, renamed: "EventDelivery")
public typealias JournalDelivery = EventDelivery
