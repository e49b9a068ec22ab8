public import Logging
import Metrics
public import PGEventsPostgres
import struct Foundation.Date
import struct Foundation.UUID

/// The processing between reading events and writing them to Redis: each event is decoded as its channel says,
/// its row fetched (one query per channel per chunk), the channel's rules evaluated, and the matched actions
/// rendered into jobs. An event that cannot be decoded becomes a dead letter (reason, channel, seq, times, the
/// raw payload) on `deadLetterQueue`; it never stops the processor.
///
/// Job keys are stable across replays, so the sinks' idempotency covers them: `<seq>` for an event's first job,
/// `<seq>:<n>` for the next ones, `<seq>:dead` for its dead letter.
public struct EventPipeline: Sendable {
    public var channels: [String: ChannelPipeline]
    /// The list of dead letters.
    public var deadLetterQueue: String
    /// Where events of a channel without a configuration go (they should not occur: the processor listens only
    /// on configured channels, but the journal holds every channel's events).
    public var defaultQueue: String

    public init(channels: [String: ChannelPipeline], deadLetterQueue: String = "pgevents:dead", defaultQueue: String = "pgevents:jobs") {
        self.channels = channels
        self.deadLetterQueue = deadLetterQueue
        self.defaultQueue = defaultQueue
    }

    /// True when every channel passes payloads through to a list unchanged (no decoding, rules or fetching):
    /// the processor then skips this stage.
    public var isPassThrough: Bool {
        channels.values.allSatisfy { $0.decoder == nil && $0.rules == nil && $0.fetch == nil && $0.sink == .list && $0.batch == nil }
    }

    /// True when some channel batches its jobs.
    public var batches: Bool {
        channels.values.contains { $0.batch != nil }
    }

    /// What a chunk of events became.
    public struct Output: Sendable {
        public var listJobs: [Job] = []
        /// Stream jobs with their channel's `MAXLEN` (nil: no trimming).
        public var streamJobs: [(job: Job, maxLength: Int?)] = []
        /// Jobs of channels that batch: staged into their group's batch (`RedisBatchSink`).
        public var batchJobs: [RedisBatchSink.StagedJob] = []
        public var deadLetters = 0
        /// Events no rule matched and whose channel drops such events.
        public var dropped = 0
    }

    /// The fetch query of each channel that fetches, checked against the catalog: the table and the key column
    /// must exist (the names are quoted; a payload's value is only ever a parameter). Throws a configuration error
    /// naming what is missing.
    public func prepareFetches(on connection: PostgresConnection) async throws -> [String: PreparedFetch] {
        var queries: [String: PreparedFetch] = [:]
        for (channel, pipeline) in channels {
            guard let fetch = pipeline.fetch else { continue }
            let table = "\(PostgresIdentifier.quote(fetch.schema)).\(PostgresIdentifier.quote(fetch.table))"
            let type = try await connection.query("""
                SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
                """, [table, fetch.keyColumn])
            guard let keyType = try type.first?.decode(String.self, at: 0) else {
                let exists = try await connection.query("SELECT to_regclass($1) IS NOT NULL", [table]).scalar(Bool.self)
                throw ProcessorError(
                    code: .invalidConfiguration,
                    message: exists
                        ? "channels.\(channel).fetch: table \(fetch.schema).\(fetch.table) has no column \(fetch.keyColumn)"
                        : "channels.\(channel).fetch: there is no table \(fetch.schema).\(fetch.table) in this database")
            }
            // The keys arrive as one text[] parameter, each cast to the key's type.
            // A subquery per key: an index lookup each (a join let the planner hash the whole table per chunk).
            queries[channel] = PreparedFetch(sql: """
                SELECT p.i::int8, (SELECT row_to_json(t)::text FROM \(table) AS t \
                WHERE t.\(PostgresIdentifier.quote(fetch.keyColumn)) = p.k::\(keyType) LIMIT 1) \
                FROM unnest($1::text[]) WITH ORDINALITY AS p(k, i)
                """, keyType: keyType)
        }
        return queries
    }

    /// A channel's row query, and the key column's type: a key that is not a valid value of that type (a
    /// payload's `1; DROP TABLE …` for an integer key) matches no row instead of failing the query.
    public struct PreparedFetch: Sendable, Hashable {
        public var sql: String
        public var keyType: String

        /// Whether `key` can be cast to the key column's type.
        public func accepts(_ key: String) -> Bool {
            switch keyType {
            case "smallint": Int16(key) != nil
            case "integer": Int32(key) != nil
            case "bigint": Int64(key) != nil
            case "uuid": UUID(uuidString: key) != nil
            case "boolean": ["true", "false", "t", "f"].contains(key.lowercased())
            default:
                if keyType.hasPrefix("numeric") || keyType == "real" || keyType == "double precision" {
                    Double(key) != nil
                } else {
                    !key.contains("\u{0}")
                }
            }
        }
    }

