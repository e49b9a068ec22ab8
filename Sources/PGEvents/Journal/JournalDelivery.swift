public import Logging
import Metrics
import struct Foundation.Date
public import PGEventsPostgres
public import PGEventsRedis

/// Moves events from a source (the journal, a table) to the sink, chunk by chunk: read, deliver, then
/// acknowledge — overlapped: while Redis takes one chunk, PostgreSQL acknowledges the previous one and reads
/// the next — so the cursor only ever passes events the sink has taken (at-least-once; the idempotent sink makes replays
/// harmless).
///
/// It owns a worker connection to PostgreSQL and one to Redis, reopens them when they break, and retries
/// with backoff for as long as it takes: while Redis is down nothing is read, nothing is dropped and the
/// cursor does not move. It consumes only while it holds the consumer's leader lock (a session advisory
/// lock), so several processors on one configuration never deliver the same events: the others stand by
/// and take over when the leader's connection goes away.
///
/// Used by one task at a time (the processor's loop).
public final class JournalDelivery {
    /// How the delivery reaches its servers and what it delivers.
    public struct Configuration: Sendable {
        public var postgres: PostgresConfiguration
        public var redis: RedisConfiguration
        public var consumer: any EventSource
        public var sink: RedisListSink
        /// Events per chunk (one read, one Redis pipeline, one acknowledgement).
        public var batchSize: Int
        /// Register a new consumer at the start of the journal (else: from now on).
        public var fromStart: Bool
        /// Delay before retry `attempt` (1, 2, …) after a connection failure.
        public var retryDelay: @Sendable (Int) -> Duration
        /// Decoding, fetching and rules between the source and the sinks; nil passes payloads through.
        public var pipeline: EventPipeline?
        /// Called with each chunk once Redis has taken it (its jobs are queued), before it is acknowledged: a probe
        /// for measurements (`pgevents bench` records when each event was queued). Keep it cheap; nil by default.
        public var onDelivered: (@Sendable ([JournalEvent]) -> Void)?

        public init(
            postgres: PostgresConfiguration, redis: RedisConfiguration, consumer: any EventSource,
            sink: RedisListSink = RedisListSink(), batchSize: Int = 1_000, fromStart: Bool = true,
            retryDelay: @escaping @Sendable (Int) -> Duration = { attempt in .milliseconds(min(10_000, 100 << min(attempt - 1, 7))) },
            pipeline: EventPipeline? = nil, onDelivered: (@Sendable ([JournalEvent]) -> Void)? = nil
        ) {
            self.pipeline = pipeline
            self.onDelivered = onDelivered
            self.postgres = postgres
            self.redis = redis
            self.consumer = consumer
            self.sink = sink
            self.batchSize = batchSize
            self.fromStart = fromStart
            self.retryDelay = retryDelay
        }
    }

    /// What a `drain` did.
    public struct Progress: Sendable, Equatable {
        public var delivered = 0
        public var duplicates = 0
        public var chunks = 0
        /// False when another processor holds the consumer's leader lock (this one stood by).
        public var isLeader = true
    }

