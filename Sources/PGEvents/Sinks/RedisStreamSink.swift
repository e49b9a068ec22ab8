import struct Foundation.Date
public import PGEventsRedis

/// Delivers events to Redis streams with `XADD`, so workers can share them through consumer groups
/// (`XREADGROUP`, `XACK`, `XAUTOCLAIM`); idempotent, so a replay after a crash adds no duplicate entry.
///
/// Each event becomes one entry, `XADD <stream> [MAXLEN ~ <maxLength>] * seq <seq> channel <channel> payload
/// <payload> created_at <ISO-8601, milliseconds, UTC>`, with an ID Redis assigns.
///
/// A chunk goes through one small Lua script per `scriptBatch` events (pipelined): for each event, unless
/// its idempotency key exists, `XADD` and then `SET <key> 1 EX <ttl>`. A script runs atomically inside Redis,
/// and the key is recorded only after the entry was added, so there is no moment where an event counts as
/// delivered but is not in its stream. An `XADD` that fails (the stream's key holds another type) stops the
/// script with that event unrecorded — the events before it in the same call stay delivered and recorded —
/// and the error names the event and the stream; the retry adds what is missing and counts the rest as
/// duplicates.
public struct RedisStreamSink: Sendable {
    /// What one delivery did: `pushed` entries added, `duplicates` events delivered before.
    public typealias Outcome = RedisListSink.Outcome

    /// The stream an event goes to: `streams[channel]`, else `defaultStream`.
    public var streams: [String: String]
    /// The stream for channels not in `streams`.
    public var defaultStream: String
    /// Trims each stream to about this many entries as it adds (`MAXLEN ~`: Redis removes whole macro
    /// nodes only, so a stream may hold up to a node's worth — `stream-node-max-entries`, 100 by default —
    /// more). Entries trimmed are gone even if no group has read them: size it for the longest backlog you
    /// expect. Nil never trims (the streams grow until something else trims them).
    public var maxLength: Int?
    /// How long an idempotency key is kept (seconds): longer than any replay you expect.
    public var keyTTLSeconds: Int
    /// Prefix of the idempotency keys: `<prefix>:<consumer>:<instance>:<seq>`.
    public var keyPrefix: String

    /// The script, its SHA-1 shared by copies of this sink.
    private let loadedScript = RedisScript(RedisStreamSink.script)

    public init(
        streams: [String: String] = [:], defaultStream: String = "pgevents:events", maxLength: Int? = nil,
        keyTTLSeconds: Int = 86_400, keyPrefix: String = "pgevents:seen"
    ) {
        self.streams = streams
        self.defaultStream = defaultStream
        self.maxLength = maxLength
        self.keyTTLSeconds = keyTTLSeconds
        self.keyPrefix = keyPrefix
    }

    /// Events per script call: bounds the time one call holds Redis (about a millisecond).
    public static let scriptBatch = 500

    /// Arguments after `KEYS` and the two fixed ones, per event.
    static let argumentsPerEvent = 5

    // KEYS[i]: event i's idempotency key. ARGV[1]: the keys' TTL; ARGV[2]: MAXLEN, or '' for none; from
    // ARGV[3], five per event: stream, seq, channel, payload, created_at. Returns how many events were added
    // (the others were delivered before); an XADD that fails returns its error with the event and stream.
    static let script = """
        local added = 0
        local maxlen = ARGV[2]
        for i = 1, #KEYS do
          if redis.call('EXISTS', KEYS[i]) == 0 then
            local a = 5 * i - 3
            local stream = ARGV[a + 1]
            local reply
            if maxlen == '' then
              reply = redis.pcall('XADD', stream, '*',
                'seq', ARGV[a + 2], 'channel', ARGV[a + 3], 'payload', ARGV[a + 4], 'created_at', ARGV[a + 5])
            else
              reply = redis.pcall('XADD', stream, 'MAXLEN', '~', maxlen, '*',
                'seq', ARGV[a + 2], 'channel', ARGV[a + 3], 'payload', ARGV[a + 4], 'created_at', ARGV[a + 5])
            end
            if type(reply) == 'table' and reply.err then
              return redis.error_reply(reply.err .. ' (event ' .. ARGV[a + 2] .. ', stream ' .. stream .. ')')
            end
            redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
            added = added + 1
          end
        end
        return added
        """

    /// The stream `event` goes to.
    public func stream(for event: JournalEvent) -> String {
        streams[event.channel] ?? defaultStream
    }

