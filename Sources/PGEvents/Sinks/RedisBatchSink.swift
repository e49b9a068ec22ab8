public import PGEventsRedis

/// Batches jobs into one message per group (GC2's "10 changes or 2 seconds"), with the open batches kept in
/// Redis, not in the processor's memory.
///
/// A job is *staged*: appended to its group's staging list by a Lua script that also records its idempotency
/// key, atomically. Once staged it is as durable as the queue it is going to, so the processor acknowledges the
/// journal right away — the cursor never has to wait for a batch to fill — and a replay after a crash stages
/// nothing twice (the key exists), whatever the batches look like by then. A batch is *flushed* — its items
/// joined into one message, pushed (`LPUSH`) or added (`XADD`) to its destination, and its staging keys
/// deleted — in the same script call that fills it to `maxItems`, or by ``flushDue(consumer:on:)`` once its
/// first item has waited `maxAge` (Redis' clock, so several processors agree), or by
/// ``flushAll(consumer:on:)`` at shutdown. A flush is one script, so a batch is never sent twice nor half.
///
/// The message (JSON):
/// `{"channel":"gc2_changes","group":{"event.table":"parcels","event.op":"INSERT"},"count":2,"reason":"full",
///   "opened_at_ms":1732570000123,"flushed_at_ms":1732570000456,"items":[{…},{…}]}` — `reason` is `full`, `due`
/// or `drained`; items are the jobs, in the order they were staged. On a stream the entry's fields are
/// `channel`, `count` and `payload` (the message).
///
/// Keys (for one consumer key space `<consumer>:<instance>`): `<prefix>:<space>:batches` (a sorted set of
/// open batches by deadline; plus `:order`, a counter that orders batches due together), `<prefix>:<space>:batch:<channel>:<destination>:<group>` (the staged items) and
/// that key plus `:meta` (where the batch goes). They are not declared to Redis, so this sink needs a
/// standalone Redis (as the list and stream sinks do), not a cluster.
public struct RedisBatchSink: Sendable {
    /// One job to batch, and where its batch goes.
    public struct StagedJob: Sendable {
        public var job: Job
        /// The job as one JSON value (an item of the message's `items`).
        public var item: String
        public var channel: String
        /// The group's JSON object: `{"event.table":"parcels","event.op":"INSERT"}` (`{}` without `group_by`).
        public var group: String
        public var sink: SinkKind
        /// With a stream sink: `MAXLEN ~`.
        public var streamMaxLength: Int?
        public var spec: BatchSpec

        public init(job: Job, item: String, channel: String, group: String, sink: SinkKind, streamMaxLength: Int?, spec: BatchSpec) {
            self.job = job
            self.item = item
            self.channel = channel
            self.group = group
            self.sink = sink
            self.streamMaxLength = streamMaxLength
            self.spec = spec
        }
    }

    /// What staging or flushing did.
    public struct Outcome: Sendable, Equatable {
        /// Jobs added to a batch.
        public var staged = 0
        /// Jobs whose key already existed (staged before: a replay).
        public var duplicates = 0
        /// Batches sent.
        public var flushed = 0
        /// Items in the batches sent.
        public var flushedItems = 0
        /// Milliseconds until the oldest open batch is due (by Redis' clock); nil when none is open.
        public var nextDueMilliseconds: Int?

        public init() {}
    }

    /// How long an idempotency key is kept (seconds).
    public var keyTTLSeconds: Int
    /// Prefix of every key: the idempotency keys' (`<prefix>:<consumer>:<instance>:<job key>`) and the batches'.
    public var keyPrefix: String

    private let stageScript = RedisScript(RedisBatchSink.flushFunction + RedisBatchSink.stageBody)
    private let flushScript = RedisScript(RedisBatchSink.flushFunction + RedisBatchSink.flushBody)

    public init(keyTTLSeconds: Int = 86_400, keyPrefix: String = "pgevents:seen") {
        self.keyTTLSeconds = keyTTLSeconds
        self.keyPrefix = keyPrefix
    }

    /// Jobs per script call (each may flush a batch: bounds the time one call holds Redis).
    public static let scriptBatch = 500
    /// Batches flushed per `flushDue` call at most; the rest by the next call.
    public static let flushLimit = 1_000
    /// Arguments per staged job, after the two fixed ones.
    static let argumentsPerJob = 9

    /// The sorted set of a consumer's open batches.
    public func indexKey(consumer: String) -> String {
        "\(keyPrefix):\(consumer):batches"
    }