    public let configuration: Configuration
    private let logger: Logger
    private var postgres: PostgresConnection?
    private var redis: RedisConnection?
    private var holdsLeaderLock = false
    /// `<consumer>:<instance>`: the idempotency key space of this consumer's events.
    private var keySpace: String?
    private var attempt = 0
    private let deliveredCounter: Counter
    private let duplicateCounter: Counter
    private let retryCounter: Counter
    private let latency: Timer
    private let deadLetterCounter: Counter
    /// The pipeline's fetch queries, checked against the catalog on each new connection.
    private var fetchQueries: [String: EventPipeline.PreparedFetch] = [:]
    /// Stream sinks by `MAXLEN`, each keeping its loaded script.
    private var streamSinks: [Int?: RedisStreamSink] = [:]
    /// Stages and flushes the batches of channels that batch.
    private let batchSink: RedisBatchSink
    /// When the oldest open batch is due (by Redis' reply); nil: none known to be open.
    public private(set) var nextBatchDeadline: ContinuousClock.Instant?
    private let batchedItems: Counter

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let dimensions = [("consumer", configuration.consumer.name)]
        deliveredCounter = Counter(label: "pgevents_events_delivered_total", dimensions: dimensions)
        duplicateCounter = Counter(label: "pgevents_events_duplicate_total", dimensions: dimensions)
        retryCounter = Counter(label: "pgevents_delivery_retries_total", dimensions: dimensions)
        latency = Timer(label: "pgevents_commit_to_queued_seconds", dimensions: dimensions)
        deadLetterCounter = Counter(label: "pgevents_dead_letters_total", dimensions: dimensions)
        batchedItems = Counter(label: "pgevents_batched_jobs_total", dimensions: dimensions)
        batchSink = RedisBatchSink(keyTTLSeconds: configuration.sink.keyTTLSeconds, keyPrefix: configuration.sink.keyPrefix)
        // Batches staged by an earlier run (or another processor) are due at an unknown time: look at once.
        if configuration.pipeline?.batches ?? false { nextBatchDeadline = .now }
    }

    /// Delivers the journal's current batch for this consumer (everything committed before it started, and
    /// not delivered yet), then returns. Retries connection failures
    /// until it succeeds or the task is cancelled; `shouldStop` is checked between chunks (a chunk in flight
    /// is always finished and acknowledged first).
    @discardableResult
    public func drain(shouldStop: () -> Bool = { false }) async throws -> Progress {
        var progress = Progress()
        // Stages overlap: while Redis takes chunk N, PostgreSQL records the ack of chunk N-1 and reads chunk
        // N+1. The cursor still moves only past what Redis has taken.
        var prefetched: EventChunk?       // read, not delivered
        var unacknowledged: EventChunk?   // delivered, ack not sent yet
        let consumer = configuration.consumer, limit = configuration.batchSize
        while !shouldStop() {
            try Task.checkCancellation()
            do {
                let postgres = try await postgresConnection()
                guard try await acquireLeadership(on: postgres) else {
                    progress.isLeader = false
                    return progress
                }
                let clock = ContinuousClock()
                let readStart = clock.now
                let chunk: EventChunk
                if let prefetched { chunk = prefetched } else { chunk = try await consumer.next(on: postgres, limit: limit) }
                prefetched = nil
                let deliverStart = clock.now
                if !chunk.events.isEmpty {
                    let pending = unacknowledged
                    async let postgresSide: EventChunk? = {
                        if let pending { try await consumer.ack(pending, on: postgres) }
                        return chunk.completesBatch ? nil : try await consumer.next(on: postgres, limit: limit, after: chunk)
                    }()
                    let redis = try await redisConnection()
                    let outcome = try await deliver(chunk.events, postgres: postgres, redis: redis)
                    configuration.onDelivered?(chunk.events)
                    progress.delivered += outcome.pushed
                    progress.duplicates += outcome.duplicates
                    deliveredCounter.increment(by: outcome.pushed)
                    duplicateCounter.increment(by: outcome.duplicates)
                    let now = Date.now
                    for event in chunk.events { latency.recordSeconds(now.timeIntervalSince(event.createdAt)) }
                    prefetched = try await postgresSide
                    // A long drain does not hold back batches that fall due meanwhile.
                    if let deadline = nextBatchDeadline, deadline <= .now { try await flushBatches(all: false, on: redis) }
                } else if let pending = unacknowledged {
                    try await consumer.ack(pending, on: postgres)
                }
                unacknowledged = chunk
                progress.chunks += 1
                attempt = 0
                if logger.logLevel <= .trace {
                    logger.trace("chunk", metadata: [
                        "events": "\(chunk.events.count)", "read_ms": "\(Backoff.seconds(deliverStart - readStart) * 1000)",
                        "deliver_ms": "\(Backoff.seconds(clock.now - deliverStart) * 1000)",
                    ])
                }
                // A finished batch ends the drain: whatever committed since sent a wake-up of its own (or is
                // found by the next catch-up), so opening another batch now would mostly find it empty.
                if chunk.completesBatch {
                    try await consumer.ack(chunk, on: postgres)
                    return progress
                }
            } catch let error where Self.isRetryable(error) {
                // Read again from the stored cursor; what was delivered and not acknowledged is replayed, and
                // the sink's idempotency keys make the replay push nothing twice.
                prefetched = nil
                unacknowledged = nil
                attempt += 1
                retryCounter.increment()
                let delay = configuration.retryDelay(attempt)
                logger.warning("delivery failed; retrying", metadata: [
                    "consumer": "\(consumer.name)", "attempt": "\(attempt)",
                    "retry_in": "\(delay)", "error": "\(error)",
                ])
                await dropBrokenConnections()
                try await Task.sleep(for: delay)
            }
        }
        // Stopped between chunks: record what was delivered.
        if let pending = unacknowledged, let postgres {
            do {
                try await consumer.ack(pending, on: postgres)
            } catch {
                logger.warning("could not record the last delivered chunk; it will be replayed (without duplicate jobs)", metadata: [
                    "consumer": "\(consumer.name)", "error": "\(error)",
                ])
            }
        }
        return progress
    }

    /// Delivers one chunk: straight to the list sink, or through the pipeline to lists, streams and dead letters.
    private func deliver(_ events: [JournalEvent], postgres: PostgresConnection, redis: RedisConnection) async throws -> RedisListSink.Outcome {
        let keySpace = keySpace ?? configuration.consumer.name
        guard let pipeline = configuration.pipeline else {
            return try await configuration.sink.deliver(events, consumer: keySpace, on: redis)
        }
        let output = try await pipeline.process(events, fetchQueries: fetchQueries, on: postgres, logger: logger)
        var outcome = try await configuration.sink.deliver(jobs: output.listJobs, consumer: keySpace, on: redis)
        for (maxLength, jobs) in Dictionary(grouping: output.streamJobs, by: \.maxLength) {
            let sink = streamSinks[maxLength] ?? RedisStreamSink(maxLength: maxLength, keyTTLSeconds: configuration.sink.keyTTLSeconds, keyPrefix: configuration.sink.keyPrefix)
            streamSinks[maxLength] = sink
            let streamed = try await sink.deliver(jobs: jobs.map(\.job), consumer: keySpace, on: redis)
            outcome.pushed += streamed.pushed
            outcome.duplicates += streamed.duplicates
        }
        deadLetterCounter.increment(by: output.deadLetters)
        if !output.batchJobs.isEmpty {
            let staged = try await batchSink.stage(output.batchJobs, consumer: keySpace, on: redis)
            outcome.pushed += staged.staged
            outcome.duplicates += staged.duplicates
            batchedItems.increment(by: staged.staged)
            record(staged, reason: "full")
        }
        return outcome
    }

    // MARK: Batches

    /// Sends the batches that are due (their first item has waited their `max_seconds`); with `all`, every open
    /// batch (at shutdown). Retries connection failures like `drain` (until cancelled) unless `retrying` is false;
    /// returns how many batches were sent.
    @discardableResult
    public func flushBatches(all: Bool = false, retrying: Bool = true) async throws -> Int {
        guard configuration.pipeline?.batches ?? false else { return 0 }
        while true {
            try Task.checkCancellation()
            do {
                // The key space (consumer and instance) comes from PostgreSQL, once.
                if keySpace == nil { _ = try await postgresConnection() }
                return try await flushBatches(all: all, on: redisConnection())
            } catch let error where retrying && Self.isRetryable(error) {
                attempt += 1
                retryCounter.increment()
                let delay = configuration.retryDelay(attempt)
                logger.warning("flushing batches failed; retrying", metadata: [
                    "consumer": "\(configuration.consumer.name)", "attempt": "\(attempt)", "retry_in": "\(delay)", "error": "\(error)",
                ])
                await dropBrokenConnections()
                try await Task.sleep(for: delay)
            }
        }
    }

    @discardableResult
    private func flushBatches(all: Bool, on redis: RedisConnection) async throws -> Int {
        let keySpace = keySpace ?? configuration.consumer.name
        let outcome = all ? try await batchSink.flushAll(consumer: keySpace, on: redis) : try await batchSink.flushDue(consumer: keySpace, on: redis)
        record(outcome, reason: all ? "drained" : "due")
        if outcome.flushed > 0 {
            logger.debug("batches sent", metadata: ["batches": "\(outcome.flushed)", "jobs": "\(outcome.flushedItems)", "reason": "\(all ? "drained" : "due")"])
        }
        return outcome.flushed
    }

    /// Counts the batches `outcome` sent and notes when the next one is due.
    private func record(_ outcome: RedisBatchSink.Outcome, reason: String) {
        if outcome.flushed > 0 {
            Counter(label: "pgevents_batches_flushed_total", dimensions: [("consumer", configuration.consumer.name), ("reason", reason)])
                .increment(by: outcome.flushed)
        }
        nextBatchDeadline = outcome.nextDueMilliseconds.map { ContinuousClock.now + .milliseconds($0) }
    }

    /// Deletes journal events every consumer has delivered (at most `limit`).
    @discardableResult
    public func prune(limit: Int = 10_000) async throws -> Int {
        try await JournalConsumer.prune(on: postgresConnection(), limit: limit)
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

    private func postgresConnection() async throws -> PostgresConnection {
        if let postgres, await postgres.isUsable { return postgres }
        await postgres?.close()
        holdsLeaderLock = false
        let connection = try await PostgresConnection.connect(configuration.postgres, logger: logger)
        postgres = connection
        let instance = try await configuration.consumer.prepare(on: connection, fromStart: configuration.fromStart)
        if let pipeline = configuration.pipeline { fetchQueries = try await pipeline.prepareFetches(on: connection) }
        keySpace = "\(configuration.consumer.name):\(instance)"
        return connection
    }

    private func redisConnection() async throws -> RedisConnection {
        if let redis, await redis.isUsable { return redis }
        await redis?.close()
        // A reply that never comes (a half-open connection, a frozen server) must not hold delivery for ever:
        // without a timeout of the user's, give up on a command after 10 s and reconnect.
        var settings = configuration.redis
        if settings.commandTimeout == nil { settings.commandTimeout = 10 }
        let connection = try await RedisConnection.connect(settings, logger: logger)
        redis = connection
        return connection
    }

    private func dropBrokenConnections() async {
        if let postgres, await !postgres.isUsable {
            await postgres.close()
            self.postgres = nil
            holdsLeaderLock = false
        }
        if let redis, await !redis.isUsable {
            await redis.close()
            self.redis = nil
        }
    }

    /// Takes the consumer's session advisory lock if this connection does not hold it yet.
    private func acquireLeadership(on connection: PostgresConnection) async throws -> Bool {
        if holdsLeaderLock { return true }
        let acquired = try await connection.query(
            "SELECT pg_try_advisory_lock(hashtextextended('pgevents.consumer:' || $1, 0))",
            [configuration.consumer.name]).scalar(Bool.self)
        if acquired {
            holdsLeaderLock = true
            logger.info("leader", metadata: ["consumer": "\(configuration.consumer.name)"])
        }
        return acquired
    }

    /// Failures that pass are retried: every Redis error, lost PostgreSQL connections, and the PostgreSQL
    /// errors that say "not now" — connection exceptions (08…), operator intervention such as a shutdown or
    /// crash restart in progress (57…), insufficient resources (53…), serialization failures and deadlocks
    /// (40…). Everything else (a missing journal, a bug) ends the processor, so that it is seen.
    static func isRetryable(_ error: any Error) -> Bool {
        if let error = error as? PostgresError {
            if error.isConnectionError { return true }
            guard let state = error.sqlState else { return false }
            return ["08", "57", "53", "40"].contains(String(state.prefix(2)))
        }
        // Every Redis error is retried: besides lost connections and timeouts, a restarting Redis answers
        // LOADING (while it reads its AOF) or BUSY, and even a misconfiguration (WRONGTYPE on a queue key)
        // must hold delivery back, loudly, rather than drop events or stop the processor.
        if error is RedisError { return true }
        if let error = error as? ProcessorError { return error.code == .sinkRejected }
        return false
    }
}