    /// Turns `events` into jobs, fetching rows on `connection` with the `fetchQueries` of `prepareFetches`.
    public func process(_ events: [JournalEvent], fetchQueries: [String: PreparedFetch], on connection: PostgresConnection, logger: Logger) async throws -> Output {
        var output = Output()
        // Decode every event first; the undecodable become dead letters.
        // Each event's context is made once (its meta fields are formatted there) and gets its row later.
        var decoded: [(event: JournalEvent, context: EvaluationContext)] = []
        decoded.reserveCapacity(events.count)
        for event in events {
            guard let pipeline = channels[event.channel] else {
                output.listJobs.append(Job(key: String(event.seq), destination: defaultQueue, body: event.payload, event: event))
                continue
            }
            switch pipeline.decode(event.payload) {
            case .success(let value):
                decoded.append((event, EvaluationContext(event, decoded: value)))
            case .failure(let failure):
                output.deadLetters += 1
                Counter(label: "pgevents_parse_errors_total", dimensions: [("channel", event.channel)]).increment()
                logger.warning("payload cannot be decoded; sent to the dead-letter list", metadata: [
                    "event_key": "\(event.seq)", "channel": "\(event.channel)", "reason": "\(failure.reason)",
                    "dead_letter_queue": "\(deadLetterQueue)",
                ])
                output.listJobs.append(deadLetter(event, reason: failure.reason))
            }
        }
        // Fetch rows: one query per channel for all its events of this chunk.
        var rows: [Int64: EventValue] = [:]
        for (channel, query) in fetchQueries {
            guard let fetch = channels[channel]?.fetch else { continue }
            var keys: [String] = []
            var seqs: [Int64] = []
            for (event, context) in decoded where event.channel == channel {
                guard let key = fetch.parameter(for: context) else { continue }
                guard query.accepts(key) else {
                    logger.debug("fetch key is not a \(query.keyType): no row", metadata: ["event_key": "\(event.seq)", "channel": "\(channel)", "key": "\(key.prefix(80))"])
                    continue
                }
                keys.append(key)
                seqs.append(event.seq)
            }
            guard !keys.isEmpty else { continue }
            let result = try await connection.query(query.sql, [Self.textArrayLiteral(keys)])
            for row in result {
                let index = try row.decode(Int.self, at: 0) - 1
                guard seqs.indices.contains(index), let json = try row.decode(String?.self, at: 1), let value = try? EventValue(json: json) else { continue }
                rows[seqs[index]] = value
            }
        }
        // Rules and jobs.
        for (event, fetched) in decoded {
            guard let pipeline = channels[event.channel] else { continue }
            var context = fetched
            context.row = rows[event.seq]
            let actions = pipeline.route(context, payload: event.payload) { diagnostic in
                logger.debug("rule evaluation", metadata: ["event_key": "\(event.seq)", "channel": "\(event.channel)", "diagnostic": "\(diagnostic.message)"])
            }
            if actions.isEmpty { output.dropped += 1 }
            // A batch's items are JSON values: a rule's job is; an event passed on unmatched goes as decoded, with
            // its row when the channel fetches one (`{"event": …, "row": …}`).
            let group = actions.isEmpty ? "" : pipeline.batch.map { $0.key(for: context) } ?? ""
            func item(_ action: MatchedAction) -> String {
                if action.rule != nil { return action.body }
                guard pipeline.fetch != nil else { return action.job.jsonText }
                return EventValue.object(["event": context.event, "row": context.row ?? .null]).jsonText
            }
            for (index, action) in actions.enumerated() {
                let job = Job(key: index == 0 ? String(event.seq) : "\(event.seq):\(index)", destination: action.queue, body: action.body, event: event)
                if let batch = pipeline.batch {
                    output.batchJobs.append(RedisBatchSink.StagedJob(
                        job: job, item: item(action), channel: event.channel, group: group,
                        sink: action.sink, streamMaxLength: pipeline.streamMaxLength, spec: batch))
                    continue
                }
                switch action.sink {
                case .list: output.listJobs.append(job)
                case .stream: output.streamJobs.append((job, pipeline.streamMaxLength))
                }
            }
        }
        return output
    }

    /// The dead letter of `event`: `{"reason", "channel", "seq", "created_at", "dead_at", "payload"}`.
    func deadLetter(_ event: JournalEvent, reason: String) -> Job {
        let body: EventValue = [
            "reason": .string(reason),
            "channel": .string(event.channel),
            "seq": .integer(event.seq),
            "created_at": .string(EvaluationContext.timestamp(event.createdAt)),
            "dead_at": .string(EvaluationContext.timestamp(Date())),
            "payload": .string(event.payload),
        ]
        return Job(key: "\(event.seq):dead", destination: deadLetterQueue, body: body.jsonText, event: event)
    }

    /// `{"a","b\"c"}`: a text[] literal whose elements are always quoted, `"` and `\` escaped.
    static func textArrayLiteral(_ values: [String]) -> String {
        var literal = "{"
        for (index, value) in values.enumerated() {
            if index > 0 { literal += "," }
            literal += "\""
            if value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") }) {
                var escaped = String.UnicodeScalarView()
                for scalar in value.unicodeScalars {
                    if scalar == "\\" || scalar == "\"" { escaped.append("\\") }
                    escaped.append(scalar)
                }
                literal += String(escaped)
            } else {
                literal += value
            }
            literal += "\""
        }
        return literal + "}"
    }
}
