public import Logging
import Metrics
public import PGEventsPostgres
public import PGEventsRedis
public import ServiceLifecycle
import Synchronization

public import struct Foundation.Date

/// The processor in notify-only mode: each NOTIFY payload is the event, pushed to its channel's Redis list
/// as it arrives — what the seeds' listeners do.
///
/// Its limit is PostgreSQL's: a notification reaches only sessions listening when it is committed, so
/// everything sent while this processor is disconnected is lost, and nothing can bring it back. The
/// processor says so at start, and after every reconnect reports the window in which events were lost
/// (logged as an error, counted in `pgevents_notify_gaps_total`, and listed in `gaps`). Use the journal
/// (`source: journal`) when losing events matters.
///
/// While Redis is down, notifications wait in a bounded buffer (`buffer_limit`); once it is full, new ones
/// are dropped, counted (`pgevents_notify_dropped_total`, `dropped`) and logged. Reading on instead of
/// stopping is deliberate: a listener that stops reading misses its own heartbeats, reconnects, and loses
/// everything anyway. On graceful shutdown it stops listening and pushes what is buffered.
public struct NotifyProcessor: Service {
    /// A time window in which notifications were certainly not received.
    public struct Gap: Sendable, Equatable {
        /// When the connection was found lost.
        public var from: Date
        /// When listening started again.
        public var to: Date
    }

    public let configuration: ProcessorConfiguration
    public let postgres: PostgresConfiguration
    public let redis: RedisConfiguration
    /// What `--http` reports: `forwarding` while it runs, the listener's state, the jobs pushed, a Redis problem.
    public let status: ProcessorStatus
    private let logger: Logger
    private let state = Shared()

    public init(configuration: ProcessorConfiguration, postgres: PostgresConfiguration, redis: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.redis = redis
        self.logger = logger
        self.status = ProcessorStatus(consumer: configuration.consumer, source: "notify")
    }

    /// The windows in which events were lost, so far.
    public var gaps: [Gap] { state.value.withLock { $0.gaps } }
    /// Jobs pushed so far.
    public var pushed: Int { state.value.withLock { $0.pushed } }
    /// Notifications dropped so far because the buffer was full (Redis not taking jobs).
    public var dropped: Int { state.value.withLock { $0.dropped } }

    /// What the event loop and the readers of `gaps` share; a Mutex guards it.
    private final class Shared: Sendable {
        struct Values {
            var gaps: [Gap] = []
            var pushed = 0
            var dropped = 0
        }
        let value = Mutex(Values())
    }

    public func run() async throws {
        do {
            try await forwardNotifications()
            status.update { $0.role = .stopped }
        } catch {
            status.update {
                $0.role = .failed
                $0.problem = "\(error)"
            }
            throw error
        }
    }

    private func forwardNotifications() async throws {
        try await SessionCheck.requireSessions(configuration.workerConnection(postgres: postgres), logger: logger)
        let listener = try EventListener(configuration: configuration.listenerConfiguration(postgres: postgres), logger: logger)
        status.attach(listener)
        status.update { $0.role = .forwarding }
        let status = status
        let backoff = Backoff(configuration.backoff)
        let queues = Dictionary(uniqueKeysWithValues: configuration.channels.map { ($0.name, $0.queue) })
        let pushedCounter = Counter(label: "pgevents_events_delivered_total", dimensions: [("source", "notify")])
        logger.warning(
            "notify-only mode: events sent while this processor is disconnected are lost; use source: journal to keep them",
            metadata: [
                "channels": "\(configuration.channels.map(\.name))"
            ])
        // Between the listener and Redis: a bounded buffer. While Redis is down it fills; when it is full, what
        // arrives is dropped and counted (a journal would keep it; notify-only has nowhere to keep it).
        let (buffered, buffer) = AsyncStream<PostgresNotification>.makeStream(bufferingPolicy: .bufferingOldest(configuration.bufferLimit))
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await listener.run() }
                group.addTask {
                    await forward(listener, into: buffer)
                    buffer.finish()
                }
                var redisConnection: RedisSink?
                var retry = 0
                // Ends when the listener has stopped and the buffer is empty (Redis permitting).
                for await notification in buffered {
                    let queueName = queues[notification.channel] ?? configuration.channels[0].queue
                    let queue = RedisArgument(queueName)
                    while true {
                        do {
                            if redisConnection == nil {
                                // The same command timeout as the durable sources: a frozen Redis must not hold the buffer for ever.
                                redisConnection = try await RedisSink.connect(redis.withProcessorTimeout, logger: logger)
                            }
                            try await redisConnection?.command(["LPUSH", queue, RedisArgument(notification.payload)], slotOf: queueName)
                            state.value.withLock { $0.pushed += 1 }
                            pushedCounter.increment()
                            if retry > 0 { status.update { $0.problem = nil } }
                            status.update { $0.delivered += 1 }
                            retry = 0
                            break
                        } catch let error as RedisError {  // every Redis error passes: LOADING after a restart, a lost connection…
                            await redisConnection?.close()
                            redisConnection = nil
                            retry += 1
                            status.update { $0.problem = "pushing to Redis failed: \(error)" }
                            logger.warning("redis unavailable; retrying", metadata: ["attempt": "\(retry)", "error": "\(error)"])
                            try await Task.sleep(for: backoff.delay(forAttempt: retry))
                        }
                    }
                }
                await redisConnection?.close()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            status.update { $0.role = .stopping }
            listener.stop()  // no more notifications; what is buffered is still pushed
        }
    }

    /// Moves the listener's notifications into the buffer, and records the gaps (windows while disconnected)
    /// and the drops (buffer full). Returns when the listener stops.
    private func forward(_ listener: EventListener, into buffer: AsyncStream<PostgresNotification>.Continuation) async {
        let gapCounter = Counter(label: "pgevents_notify_gaps_total")
        let droppedCounter = Counter(label: "pgevents_notify_dropped_total")
        var lostSince: Date?
        for await event in listener.events {
            switch event {
            case .disconnected(let error):
                if lostSince == nil { lostSince = Date() }
                logger.error(
                    "notify-only: disconnected; notifications sent from now on are lost until listening again",
                    metadata: ["error": "\(error.message)"])
            case .connected(let generation):
                listener.catchUpFinished(generation: generation)  // nothing to catch up from
                if let from = lostSince {
                    let gap = Gap(from: from, to: Date())
                    state.value.withLock { $0.gaps.append(gap) }
                    gapCounter.increment()
                    logger.error(
                        "notify-only: events sent while disconnected were lost",
                        metadata: [
                            "from": "\(gap.from)", "to": "\(gap.to)", "seconds": "\(gap.to.timeIntervalSince(gap.from))",
                        ])
                    lostSince = nil
                }
            case .notification(let notification):
                if case .dropped = buffer.yield(notification) {
                    let dropped = state.value.withLock { values -> Int in
                        values.dropped += 1
                        return values.dropped
                    }
                    droppedCounter.increment()
                    if dropped == 1 || dropped % 1_000 == 0 {
                        logger.error(
                            "notify-only: the buffer is full (Redis is not taking jobs); notifications are dropped",
                            metadata: [
                                "buffer_limit": "\(configuration.bufferLimit)", "dropped_total": "\(dropped)",
                                "channel": "\(notification.channel)",
                            ])
                    }
                }
            }
        }
    }
}