    /// Adds `events` in one pipeline. Throws `RedisError` for a connection failure (nothing is known to be
    /// delivered; retrying is safe), `ProcessorError.sinkRejected` when Redis refused an event, and
    /// `ProcessorError.invalidConfiguration` for a negative `maxLength`.
    ///
    /// `consumer` names the idempotency key space: the consumer's name and its instance id.
    public func deliver(_ events: [JournalEvent], consumer: String, on redis: RedisConnection) async throws -> Outcome {
        try await deliver(jobs: events.map { Job(key: String($0.seq), destination: stream(for: $0), body: $0.payload, event: $0) }, consumer: consumer, on: redis)
    }

    /// Adds `jobs` in one pipeline, each to its `destination` stream (fields: seq, channel, payload = the job's
    /// body, created_at), skipping those whose key was delivered before.
    public func deliver(jobs: [Job], consumer: String, on redis: RedisConnection) async throws -> Outcome {
        guard !jobs.isEmpty else { return Outcome(pushed: 0, duplicates: 0) }
        if let maxLength, maxLength < 0 {
            throw ProcessorError(code: .invalidConfiguration, message: "the streams' maximum length is \(maxLength); expected 0 or more")
        }
        let ttl = RedisArgument(keyTTLSeconds)
        let trim = maxLength.map { RedisArgument($0) } ?? RedisArgument("")
        let slices = RedisScript.slices(jobs, size: Self.scriptBatch)
        let replies = try await loadedScript.evaluate(
            slices, key: { RedisArgument("\(keyPrefix):\(consumer):\($0.key)") }, fixed: [ttl, trim], argumentsPerItem: Self.argumentsPerEvent,
            arguments: { job, command in
                command.append(RedisArgument(job.destination))
                command.append(RedisArgument(String(job.event.seq)))
                command.append(RedisArgument(job.event.channel))
                command.append(RedisArgument(job.body))
                command.append(RedisArgument(Self.timestamp(job.event.createdAt)))
            }, on: redis)
        var outcome = Outcome(pushed: 0, duplicates: 0)
        for (slice, reply) in zip(slices, replies) {
            switch reply {
            case .integer(let added):
                outcome.pushed += Int(added)
                outcome.duplicates += slice.count - Int(added)
            case .error(let message):
                let names = Set(slice.map(\.destination)).sorted().joined(separator: ", ")
                throw ProcessorError(
                    code: .sinkRejected,
                    message: "Redis refused events \(slice.first?.event.seq ?? 0)…\(slice.last?.event.seq ?? 0) for stream(s) \(names): \(message)")
            default:
                throw ProcessorError(code: .sinkRejected, message: "unexpected reply to events \(slice.first?.event.seq ?? 0)…: \(reply)")
            }
        }
        return outcome
    }

    // MARK: Timestamps

    /// `date` as ISO-8601 in UTC with milliseconds, `2024-05-01T12:34:56.789Z` (truncated, not rounded, to
    /// the millisecond, so an entry never shows a later time than its event's).
    static func timestamp(_ date: Date) -> String {
        // Whole microseconds first: the journal's clock has microsecond resolution, and a Double near
        // 1.7e9 s is not exact, so scaling straight to milliseconds could land just below the true value.
        let seconds = date.timeIntervalSince1970
        let micros = (seconds * 1_000_000).rounded()
        guard micros.isFinite, abs(micros) < 9e18 else { return "\(date)" }  // ±285,000 years: beyond Int64
        let millis = Int64(micros).floorDivided(by: 1_000)
        let days = millis.floorDivided(by: 86_400_000)
        let dayMillis = millis - days * 86_400_000
        let (year, month, day) = civil(fromDays: days)
        let hour = dayMillis / 3_600_000, minute = dayMillis / 60_000 % 60, second = dayMillis / 1_000 % 60
        let milli = dayMillis % 1_000
        var text = year < 0 ? "-" : ""
        text += pad(abs(year), 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
        text += "T" + pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2) + "." + pad(milli, 3) + "Z"
        return text
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = z.floorDivided(by: 146_097)
        let dayOfEra = z - era * 146_097                                                   // [0, 146096]
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // [0, 399]
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)     // [0, 365]
        let shiftedMonth = (5 * dayOfYear + 2) / 153                                       // [0, 11], March first
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension Int64 {
    /// The quotient rounded towards minus infinity (`/` rounds towards zero).
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
