public import Logging
public import PGEventsPostgres
public import PGEventsRedis
public import PGEventsSystem
public import ServiceLifecycle
import Synchronization

/// The reference processor: journal events (or the rows of a table, `source: table`) to Redis lists, streams and
/// batches, without losing or duplicating any across disconnects, restarts and crashes, and without letting one bad
/// event stop the others (it goes to the dead-letter list).
///
/// A notification is a wake-up, not the data. The processor listens on every configured channel (through an
/// `EventListener`, which reconnects and re-LISTENs on its own); on every wake-up, after every (re)connect
/// and every `catchUpInterval` regardless, it drains the journal from its durable cursor into Redis. It is
/// a `Service`: on graceful shutdown it stops taking wake-ups, finishes and acknowledges the chunk in
/// flight, and closes its connections.
public struct EventProcessor: Service {
    public let configuration: ProcessorConfiguration
    public let postgres: PostgresConfiguration
    public let redis: RedisConfiguration
    /// Called with each chunk once Redis has taken it (see `EventDelivery.Configuration.onDelivered`).
    public var onDelivered: (@Sendable ([SourceEvent]) -> Void)?
    /// Labels of the delivery's metrics beside `consumer` (`MultiDatabaseProcessor` adds `database`).
    public var metricDimensions: [(String, String)] = []
    /// What it is doing (role, listener, last delivered event, backlog, retries), for probes: `pgevents process --http`.
    public let status: ProcessorStatus
    /// How often the journal's backlog is counted (`pgevents_journal_backlog_events`); the journal source only.
    public var backlogInterval: Duration = .seconds(5)
    private let logger: Logger

    public init(configuration: ProcessorConfiguration, postgres: PostgresConfiguration, redis: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.redis = redis
        self.logger = logger
        self.status = ProcessorStatus(consumer: configuration.consumer, source: configuration.source.rawValue)
    }

    /// The source the configuration names: the journal, a table, or the WAL (its stream on `executor`, when given).
    public func makeSource(executor: ThreadExecutor? = nil) -> any EventSource {
        if let table = configuration.table {
            TableSource(
                name: configuration.consumer, schema: table.schema, table: table.name, keyColumn: table.key,
                channel: configuration.channels[0].name, logger: logger)
        } else if let wal = configuration.wal {
            WalSource(
                name: configuration.consumer, slot: wal.slot, publication: wal.publication, messages: wal.messages,
                statusInterval: wal.statusInterval, channels: Set(configuration.channels.map(\.name)),
                waitsForVisibility: configuration.channels.contains { $0.pipeline.fetch != nil }, executor: executor, logger: logger)
        } else {
            JournalSource(name: configuration.consumer)
        }
    }

    /// The channels' decoding, lookups, rules and destinations, as the configuration says.
    public func makePipeline() -> EventPipeline {
        EventPipeline(
            channels: Dictionary(uniqueKeysWithValues: configuration.channels.map { ($0.name, $0.pipeline) }),
            deadLetterQueue: configuration.deadLetterQueue, defaultQueue: configuration.channels.first?.queue ?? "pgevents:jobs")
    }

    /// The thread the delivery's connections share, or nil. The WAL delivery's slot stream and Redis connection
    /// share one thread, so reading a chunk, writing it and confirming it never wait for each other's thread to
    /// wake. (The loop itself runs on Swift's pool: see ``ThreadExecutor`` for why it does not prefer the thread.)
    /// The journal's delivery overlaps its PostgreSQL statements with Redis, which needs their threads apart: nil.
    /// The caller ends the thread (`shutdown()`) once the delivery is closed.
    public func makeDeliveryThread() -> ThreadExecutor? {
        configuration.wal == nil ? nil : ThreadExecutor(name: "pgevents-wal-delivery")
    }

