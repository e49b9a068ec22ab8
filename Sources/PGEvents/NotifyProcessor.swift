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
    private let logger: Logger
    private let state = Shared()

    public init(configuration: ProcessorConfiguration, postgres: PostgresConfiguration, redis: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.redis = redis
        self.logger = logger
    }

    /// The windows in which events were lost, so far.
    public var gaps: [Gap] { state.value.withLock { $0.gaps } }
    /// Jobs pushed so far.
    public var pushed: Int { state.value.withLock { $0.pushed } }

    /// What the event loop and the readers of `gaps` share; a Mutex guards it.
    private final class Shared: Sendable {
        struct Values {
            var gaps: [Gap] = []
            var pushed = 0
        }
        let value = Mutex(Values())
    }

    public func run() async throws {
        let listener = try EventListener(configuration: configuration.listenerConfiguration(postgres: postgres), logger: logger)
        let backoff = Backoff(configuration.backoff)
        let queues = Dictionary(uniqueKeysWithValues: configuration.channels.map { ($0.name, $0.queue) })
        let gapCounter = Counter(label: "pgevents_notify_gaps_total")
        let pushedCounter = Counter(label: "pgevents_events_delivered_total", dimensions: [("source", "notify")])
        logger.warning("notify-only mode: events sent while this processor is disconnected are lost; use source: journal to keep them", metadata: [
            "channels": "\(configuration.channels.map(\.name))",
        ])
        var redisConnection: RedisConnection?
        var lostSince: Date?
        var retry = 0
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await listener.run() }
            for await event in listener.events.cancelOnGracefulShutdown() {
                switch event {
                case .disconnected(let error):
                    if lostSince == nil { lostSince = Date() }
                    logger.error("notify-only: disconnected; notifications sent from now on are lost until listening again", metadata: ["error": "\(error.message)"])
                case .connected(let generation):
                    listener.catchUpFinished(generation: generation)  // nothing to catch up from
                    if let from = lostSince {
                        let gap = Gap(from: from, to: Date())
                        state.value.withLock { $0.gaps.append(gap) }
                        gapCounter.increment()
                        logger.error("notify-only: events sent while disconnected were lost", metadata: [
                            "from": "\(gap.from)", "to": "\(gap.to)", "seconds": "\(gap.to.timeIntervalSince(gap.from))",
                        ])
                        lostSince = nil
                    }
                case .notification(let notification):
                    let queue = RedisArgument(queues[notification.channel] ?? configuration.channels[0].queue)
                    // Redis down: keep this notification and retry; later ones wait in the listener's buffer.
                    while true {
                        do {
                            if redisConnection == nil { redisConnection = try await RedisConnection.connect(redis, logger: logger) }
                            try await redisConnection?.command("LPUSH", queue, RedisArgument(notification.payload))
                            state.value.withLock { $0.pushed += 1 }
                            pushedCounter.increment()
                            retry = 0
                            break
                        } catch let error as RedisError {  // every Redis error passes: LOADING after a restart, a lost connection…
                            await redisConnection?.close()
                            redisConnection = nil
                            retry += 1
                            logger.warning("redis unavailable; retrying", metadata: ["attempt": "\(retry)", "error": "\(error)"])
                            try await Task.sleep(for: backoff.delay(forAttempt: retry))
                        }
                    }
                }
            }
            listener.stop()
            group.cancelAll()
        }
        await redisConnection?.close()
    }
}