    /// The staging list of a group.
    func stagingKey(consumer: String, _ job: StagedJob) -> String {
        "\(keyPrefix):\(consumer):batch:\(job.channel):\(job.job.destination):\(job.group)"
    }

    // Shared by both scripts: sends the batch staged under `staging` and deletes it. Lua errors of the push
    // (the destination holds another type) are returned, naming the batch, before anything is deleted.
    static let flushFunction = """
        local function now_ms()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local function flush(index, staging, reason, now)
          local meta = staging .. ':meta'
          local m = {}
          local fields = redis.call('HGETALL', meta)
          for j = 1, #fields, 2 do m[fields[j]] = fields[j + 1] end
          local items = redis.call('LRANGE', staging, 0, -1)
          if m.destination == nil then
            redis.call('DEL', staging)
            redis.call('ZREM', index, staging)
            return 0
          end
          local body = '{"channel":' .. cjson.encode(m.channel) .. ',"group":' .. m.group .. ',"count":' .. #items ..
            ',"reason":"' .. reason .. '","opened_at_ms":' .. m.opened .. ',"flushed_at_ms":' .. now ..
            ',"items":[' .. table.concat(items, ',') .. ']}'
          local reply
          if m.kind == 'stream' then
            if m.maxlen == '' then
              reply = redis.pcall('XADD', m.destination, '*', 'channel', m.channel, 'count', #items, 'payload', body)
            else
              reply = redis.pcall('XADD', m.destination, 'MAXLEN', '~', m.maxlen, '*', 'channel', m.channel, 'count', #items, 'payload', body)
            end
          else
            reply = redis.pcall('LPUSH', m.destination, body)
          end
          if type(reply) == 'table' and reply.err then
            return redis.error_reply(reply.err .. ' (batch of ' .. #items .. ' for ' .. m.destination .. ')')
          end
          redis.call('DEL', staging, meta)
          redis.call('ZREM', index, staging)
          return #items
        end
        local function next_due(index, now)
          local first = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
          if #first == 0 then return -1 end
          return math.max(0, tonumber(first[2]) - now)
        end

        """

    // KEYS[i]: job i's idempotency key. ARGV[1]: the keys' TTL; ARGV[2]: the index; from ARGV[3], nine per job:
    // staging key, destination, kind, maxlen ('' for none), max items, max age (ms), group JSON, channel, item.
    // Returns {staged, flushed batches, flushed items, ms until the next batch is due or -1}.
    static let stageBody = """
        local index = ARGV[2]
        local now = now_ms()
        local staged, flushed, items = 0, 0, 0
        for i = 1, #KEYS do
          if redis.call('EXISTS', KEYS[i]) == 0 then
            local a = 2 + (i - 1) * 9
            local staging = ARGV[a + 1]
            local meta = staging .. ':meta'
            if redis.call('EXISTS', meta) == 0 then
              redis.call('HSET', meta, 'destination', ARGV[a + 2], 'kind', ARGV[a + 3], 'maxlen', ARGV[a + 4],
                'group', ARGV[a + 7], 'channel', ARGV[a + 8], 'opened', now, 'order', redis.call('INCR', index .. ':order'))
              redis.call('ZADD', index, now + tonumber(ARGV[a + 6]), staging)
            end
            local n = redis.call('RPUSH', staging, ARGV[a + 9])
            redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
            staged = staged + 1
            if n >= tonumber(ARGV[a + 5]) then
              local sent = flush(index, staging, 'full', now)
              if type(sent) == 'table' then return sent end
              flushed = flushed + 1
              items = items + sent
            end
          end
        end
        return {staged, flushed, items, next_due(index, now)}
        """

    // ARGV[1]: the index; ARGV[2]: 'due' or 'all'; ARGV[3]: at most this many batches.
    // Returns {flushed batches, flushed items, ms until the next batch is due or -1}.
    static let flushBody = """
        local index = ARGV[1]
        local now = now_ms()
        local found
        if ARGV[2] == 'all' then
          found = redis.call('ZRANGE', index, 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
        else
          found = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
        end
        -- Oldest first: by deadline, then in the order the batches were opened.
        local members = {}
        for j = 1, #found, 2 do
          local order = tonumber(redis.call('HGET', found[j] .. ':meta', 'order') or '0') or 0
          members[#members + 1] = {found[j], tonumber(found[j + 1]), order}
        end
        table.sort(members, function(x, y) if x[2] ~= y[2] then return x[2] < y[2] end return x[3] < y[3] end)
        local flushed, items = 0, 0
        for _, member in ipairs(members) do
          local sent = flush(index, member[1], ARGV[2] == 'all' and 'drained' or 'due', now)
          if type(sent) == 'table' then return sent end
          flushed = flushed + 1
          items = items + sent
        end
        return {flushed, items, next_due(index, now)}
        """