    /// The delivery this processor drives (exposed for tests and tools); its Redis connection on `executor`, when given.
    public func makeDelivery(source: (any EventSource)? = nil, executor: ThreadExecutor? = nil) -> EventDelivery {
        let pipeline = makePipeline()
        let source = source ?? makeSource()
        let backoff = Backoff(configuration.backoff)
        var deliveryConfiguration = EventDelivery.Configuration(
            postgres: configuration.workerConnection(postgres: postgres), redis: redis, source: source, pipeline: pipeline,
            writer: RedisJobWriter(keyPrefix: configuration.keyPrefix, deadLetterQueue: configuration.deadLetterQueue),
            batchSize: configuration.batchSize, chunkBytes: configuration.chunkBytes, fromStart: configuration.fromStart,
            queryTimeout: ProcessorConfiguration.duration(configuration.queryTimeout),
            retryDelay: { attempt in backoff.delay(forAttempt: attempt) }, wait: configuration.redisWait, onDelivered: onDelivered,
            status: status)
        deliveryConfiguration.metricDimensions = metricDimensions
        deliveryConfiguration.executor = executor
        return EventDelivery(configuration: deliveryConfiguration, logger: logger)
    }

    public func run() async throws {
        let thread = makeDeliveryThread()
        defer { thread?.shutdown() }
        let source = makeSource(executor: thread)
        // The WAL source wakes the processor itself (its stream); the others are woken by notifications.
        let walSource = source as? WalSource
        let listener =
            walSource == nil
            ? try EventListener(configuration: configuration.listenerConfiguration(postgres: postgres), logger: logger) : nil
        let delivery = makeDelivery(source: source, executor: thread)
        status.attach(listener)
        let status = status
        // The connections (and the slot's stream) are closed on every way out, an error or a cancellation included:
        // a stream left open would hold the slot against the next processor.
        do {
            try await SessionCheck.requireSessions(configuration.workerConnection(postgres: postgres), logger: logger)
            try await withGracefulShutdownHandler {
                try await run(delivery, listener: listener, walSource: walSource)
            } onGracefulShutdown: {
                status.update { $0.role = .stopping }
            }
        } catch {
            await walSource?.close()
            await delivery.close()
            status.update {
                $0.role = .failed
                $0.problem = "\(error)"
            }
            throw error
        }
        await walSource?.close()
        await delivery.close()
        status.update { $0.role = .stopped }
        logger.info("processor stopped", metadata: ["consumer": "\(configuration.consumer)"])
    }

