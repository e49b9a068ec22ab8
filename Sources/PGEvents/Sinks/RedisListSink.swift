public import PGEventsRedis

/// Delivers events to Redis lists with `LPUSH`, so existing `BRPOP` workers take them unchanged; idempotent,
/// so a replay after a crash enqueues no duplicate job.
///
/// A chunk goes through one small Lua script per `scriptBatch` events (pipelined): for each event, unless
/// its idempotency key exists, `LPUSH <queue> <payload>` and then `SET <key> 1 EX <ttl>`. A script runs
/// atomically inside Redis, and the key is recorded only after the push succeeded, so there is no moment
/// where an event counts as delivered but is not on its list (a push that fails — the list's key holds
/// another type — stops the script with that event unrecorded, and the retry pushes it).
public struct RedisListSink: Sendable {
    /// The list an event goes to: `queues[channel]`, else `defaultQueue`.
    public var queues: [String: String]
    /// The list for channels not in `queues`.
    public var defaultQueue: String
    /// How long an idempotency key is kept (seconds): longer than any replay you expect.
    public var keyTTLSeconds: Int
    /// Prefix of the idempotency keys: `<prefix>:<consumer>:<instance>:<seq>`.
    public var keyPrefix: String

    /// The script, its SHA-1 shared by copies of this sink.
    private let loadedScript = RedisScript(RedisListSink.script)

    public init(queues: [String: String] = [:], defaultQueue: String = "pgevents:jobs", keyTTLSeconds: Int = 86_400, keyPrefix: String = "pgevents:seen") {
        self.queues = queues
        self.defaultQueue = defaultQueue
        self.keyTTLSeconds = keyTTLSeconds
        self.keyPrefix = keyPrefix
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

    /// Events per script call: bounds the time one call holds Redis (about a millisecond).
    public static let scriptBatch = 500

    // KEYS[i]: event i's idempotency key. ARGV[1]: the keys' TTL; ARGV[2i]: event i's list; ARGV[2i+1]: its
    // payload. Returns how many events were pushed (the others were delivered before).
    static let script = """
        local pushed = 0
        for i = 1, #KEYS do
          if redis.call('EXISTS', KEYS[i]) == 0 then
            redis.call('LPUSH', ARGV[2 * i], ARGV[2 * i + 1])
            redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
            pushed = pushed + 1
          end
        end
        return pushed
        """

    /// The list `event` goes to.
    public func queue(for event: JournalEvent) -> String {
        queues[event.channel] ?? defaultQueue
    }

    /// Pushes `events` in one pipeline, each to its channel's list. Throws `RedisError` for a connection
    /// failure (nothing is known to be delivered; retrying is safe) and `ProcessorError.sinkRejected` when
    /// Redis refused an event.
    ///
    /// `consumer` names the idempotency key space: the consumer's name and its instance id.
    public func deliver(_ events: [JournalEvent], consumer: String, on redis: RedisConnection) async throws -> Outcome {
        try await deliver(jobs: events.map { Job(key: String($0.seq), destination: queue(for: $0), body: $0.payload, event: $0) }, consumer: consumer, on: redis)
    }

    /// Pushes `jobs` in one pipeline, each to its `destination` list, skipping those whose key was delivered before.
    public func deliver(jobs: [Job], consumer: String, on redis: RedisConnection) async throws -> Outcome {
        guard !jobs.isEmpty else { return Outcome(pushed: 0, duplicates: 0) }
        let ttl = RedisArgument(keyTTLSeconds)
        let slices = RedisScript.slices(jobs, size: Self.scriptBatch)
        // A command answered NOSCRIPT (the server lost its script cache: a restart, SCRIPT FLUSH) did not run:
        // the script is loaded again and that command resent, which is safe.
        let replies = try await loadedScript.evaluate(
            slices, key: { RedisArgument("\(keyPrefix):\(consumer):\($0.key)") }, fixed: [ttl], argumentsPerItem: 2,
            arguments: { job, command in
                command.append(RedisArgument(job.destination))
                command.append(RedisArgument(job.body))
            }, on: redis)
        var outcome = Outcome(pushed: 0, duplicates: 0)
        for (slice, reply) in zip(slices, replies) {
            switch reply {
            case .integer(let pushed):
                outcome.pushed += Int(pushed)
                outcome.duplicates += slice.count - Int(pushed)
            case .error(let message):
                let lists = Set(slice.map(\.destination)).sorted().joined(separator: ", ")
                throw ProcessorError(
                    code: .sinkRejected,
                    message: "Redis refused events \(slice.first?.event.seq ?? 0)…\(slice.last?.event.seq ?? 0) for list(s) \(lists): \(message)")
            default:
                throw ProcessorError(code: .sinkRejected, message: "unexpected reply to events \(slice.first?.event.seq ?? 0)…: \(reply)")
            }
        }
        return outcome
    }
}