    /// Stages `jobs`, each in its group's batch, flushing the batches that fill up. Throws `RedisError` for a
    /// connection failure (retrying is safe: what was staged is recorded) and `ProcessorError.sinkRejected`
    /// when Redis refused a batch.
    public func stage(_ jobs: [StagedJob], consumer: String, on redis: RedisConnection) async throws -> Outcome {
        guard !jobs.isEmpty else { return Outcome() }
        let ttl = RedisArgument(keyTTLSeconds)
        let index = RedisArgument(indexKey(consumer: consumer))
        let slices = RedisScript.slices(jobs, size: Self.scriptBatch)
        let replies = try await stageScript.evaluate(
            slices, key: { RedisArgument("\(keyPrefix):\(consumer):\($0.job.key)") }, fixed: [ttl, index], argumentsPerItem: Self.argumentsPerJob,
            arguments: { staged, command in
                command.append(RedisArgument(stagingKey(consumer: consumer, staged)))
                command.append(RedisArgument(staged.job.destination))
                command.append(RedisArgument(staged.sink.rawValue))
                command.append(staged.streamMaxLength.map { RedisArgument($0) } ?? RedisArgument(""))
                command.append(RedisArgument(staged.spec.maxItems))
                command.append(RedisArgument(Self.milliseconds(staged.spec.maxAge)))
                command.append(RedisArgument(staged.group))
                command.append(RedisArgument(staged.channel))
                command.append(RedisArgument(staged.item))
            }, on: redis)
        var outcome = Outcome()
        for (slice, reply) in zip(slices, replies) {
            let counts = try Self.counts(reply, expected: 4, what: "staging events \(slice.first?.job.event.seq ?? 0)…\(slice.last?.job.event.seq ?? 0)")
            outcome.staged += counts[0]
            outcome.duplicates += slice.count - counts[0]
            outcome.flushed += counts[1]
            outcome.flushedItems += counts[2]
            outcome.nextDueMilliseconds = counts[3] < 0 ? nil : counts[3]
        }
        return outcome
    }

    /// Sends the batches whose first item has waited their `maxAge` (at most ``flushLimit`` per call).
    public func flushDue(consumer: String, on redis: RedisConnection) async throws -> Outcome {
        try await flush(consumer: consumer, mode: "due", on: redis)
    }

    /// Sends every open batch, full or not (shutting down).
    public func flushAll(consumer: String, on redis: RedisConnection) async throws -> Outcome {
        var total = Outcome()
        repeat {
            let outcome = try await flush(consumer: consumer, mode: "all", on: redis)
            total.flushed += outcome.flushed
            total.flushedItems += outcome.flushedItems
            total.nextDueMilliseconds = outcome.nextDueMilliseconds
            if outcome.flushed == 0 { break }
        } while total.nextDueMilliseconds != nil
        return total
    }

    private func flush(consumer: String, mode: String, on redis: RedisConnection) async throws -> Outcome {
        let replies = try await flushScript.evaluate({ sha in
            [["EVALSHA", RedisArgument(sha), 0, RedisArgument(indexKey(consumer: consumer)), RedisArgument(mode), RedisArgument(Self.flushLimit)]]
        }, on: redis)
        guard let reply = replies.first else { throw ProcessorError(code: .sinkRejected, message: "no reply to flushing batches") }
        let counts = try Self.counts(reply, expected: 3, what: "flushing batches")
        var outcome = Outcome()
        outcome.flushed = counts[0]
        outcome.flushedItems = counts[1]
        outcome.nextDueMilliseconds = counts[2] < 0 ? nil : counts[2]
        return outcome
    }

    /// The integers of a script's array reply; an error reply is `sinkRejected` naming `what`.
    private static func counts(_ reply: RedisReply, expected: Int, what: String) throws -> [Int] {
        if case .error(let message) = reply {
            throw ProcessorError(code: .sinkRejected, message: "Redis refused \(what): \(message)")
        }
        guard let elements = reply.array, elements.count == expected else {
            throw ProcessorError(code: .sinkRejected, message: "unexpected reply to \(what): \(reply)")
        }
        return try elements.map { element in
            guard let value = element.integer else { throw ProcessorError(code: .sinkRejected, message: "unexpected reply to \(what): \(reply)") }
            return Int(value)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
