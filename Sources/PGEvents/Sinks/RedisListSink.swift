public import PGEventsRedis
import Synchronization

/// Delivers events to Redis lists with `LPUSH`, so existing `BRPOP` workers take them unchanged; idempotent,
/// so a replay after a crash enqueues no duplicate job.
///
/// Each event goes through one small Lua script, pipelined for the whole chunk: `SET <key> 1 NX EX <ttl>`
/// on the event's idempotency key and, only if that key was new, `LPUSH <queue> <payload>`. The two happen
/// atomically inside Redis, so there is no moment where the key is recorded but the job is not pushed.
public struct RedisListSink: Sendable {
    /// The list an event goes to: `queues[channel]`, else `defaultQueue`.
    public var queues: [String: String]
    /// The list for channels not in `queues`.
    public var defaultQueue: String
    /// How long an idempotency key is kept (seconds): longer than any replay you expect.
    public var keyTTLSeconds: Int
    /// Prefix of the idempotency keys: `<prefix>:<consumer>:<instance>:<seq>`.
    public var keyPrefix: String

    /// The script's SHA-1 as Redis reported it on `SCRIPT LOAD`, shared by copies of this sink.
    private let scriptSHA = ScriptSHA()

    public init(queues: [String: String] = [:], defaultQueue: String = "pgevents:jobs", keyTTLSeconds: Int = 86_400, keyPrefix: String = "pgevents:seen") {
        self.queues = queues
        self.defaultQueue = defaultQueue
        self.keyTTLSeconds = keyTTLSeconds
        self.keyPrefix = keyPrefix
    }

    /// Holds the loaded script's SHA-1; a Mutex guards it.
    private final class ScriptSHA: Sendable {
        let value = Mutex<String?>(nil)
    }

    /// What one delivery did.
    public struct Outcome: Sendable, Equatable {
        /// Jobs pushed.
        public var pushed: Int
        /// Events whose key already existed: delivered before, not pushed again.
        public var duplicates: Int

        public init(pushed: Int, duplicates: Int) {
            self.pushed = pushed
            self.duplicates = duplicates
        }
    }

    static let script = """
        if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
          return redis.call('LPUSH', KEYS[2], ARGV[1])
        end
        return -1
        """

    private func loadedScript(on redis: RedisConnection, reload: Bool) async throws -> String {
        if !reload, let known = scriptSHA.value.withLock({ $0 }) { return known }
        let reply = try await redis.command("SCRIPT", "LOAD", RedisArgument(Self.script))
        guard let sha = reply.string else {
            throw ProcessorError(code: .sinkRejected, message: "SCRIPT LOAD answered \(reply), not a SHA-1")
        }
        scriptSHA.value.withLock { $0 = sha }
        return sha
    }

    /// The list `event` goes to.
    public func queue(for event: JournalEvent) -> String {
        queues[event.channel] ?? defaultQueue
    }

    /// Pushes `events` in one pipeline. Throws `RedisError` for a connection failure (nothing is known to
    /// be delivered; retrying is safe) and `ProcessorError.sinkRejected` when Redis refused an event.
    ///
    /// `consumer` names the idempotency key space: the consumer's name and its instance id.
    public func deliver(_ events: [JournalEvent], consumer: String, on redis: RedisConnection) async throws -> Outcome {
        guard !events.isEmpty else { return Outcome(pushed: 0, duplicates: 0) }
        let ttl = RedisArgument(keyTTLSeconds)
        func commands(_ sha: String) -> [[RedisArgument]] {
            events.map { event in
                ["EVALSHA", RedisArgument(sha), "2",
                 RedisArgument("\(keyPrefix):\(consumer):\(event.seq)"), RedisArgument(queue(for: event)),
                 RedisArgument(event.payload), ttl]
            }
        }
        var sha = try await loadedScript(on: redis, reload: false)
        var replies = try await redis.pipeline(commands(sha))
        if case .error(let message) = replies.first, message.hasPrefix("NOSCRIPT") {
            // The server lost its script cache (a restart, SCRIPT FLUSH): load it again and resend. Safe:
            // every command of the pipeline failed the same way, so none ran.
            sha = try await loadedScript(on: redis, reload: true)
            replies = try await redis.pipeline(commands(sha))
        }
        var outcome = Outcome(pushed: 0, duplicates: 0)
        for (event, reply) in zip(events, replies) {
            switch reply {
            case .integer(-1): outcome.duplicates += 1
            case .integer: outcome.pushed += 1
            case .error(let message):
                throw ProcessorError(
                    code: .sinkRejected,
                    message: "Redis refused event \(event.seq) for list '\(queue(for: event))': \(message)")
            default:
                throw ProcessorError(code: .sinkRejected, message: "unexpected reply to event \(event.seq): \(reply)")
            }
        }
        return outcome
    }
}
