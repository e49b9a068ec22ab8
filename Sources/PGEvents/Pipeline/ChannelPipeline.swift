/// What happens to an event that no rule matches.
public enum UnmatchedPolicy: String, Sendable, Hashable, CaseIterable {
    /// Nothing is enqueued.
    case drop
    /// The event goes to the channel's `queue`, its payload as it was emitted (as without rules).
    case defaultQueue = "default_queue"
}

/// One channel's pipeline, from its mapping in the processor's configuration file:
///
/// ```yaml
/// channels:
///   new_event:
///     queue: jobs                  # the channel's list: events without rules, unmatched ones, actions without a queue
///     decode: json                 # json | csv | text (absent: the payload is passed through as text)
///     csv_columns: [op, schema, table, key, value]            # with decode: csv, required
///     fetch: {table: public.events, key: event_id, from: event.event_id}   # the row: column `key` = value at `from`
///     rules:
///       - name: feedback           # default: rules[0], rules[1]…; unique
///         when: {all: [{field: event.event_type, eq: FeedbackGiven}, {field: row.chain_id, in: [1, 137]}]}
///         enqueue: {queue: "jobs:feedback", sink: list, job: {type: process_feedback, id: "{{event.event_id}}"}}
///     rule_mode: first_match       # first_match (default) | all_matches
///     unmatched: drop              # drop | default_queue (default: default_queue when there is a queue, else drop)
///     batch: {max_items: 10, max_seconds: 2, group_by: [event.table, event.op]}
///     sink: list                   # list (default) | stream: the default of the channel's queue and its actions
///     stream: {maxlen: 100000}     # with a stream sink: approximate trimming (XADD MAXLEN ~)
/// ```
///
/// `when` is a condition: `{all: [...]}`, `{any: [...]}`, `{not: ...}`, `{field: <path>, <operator>: <value>}`
/// with one operator of `eq`, `ne`, `in` (a list), `gt`, `gte`, `lt`, `lte`, `exists` (true or false), or a list
/// (all of them). `enqueue` is one action or a list of them. Values in the file are read as in YAML 1.2's core
/// schema: `null`/`~`/nothing, `true`/`false`, decimal integers and numbers (plain, unquoted); anything quoted, and
/// every other scalar (`yes`, `0x1F`, `.inf`), is a string.
///
/// Every path is checked against what the channel has: `event.` fields need `decode: json` or `csv` (and with csv,
/// one of its columns), `row.` fields need `fetch`, `meta.` is `channel`, `seq` or `created_at`.
public struct ChannelPipeline: Sendable, Hashable {
    /// The channel's Redis list (or stream).
    public var queue: String?
    /// `nil`: the payload is not decoded (rules see it as a string).
    public var decoder: PayloadDecoder?
    public var fetch: FetchSpec?
    /// `nil`: no rules, every event goes to `queue`.
    public var rules: RuleSet?
    public var unmatched: UnmatchedPolicy
    public var batch: BatchSpec?
    /// The sink of the channel's queue, and of actions that do not name one.
    public var sink: SinkKind
    /// Streams are trimmed to about this many entries; `nil`: not trimmed.
    public var streamMaxLength: Int?
    /// How often a job Redis refuses (`WRONGTYPE` on its queue) is tried before it goes to the dead-letter list
    /// (`max_attempts`, default 3), and the wait before the second try, doubled for each further one
    /// (`attempt_backoff`, default 0.1 s). A failure that cannot change on another try (an undecodable payload, a
    /// key that is not a value of its column's type, a job larger than Redis takes) is dead-lettered at once.
    public var maxAttempts = 3
    public var attemptBackoff = Duration.milliseconds(100)

    /// The keys of a channel's mapping this pipeline reads, besides `queue`.
    public static let allowedKeys: Set<String> = [
        "decode", "csv_columns", "fetch", "rules", "rule_mode", "unmatched", "batch", "sink", "stream", "max_attempts", "attempt_backoff",
    ]
    /// Every key of a channel's mapping: ``allowedKeys`` and `queue`.
    public static let channelKeys: Set<String> = allowedKeys.union(["queue"])

    public init(
        queue: String?, decoder: PayloadDecoder? = nil, fetch: FetchSpec? = nil, rules: RuleSet? = nil,
        unmatched: UnmatchedPolicy = .defaultQueue, batch: BatchSpec? = nil, sink: SinkKind = .list, streamMaxLength: Int? = nil
    ) {
        self.queue = queue
        self.decoder = decoder
        self.fetch = fetch
        self.rules = rules
        self.unmatched = unmatched
        self.batch = batch
        self.sink = sink
        self.streamMaxLength = streamMaxLength
    }

    /// The payload decoded as `decode:` says; without a decoder, the payload as a string.
    public func decode(_ payload: String) -> Result<EventValue, DecodeFailure> {
        decoder?.decode(payload) ?? .success(.string(payload))
    }

    /// The jobs of one event: the matching rules' actions; or, when no rule matches (or there are no rules) and the
    /// channel sends such events to its queue, the event itself with its `payload` as it was emitted.
    public func route(_ context: EvaluationContext, payload: String, report: (EvaluationDiagnostic) -> Void = { _ in }) -> [MatchedAction] {
        if let rules {
            let matched = rules.evaluate(context, report: report)
            guard matched.isEmpty, unmatched == .defaultQueue else { return matched }
        }
        guard let queue else { return [] }
        return [MatchedAction(rule: nil, queue: queue, sink: sink, job: context.event, body: payload)]
    }
}
