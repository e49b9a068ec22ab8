public import PGEventsPostgres
import PGEventsRedis

/// The dead-letter list, for people: what is in it, and putting it back once the cause is fixed
/// (`pgevents dead-letters list|replay`).
///
/// A dead letter that carries a refused job (`destination`, `job`) is replayed by writing that job to its
/// destination again (`LPUSH`, or `XADD` for a stream); one without (the event itself could not become a job: an
/// undecodable payload, a fetch key of the wrong type) is replayed by emitting its payload into the journal again
/// (`pgevents.emit(channel, payload)`), so that it goes through the pipeline anew. Oldest first. Each letter is
/// removed only after its replay succeeded: a crash in between replays it twice (at least once), and a letter that
/// cannot be replayed (a truncated payload, no database given) stays where it is, counted.
public struct DeadLetterQueue: Sendable {
    /// The list's name (`dead_letter_queue`).
    public var name: String

    public init(name: String) {
        self.name = name
    }

    /// One letter, as read.
    public struct Letter: Sendable {
        /// The letter's JSON text, as stored.
        public var text: String
        /// Its fields (empty when the text is not a JSON object).
        public var fields: [String: String]

        /// How it would be replayed, in words.
        public var replay: String {
            if let destination = fields["destination"], fields["job"] != nil {
                return "write the job to \(fields["destination_kind"] ?? "list") \(destination)"
            }
            if fields["payload_bytes"] != nil { return "cannot replay: the payload was too large to keep" }
            return "emit the payload into the journal on channel \(fields["channel"] ?? "?")"
        }
    }

    /// What `replay` did.
    public struct ReplayOutcome: Sendable, Equatable {
        public var jobsWritten = 0
        public var eventsEmitted = 0
        /// Letters left in place: they cannot be replayed as they are (see ``Letter/replay``).
        public var skipped = 0
    }

    /// The number of letters.
    public func count(on redis: RedisSink) async throws -> Int {
        Int(try await redis.command(["LLEN", RedisArgument(name)], slotOf: name).integer ?? 0)
    }

    /// The oldest `limit` letters, oldest first.
    public func list(limit: Int, on redis: RedisSink) async throws -> [Letter] {
        let reply = try await redis.command(["LRANGE", RedisArgument(name), RedisArgument(-limit), -1], slotOf: name)
        return (reply.array ?? []).reversed().map { Self.letter(String(decoding: $0.bytes ?? [], as: UTF8.self)) }
    }

    /// Replays the oldest `limit` letters (see the type's description). `postgres` is needed for letters without a
    /// job; without it they are skipped.
    public func replay(limit: Int, redis: RedisSink, postgres: PostgresConnection?) async throws -> ReplayOutcome {
        var outcome = ReplayOutcome()
        var skippedTexts: [String] = []
        for _ in 0..<limit {
            // The oldest letter not skipped in this run.
            let reply = try await redis.command(
                ["LRANGE", RedisArgument(name), RedisArgument(-(skippedTexts.count + 1)), RedisArgument(-(skippedTexts.count + 1))],
                slotOf: name)
            guard let bytes = reply.array?.first?.bytes else { break }
            let letter = Self.letter(String(decoding: bytes, as: UTF8.self))
            if let destination = letter.fields["destination"], let job = letter.fields["job"] {
                if letter.fields["destination_kind"] == "stream" {
                    try await redis.command(
                        [
                            "XADD", RedisArgument(destination), "*", "seq", RedisArgument(letter.fields["seq"] ?? ""), "channel",
                            RedisArgument(letter.fields["channel"] ?? ""), "payload", RedisArgument(job), "replayed", "1",
                        ], slotOf: destination)
                } else {
                    try await redis.command(["LPUSH", RedisArgument(destination), RedisArgument(job)], slotOf: destination)
                }
                outcome.jobsWritten += 1
            } else if letter.fields["payload_bytes"] == nil, let postgres, let channel = letter.fields["channel"],
                let payload = letter.fields["payload"]
            {
                try await postgres.query("SELECT pgevents.emit($1, $2)", [channel, payload])
                outcome.eventsEmitted += 1
            } else {
                outcome.skipped += 1
                skippedTexts.append(letter.text)
                continue
            }
            // Removed only now that it was replayed: the exact letter, wherever LPUSHes moved it.
            try await redis.command(["LREM", RedisArgument(name), -1, RedisArgument(bytes)], slotOf: name)
        }
        return outcome
    }

    static func letter(_ text: String) -> Letter {
        guard case .object(let object)? = try? EventValue(json: text) else { return Letter(text: text, fields: [:]) }
        var fields: [String: String] = [:]
        for (key, value) in object {
            switch value {
            case .string(let string): fields[key] = string
            case .null: break
            default: fields[key] = value.jsonText
            }
        }
        return Letter(text: text, fields: fields)
    }
}