    private func run(_ delivery: EventDelivery, listener: EventListener?, walSource: WalSource?) async throws {
        // Wake-ups coalesce: however many arrive during a drain, one more drain follows.
        let (wakeUps, wake) = AsyncStream<WakeUp>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let catchUpInterval = ProcessorConfiguration.duration(configuration.catchUpInterval)
        logger.info(
            "processor starting",
            metadata: [
                "consumer": "\(configuration.consumer)", "channels": "\(configuration.channels.map(\.name))",
                "postgres": "\(postgres)", "redis": "\(redis)",
            ])
        if configuration.dedupeTTL != nil {
            logger.warning(
                "dedupe_ttl is no longer used: the processor keeps one delivered position per Redis destination, which never expires (README: No duplicates)"
            )
        }
        try await RedisEvictionPolicy.check(
            redis, allowEviction: configuration.allowRedisEviction, backoff: Backoff(configuration.backoff), logger: logger)
        // The newest connection generation the listener announced; a drain that starts after it catches it up.
        let generation = LatestGeneration()
        // Wake-ups coalesce, so what each asks for is kept apart: a batch timer's wake-up must not stand in for a
        // notification's drain, nor make a drain of its own.
        let requests = Requests()
        let batchPoll = configuration.channels.compactMap(\.pipeline.batch).map(\.maxAge).min()
            .map { max(.milliseconds(10), min(.milliseconds(250), $0 / 10)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let walSource {
                group.addTask {
                    while !Task.isCancelled {
                        await walSource.waitForEvents()
                        requests.drain.store(true, ordering: .releasing)
                        wake.yield(.notified)
                    }
                }
            }
            if let listener { group.addTask { await listener.run() } }
            if let listener {
                group.addTask {
                    for await event in listener.events {
                        switch event {
                        case .connected(let number):
                            status.update { $0.reconnects = max(0, number - 1) }
                            generation.value.withLock { $0 = number }
                            requests.drain.store(true, ordering: .releasing)
                            wake.yield(.reconnected)
                        case .notification:
                            requests.drain.store(true, ordering: .releasing)
                            wake.yield(.notified)
                        case .disconnected: break
                        }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: catchUpInterval)
                    requests.drain.store(true, ordering: .releasing)
                    wake.yield(.timer)
                }
            }
            if configuration.source == .journal, configuration.pruneInterval > 0 {
                let pruner = JournalPruner(
                    postgres: configuration.workerConnection(postgres: postgres),
                    interval: ProcessorConfiguration.duration(configuration.pruneInterval),
                    queryTimeout: ProcessorConfiguration.duration(configuration.queryTimeout), logger: logger)
                group.addTask { await pruner.run() }
            }
            if configuration.source == .journal {
                let sampler = JournalBacklogSampler(
                    consumer: configuration.consumer, postgres: configuration.workerConnection(postgres: postgres),
                    interval: backlogInterval, queryTimeout: ProcessorConfiguration.duration(configuration.queryTimeout), status: status,
                    dimensions: metricDimensions, logger: logger)
                group.addTask { await sampler.run() }
            }
            if let batchPoll {
                // Batches fall due by time: look at the deadline Redis last reported a few times per max_seconds.
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: batchPoll)
                        wake.yield(.batchTimer)
                    }
                }
            }
            requests.drain.store(true, ordering: .releasing)
            wake.yield(.timer)  // catch up once at start, whatever the listener does
            for await _ in wakeUps.cancelOnGracefulShutdown() {
                if batchPoll != nil, let deadline = delivery.nextBatchDeadline, deadline <= .now {
                    try await delivery.flushBatches()
                }
                guard requests.drain.exchange(false, ordering: .acquiringAndReleasing) else { continue }
                let caughtUp = generation.value.withLock { $0 }
                let progress = try await delivery.drain(shouldStop: { Task.isShuttingDownGracefully })
                // Wake-ups coalesce, so a reconnect may have arrived as any kind: every drain is a catch-up
                // of the connection generation that was current when it started.
                if let caughtUp { listener?.catchUpFinished(generation: caughtUp) }
                if progress.delivered > 0 || progress.duplicates > 0 {
                    logger.debug("delivered", metadata: ["events": "\(progress.delivered)", "duplicates": "\(progress.duplicates)"])
                }
            }
            group.cancelAll()
        }
        if batchPoll != nil, Task.isShuttingDownGracefully, !Task.isCancelled {
            // Staged batches would wait in Redis for the next run: send them, full or not. Once, without retrying:
            // if Redis is gone they stay staged, and nothing is lost.
            do {
                let sent = try await delivery.flushBatches(all: true, retrying: false)
                logger.info("open batches sent at shutdown", metadata: ["batches": "\(sent)"])
            } catch {
                logger.warning(
                    "open batches could not be sent at shutdown; they stay staged in Redis for the next run",
                    metadata: ["error": "\(error)"])
            }
        }
    }

    enum WakeUp: Sendable, Equatable { case notified, reconnected, timer, batchTimer }

    /// What the wake-ups asked for since the loop last looked.
    private final class Requests: Sendable {
        let drain = Atomic<Bool>(false)
    }

    /// The listener's newest connection generation, shared by the event task and the drain loop.
    private final class LatestGeneration: Sendable {
        let value = Mutex<Int?>(nil)
    }
}

/// The name of earlier versions.
@available(*, deprecated, renamed: "EventProcessor")
public typealias JournalProcessor = EventProcessor
