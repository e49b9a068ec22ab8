import Foundation
import Testing

@testable import PGEvents

/// A channel with a queue, JSON payloads, and the start of a list of rules (lines 3 to 5).
let pipelineRuleHeader = "    queue: q\n    decode: json\n    rules:\n"

@Suite("Pipeline configuration")
struct PipelineConfigurationTests {
    /// The pipeline of the first channel of a processor.yml.
    static func pipeline(_ yaml: String) throws -> ChannelPipeline {
        let root = try ConfigurationNode.parse(yaml, file: "processor.yml").mapping(allowed: ["channels"])
        let channels = try #require(root["channels"]).orderedMapping()
        return try ChannelPipeline(configuration: try #require(channels.first).value)
    }

    /// The pipeline of channel `c`, whose mapping is `body` (indented by four spaces; its first line is line 3).
    static func channel(_ body: String) throws -> ChannelPipeline {
        try pipeline("channels:\n  c:\n" + body)
    }

    static func path(_ text: String) -> FieldPath {
        FieldPath(text)!
    }

    static let seed001 = """
        channels:
          new_event:
            queue: jobs
            decode: json
            fetch: {table: public.events, key: event_id, from: event.event_id}
            rules:
              - name: feedback
                when: {all: [{field: event.event_type, eq: FeedbackGiven}, {field: row.chain_id, in: [1, 137]}]}
                enqueue: {queue: "jobs:feedback", sink: list, job: {type: process_feedback, id: "{{event.event_id}}", chain: "{{row.chain_id}}"}}
              - name: registered
                when:
                  - {field: event.event_type, eq: AgentRegistered}
                  - not: {field: event.registry, ne: identity}
                  - any: [{field: event.block_number, gte: 1000000}, {field: row, exists: false}]
                enqueue:
                  - {job: {type: welcome, agent: "{{event}}", note: "block {{event.block_number}} on {{meta.channel}}"}}
                  - {queue: audit, sink: stream, job: {seq: "{{meta.seq}}", at: "{{meta.created_at}}"}}
            rule_mode: all_matches
            unmatched: drop
            batch: {max_items: 20, max_seconds: 0.5, group_by: [event.registry, meta.channel]}
            sink: list
            stream: {maxlen: 100000}
        """

    @Test("seed 001: rules over the event and its fetched row, with typed job templates")
    func full() throws {
        let pipeline = try Self.pipeline(Self.seed001)
        #expect(pipeline.queue == "jobs")
        #expect(pipeline.decoder == PayloadDecoder(format: .json))
        #expect(
            pipeline.fetch == FetchSpec(schema: "public", table: "events", keyColumn: "event_id", valuePath: Self.path("event.event_id")))
        #expect(pipeline.unmatched == .drop)
        #expect(
            pipeline.batch
                == BatchSpec(maxItems: 20, maxAge: .milliseconds(500), groupBy: [Self.path("event.registry"), Self.path("meta.channel")]))
        #expect(pipeline.sink == .list)
        #expect(pipeline.streamMaxLength == 100_000)
        let rules = try #require(pipeline.rules)
        #expect(rules.mode == .allMatches)
        #expect(rules.rules.map(\.name) == ["feedback", "registered"])
        #expect(
            rules.rules[0].when
                == .all([
                    .field(Self.path("event.event_type"), .eq("FeedbackGiven")),
                    .field(Self.path("row.chain_id"), .in([1, 137])),
                ]))
        #expect(
            rules.rules[1].when
                == .all([
                    .field(Self.path("event.event_type"), .eq("AgentRegistered")),
                    .not(.field(Self.path("event.registry"), .ne("identity"))),
                    .any([.field(Self.path("event.block_number"), .gte(1_000_000)), .field(Self.path("row"), .exists(false))]),
                ]))
        #expect(
            rules.rules[0].actions == [
                Rule.Action(
                    queue: "jobs:feedback",
                    job: .object([
                        .init(key: "type", value: .literal("process_feedback")),
                        .init(key: "id", value: .field(Self.path("event.event_id"))),
                        .init(key: "chain", value: .field(Self.path("row.chain_id"))),
                    ]),
                    sink: .list
                )
            ])
        // An action without a queue takes the channel's; without a sink, the channel's sink.
        #expect(rules.rules[1].actions.map(\.queue) == ["jobs", "audit"])
        #expect(rules.rules[1].actions.map(\.sink) == [.list, .stream])

        // The event of seed 001's trigger, its row, and what the rules make of it.
        let payload = #"{"event_id":"0xabc-1","chain_id":137,"block_number":1000001,"event_type":"FeedbackGiven","registry":"reputation"}"#
        let event = SourceEvent(seq: 9, channel: "new_event", payload: payload, createdAt: Date(timeIntervalSince1970: 0))
        let decoded = try pipeline.decode(payload).get()
        let row = try EventValue(json: #"{"id":"0xabc-1","chain_id":137}"#)
        let context = EvaluationContext(event, decoded: decoded, row: row)
        #expect(pipeline.fetch?.parameter(for: context) == "0xabc-1")
        #expect(pipeline.route(context, payload: payload).map(\.body) == [#"{"type":"process_feedback","id":"0xabc-1","chain":137}"#])
        #expect(pipeline.batch?.key(for: context) == #"{"event.registry":"reputation","meta.channel":"new_event"}"#)

        let registered = try pipeline.decode(#"{"event_id":"e2","block_number":5,"event_type":"AgentRegistered","registry":"identity"}"#)
            .get()
        let routed = pipeline.route(EvaluationContext(event, decoded: registered, row: nil), payload: "")
        #expect(routed.map(\.queue) == ["jobs", "audit"])
        #expect(
            routed.map(\.body) == [
                #"{"type":"welcome","agent":{"event_id":"e2","block_number":5,"event_type":"AgentRegistered","registry":"identity"},"note":"block 5 on new_event"}"#,
                #"{"seq":9,"at":"1970-01-01T00:00:00.000000Z"}"#,
            ])
        // Nothing matches, and unmatched events are dropped.
        #expect(pipeline.route(EvaluationContext(event, decoded: ["event_type": "Other"]), payload: "{}").isEmpty)
    }

    @Test("seed 004 (GC2): CSV payloads, batched by table and operation, rows fetched by key")
    func gc2() throws {
        let pipeline = try Self.pipeline(
            """
            channels:
              _gc2_notify_transaction:
                queue: "gc2:batches"
                decode: csv
                csv_columns: [op, schema, table, key, value]
                fetch: {table: parcels, key: gid, from: event.value}
                batch: {group_by: [event.schema, event.table, event.op]}
            """)
        #expect(pipeline.decoder == PayloadDecoder(format: .csv(columns: ["op", "schema", "table", "key", "value"])))
        #expect(pipeline.fetch == FetchSpec(schema: "public", table: "parcels", keyColumn: "gid", valuePath: Self.path("event.value")))
        #expect(
            pipeline.batch
                == BatchSpec(maxItems: 10, maxAge: .seconds(2), groupBy: ["event.schema", "event.table", "event.op"].map(Self.path)))
        #expect(pipeline.rules == nil)
        let payload = "UPDATE,public,parcels,gid,42"
        let context = EvaluationContext(event: try pipeline.decode(payload).get())
        #expect(pipeline.batch?.key(for: context) == #"{"event.schema":"public","event.table":"parcels","event.op":"UPDATE"}"#)
        #expect(pipeline.fetch?.parameter(for: context) == "42")
        // Without rules, every event goes to the queue as it was emitted.
        #expect(
            pipeline.route(context, payload: payload) == [
                MatchedAction(rule: nil, queue: "gc2:batches", sink: .list, job: context.event, body: payload)
            ])
        if case .failure(let failure) = pipeline.decode("UPDATE,public,parcels,gid") {
            #expect(failure.reason.hasPrefix("CSV record has 4 fields, expected 5 (op, schema, table, key, value)"))
        } else {
            Issue.record("a short record decoded")
        }
    }

    @Test("a channel with only a queue passes payloads through, as before")
    func defaults() throws {
        let pipeline = try Self.channel("    queue: jobs")
        #expect(pipeline == ChannelPipeline(queue: "jobs"))
        #expect(pipeline.decoder == nil)
        #expect(try pipeline.decode("not json").get() == "not json")
        #expect(pipeline.route(EvaluationContext(event: "x"), payload: "x").map(\.body) == ["x"])
        #expect(ChannelPipeline.channelKeys == ChannelPipeline.allowedKeys.union(["queue"]))
        #expect(!ChannelPipeline.allowedKeys.contains("queue"))
    }

    @Test("unmatched events go to the queue when there is one (unless unmatched: drop), and are dropped without")
    func unmatched() throws {
        let rule = "    decode: json\n    rules: [{when: {field: event.a, eq: 1}, enqueue: {queue: r, job: {a: \"{{event.a}}\"}}}]\n"
        let withQueue = try Self.channel("    queue: jobs\n" + rule)
        #expect(withQueue.unmatched == .defaultQueue)
        #expect(withQueue.rules?.rules.map(\.name) == ["rules[0]"])
        #expect(
            withQueue.route(EvaluationContext(event: ["a": 2]), payload: #"{"a":2}"#) == [
                MatchedAction(rule: nil, queue: "jobs", sink: .list, job: ["a": 2], body: #"{"a":2}"#)
            ])
        #expect(withQueue.route(EvaluationContext(event: ["a": 1]), payload: #"{"a":1}"#).map(\.queue) == ["r"])
        let dropping = try Self.channel("    queue: jobs\n    unmatched: drop\n" + rule)
        #expect(dropping.route(EvaluationContext(event: ["a": 2]), payload: "{}").isEmpty)
        let withoutQueue = try Self.channel(rule)
        #expect(withoutQueue.unmatched == .drop)
        #expect(withoutQueue.queue == nil)
        #expect(withoutQueue.route(EvaluationContext(event: ["a": 2]), payload: "{}").isEmpty)
        let streams = try Self.channel("    queue: jobs\n    sink: stream\n    stream: {maxlen: 5}\n" + rule)
        #expect(streams.sink == .stream)
        #expect(streams.rules?.rules.first?.actions.first?.sink == .stream)
        #expect(streams.streamMaxLength == 5)
    }

    @Test(
        "values are read as in YAML 1.2's core schema",
        arguments: [
            ("1", EventValue.integer(1)),
            ("-7", .integer(-7)),
            ("+3", .integer(3)),
            ("\"1\"", .string("1")),
            ("'1'", .string("1")),
            ("!!str 1", .string("1")),
            ("1.5", .number(1.5)),
            ("1e3", .number(1000)),
            (".5", .number(0.5)),
            ("12345678901234567890", .number(12_345_678_901_234_567_168)),
            ("true", .bool(true)),
            ("False", .bool(false)),
            ("yes", .string("yes")),
            ("on", .string("on")),
            ("~", .null),
            ("null", .null),
            ("''", .string("")),
            ("0x1F", .string("0x1F")),
            (".inf", .string(".inf")),
            ("1_000", .string("1_000")),
            ("FeedbackGiven", .string("FeedbackGiven")),
            ("2025-01-24", .string("2025-01-24")),
            ("[1, a, {b: null}]", [1, "a", ["b": .null]]),
            ("{z: 1, a: [true]}", ["z": 1, "a": [true]]),
        ] as [(String, EventValue)])
    func scalars(yaml: String, expected: EventValue) throws {
        let pipeline = try Self.channel(
            "    queue: q\n    decode: json\n    rules: [{when: {field: event.f, eq: \(yaml)}, enqueue: {job: x}}]")
        #expect(pipeline.rules?.rules.first?.when == .field(Self.path("event.f"), .eq(expected)))
    }

    @Test("conditions: a list is all of them; not takes a list too")
    func conditionForms() throws {
        let pipeline = try Self.channel(
            """
                queue: q
                decode: json
                rules:
                  - when: [{field: event.a, exists: true}, {not: [{field: event.b, lt: 0}]}]
                    enqueue: {job: 1}
            """)
        #expect(
            pipeline.rules?.rules.first?.when
                == .all([
                    .field(Self.path("event.a"), .exists(true)),
                    .not(.all([.field(Self.path("event.b"), .lt(0))])),
                ]))
        #expect(pipeline.rules?.rules.first?.actions.first?.job == .literal(1))
    }

    @Test(
        "every error names the file, line, column and key",
        arguments: [
            // conditions
            (
                pipelineRuleHeader + "      - when: {field: event.x, equals: 1}\n        enqueue: {job: 1}",
                "processor.yml:6:32: channels.c.rules[0].when: unknown operator 'equals' (expected one of: eq, ne, in, gt, gte, lt, lte, exists)"
            ),
            (
                pipelineRuleHeader + "      - when: {field: event.x, in: 1}\n        enqueue: {job: 1}",
                "processor.yml:6:36: channels.c.rules[0].when.in: 'in' takes a list, found a scalar ('1')"
            ),
            (
                pipelineRuleHeader + "      - when: {field: event.x, in: {a: 1}}\n        enqueue: {job: 1}",
                "processor.yml:6:36: channels.c.rules[0].when.in: 'in' takes a list, found a mapping"
            ),
            (
                pipelineRuleHeader + "      - when: {field: event.x}\n        enqueue: {job: 1}",
                "processor.yml:6:15: channels.c.rules[0].when: the test of event.x has no operator (expected one of: eq, ne, in, gt, gte, lt, lte, exists)"
            ),
            (
                pipelineRuleHeader + "      - when: {field: event.x, eq: 1, gt: 0}\n        enqueue: {job: 1}",
                "processor.yml:6:39: channels.c.rules[0].when: one operator per field test (found eq and gt): combine tests with all: […]"
            ),
            (
                pipelineRuleHeader + "      - when: {field: event.x, gt: true}\n        enqueue: {job: 1}",
                "processor.yml:6:36: channels.c.rules[0].when.gt: 'gt' compares numbers or strings, found a boolean"
            ),
            (
                pipelineRuleHeader + "      - when: {field: event.x, lte: [1]}\n        enqueue: {job: 1}",
                "processor.yml:6:37: channels.c.rules[0].when.lte: 'lte' compares numbers or strings, found an array"
            ),
            (
                pipelineRuleHeader + "      - when: {field: event.x, exists: maybe}\n        enqueue: {job: 1}",
                "processor.yml:6:40: channels.c.rules[0].when.exists: expected true or false, found 'maybe'"
            ),
            (
                pipelineRuleHeader + "      - when: {every: [{field: event.x, eq: 1}]}\n        enqueue: {job: 1}",
                "processor.yml:6:16: channels.c.rules[0].when: unknown condition 'every' (a condition is {all: […]}, {any: […]}, {not: …}, {field: …, <operator>: …} or a list)"
            ),
            (
                pipelineRuleHeader + "      - when: {eq: 1}\n        enqueue: {job: 1}",
                "processor.yml:6:16: channels.c.rules[0].when: unknown condition 'eq' (a condition is {all: […]}, {any: […]}, {not: …}, {field: …, <operator>: …} or a list); an operator needs a 'field'"
            ),
            (
                pipelineRuleHeader + "      - when: {all: [], any: []}\n        enqueue: {job: 1}",
                "processor.yml:6:25: channels.c.rules[0].when: a condition has one of all, any or not (found all and any): nest them to combine"
            ),
            (
                pipelineRuleHeader + "      - when: {any: []}\n        enqueue: {job: 1}",
                "processor.yml:6:21: channels.c.rules[0].when.any: 'any' needs at least one condition"
            ),
            (
                pipelineRuleHeader + "      - when: {all: x}\n        enqueue: {job: 1}",
                "processor.yml:6:21: channels.c.rules[0].when.all: expected a list, found a scalar"
            ),
            (
                pipelineRuleHeader + "      - when: []\n        enqueue: {job: 1}",
                "processor.yml:6:15: channels.c.rules[0].when: an empty list of conditions"
            ),
            (
                pipelineRuleHeader + "      - when: {}\n        enqueue: {job: 1}",
                "processor.yml:6:15: channels.c.rules[0].when: an empty condition"
            ),
            (
                pipelineRuleHeader + "      - when: event.x == 1\n        enqueue: {job: 1}",
                "processor.yml:6:15: channels.c.rules[0].when: expected a condition, found a scalar ('event.x == 1')"
            ),
            (
                pipelineRuleHeader + "      - when: {all: [{field: evnt.x, eq: 1}]}\n        enqueue: {job: 1}",
                "processor.yml:6:30: channels.c.rules[0].when.all[0].field: a field path starts with event, row or meta, found 'evnt.x'"
            ),
            (
                pipelineRuleHeader + "      - when: {field: meta.time, eq: 1}\n        enqueue: {job: 1}",
                "processor.yml:6:23: channels.c.rules[0].when.field: meta has the fields channel, seq, created_at, database; 'meta.time' is not one of them"
            ),
            (
                pipelineRuleHeader + "      - when: {field: row.chain_id, eq: 1}\n        enqueue: {job: 1}",
                "processor.yml:6:23: channels.c.rules[0].when.field: row.chain_id reads the fetched row: add fetch: {table: …, key: …, from: event.…}"
            ),
            (
                "    queue: q\n    rules: [{when: {field: event.x, eq: 1}, enqueue: {job: 1}}]",
                "processor.yml:4:28: channels.c.rules[0].when.field: event.x reads a field of the payload: set decode: json or csv"
            ),
            (
                "    queue: q\n    decode: text\n    rules: [{when: {field: event.x, eq: 1}, enqueue: {job: 1}}]",
                "processor.yml:5:28: channels.c.rules[0].when.field: event.x reads a field of the payload: set decode: json or csv"
            ),
            (
                "    queue: q\n    decode: csv\n    csv_columns: [op, table]\n    rules: [{when: {field: event.tabel, eq: 1}, enqueue: {job: 1}}]",
                "processor.yml:6:28: channels.c.rules[0].when.field: event.tabel: 'tabel' is not one of the CSV columns (op, table)"
            ),
            (
                "    queue: q\n    decode: csv\n    csv_columns: [op, table]\n    rules: [{when: {field: event.table.x, eq: 1}, enqueue: {job: 1}}]",
                "processor.yml:6:28: channels.c.rules[0].when.field: event.table.x: a CSV field is text, it has no fields of its own"
            ),
            // rules and actions
            (
                pipelineRuleHeader + "      - name: a\n        enqueue: {job: 1}\n      - name: a\n        enqueue: {job: 2}",
                "processor.yml:8:15: channels.c.rules[1].name: the rule name 'a' is already used by rules[0]"
            ),
            (
                pipelineRuleHeader + "      - name: a",
                "processor.yml:6:9: channels.c.rules[0]: 'enqueue' is missing: what the rule enqueues, {queue: …, job: {…}} (or a list of them)"
            ),
            (
                pipelineRuleHeader + "      - enqueue: []",
                "processor.yml:6:18: channels.c.rules[0].enqueue: 'enqueue' is empty: give at least one {queue: …, job: {…}}"
            ),
            (
                pipelineRuleHeader + "      - enqueue: {queue: x}",
                "processor.yml:6:18: channels.c.rules[0].enqueue: 'job' is missing: the job to enqueue, e.g. {type: process, id: \"{{event.id}}\"}"
            ),
            (
                pipelineRuleHeader + "      - enqueue: {job: 1, queue: ''}",
                "processor.yml:6:34: channels.c.rules[0].enqueue.queue: the queue name is empty"
            ),
            (
                pipelineRuleHeader + "      - enqueue: {job: 1, sink: kafka}",
                "processor.yml:6:33: channels.c.rules[0].enqueue.sink: unknown sink 'kafka' (expected list or stream)"
            ),
            (
                pipelineRuleHeader + "      - enqueue: {job: 1, priority: 1}",
                "processor.yml:6:27: channels.c.rules[0].enqueue: unknown key 'priority' (expected one of: job, queue, sink)"
            ),
            (
                pipelineRuleHeader + "      - enqueue: {job: {id: \"{{event.id\"}}",
                "processor.yml:6:29: channels.c.rules[0].enqueue.job.id: '{{' is not closed with '}}' in \"{{event.id\""
            ),
            (
                pipelineRuleHeader + "      - enqueue:\n          job: [1, {deep: \"{{row.x}}\"}]",
                "processor.yml:7:27: channels.c.rules[0].enqueue.job[1].deep: row.x reads the fetched row: add fetch: {table: …, key: …, from: event.…}"
            ),
            (
                pipelineRuleHeader + "      - enqueue: {job: \"{{meta.when}}\"}",
                "processor.yml:6:24: channels.c.rules[0].enqueue.job: meta has the fields channel, seq, created_at, database; 'meta.when' is not one of them, in the placeholder {{meta.when}}"
            ),
            (
                "    decode: json\n    rules: [{enqueue: {job: 1}}]",
                "processor.yml:4:23: channels.c.rules[0].enqueue: 'queue' is missing, and the channel has no 'queue' to default to"
            ),
            (
                "    queue: q\n    rules: []",
                "processor.yml:4:12: channels.c.rules: the list of rules is empty: give at least one rule, or leave 'rules' out"
            ),
            (
                "    queue: q\n    rules: {a: 1}",
                "processor.yml:4:12: channels.c.rules: expected a list, found a mapping"
            ),
            (
                pipelineRuleHeader + "      - enqueue: {job: 1}\n    rule_mode: every",
                "processor.yml:7:16: channels.c.rule_mode: unknown rule_mode 'every' (expected first_match or all_matches)"
            ),
            (
                pipelineRuleHeader + "      - enqueue: {job: 1}\n    unmatched: keep",
                "processor.yml:7:16: channels.c.unmatched: unknown unmatched 'keep' (expected drop or default_queue)"
            ),
            (
                "    decode: json\n    rules: [{enqueue: {queue: r, job: 1}}]\n    unmatched: default_queue",
                "processor.yml:5:16: channels.c.unmatched: unmatched: default_queue sends unmatched events to the channel's 'queue', and there is none"
            ),
            (
                "    queue: q\n    rule_mode: all_matches",
                "processor.yml:4:16: channels.c.rule_mode: 'rule_mode' is only read with 'rules'"
            ),
            (
                "    queue: q\n    unmatched: drop",
                "processor.yml:4:16: channels.c.unmatched: 'unmatched' is only read with 'rules'"
            ),
            // the channel
            (
                "    decode: json",
                "processor.yml:3:5: channels.c: 'queue' is missing: the Redis list for this channel's events (or give 'rules' whose actions name their queues)"
            ),
            (
                "    queue: ''",
                "processor.yml:3:12: channels.c.queue: the queue name is empty"
            ),
            (
                "    queue: q\n    decoder: json",
                "processor.yml:4:5: channels.c: unknown key 'decoder' (expected one of: attempt_backoff, batch, csv_columns, decode, fetch, max_attempts, queue, rule_mode, rules, sink, stream, unmatched)"
            ),
            (
                "    queue: q\n    decode: xml",
                "processor.yml:4:13: channels.c.decode: unknown decode 'xml' (expected json, csv or text)"
            ),
            (
                "    queue: q\n    decode: csv",
                "processor.yml:4:13: channels.c.decode: 'csv_columns' is missing: decode: csv needs the record's column names, e.g. [op, schema, table, key, value]"
            ),
            (
                "    queue: q\n    decode: json\n    csv_columns: [a]",
                "processor.yml:5:18: channels.c.csv_columns: 'csv_columns' is only read with decode: csv"
            ),
            (
                "    queue: q\n    decode: csv\n    csv_columns: []",
                "processor.yml:5:18: channels.c.csv_columns: 'csv_columns' is empty: name the record's columns"
            ),
            (
                "    queue: q\n    decode: csv\n    csv_columns: [a, b, a]",
                "processor.yml:5:25: channels.c.csv_columns[2]: the column 'a' is named twice"
            ),
            (
                "    queue: q\n    decode: csv\n    csv_columns: a",
                "processor.yml:5:18: channels.c.csv_columns: expected a list, found a scalar"
            ),
            (
                "    queue: q\n    sink: kafka",
                "processor.yml:4:11: channels.c.sink: unknown sink 'kafka' (expected list or stream)"
            ),
            (
                "    queue: q\n    stream: {maxlen: 10}",
                "processor.yml:4:13: channels.c.stream: 'stream' is only read when events go to a stream (sink: stream)"
            ),
            (
                "    queue: q\n    sink: stream\n    stream: {maxlen: 0}",
                "processor.yml:5:22: channels.c.stream.maxlen: 0 is out of range (1…1000000000)"
            ),
            (
                "    queue: q\n    sink: stream\n    stream: {max_len: 10}",
                "processor.yml:5:14: channels.c.stream: unknown key 'max_len' (expected one of: maxlen)"
            ),
            // fetch
            (
                "    queue: q\n    decode: json\n    fetch: {table: events, key: id, from: row.id}",
                "processor.yml:5:43: channels.c.fetch.from: 'from' must be a field of the event (event.…), found 'row.id'"
            ),
            (
                "    queue: q\n    decode: json\n    fetch: {table: events, key: id, from: event}",
                "processor.yml:5:43: channels.c.fetch.from: 'from' must be a field of the event (event.…), found 'event'"
            ),
            (
                "    queue: q\n    decode: json\n    fetch: {table: events, key: id, from: id}",
                "processor.yml:5:43: channels.c.fetch.from: a field path starts with event, row or meta, found 'id'"
            ),
            (
                "    queue: q\n    fetch: {table: events, key: id, from: event.id}",
                "processor.yml:4:43: channels.c.fetch.from: event.id reads a field of the payload: set decode: json or csv"
            ),
            (
                "    queue: q\n    decode: json\n    fetch: {key: id, from: event.id}",
                "processor.yml:5:12: channels.c.fetch: 'table' is missing: the table to read the row from (name or schema.name)"
            ),
            (
                "    queue: q\n    decode: json\n    fetch: {table: events, from: event.id}",
                "processor.yml:5:12: channels.c.fetch: 'key' is missing: the column that identifies the row"
            ),
            (
                "    queue: q\n    decode: json\n    fetch: {table: events, key: id}",
                "processor.yml:5:12: channels.c.fetch: 'from' is missing: the event's field that holds the key (event.…)"
            ),
            (
                "    queue: q\n    decode: json\n    fetch: {table: a.b.c, key: id, from: event.id}",
                "processor.yml:5:20: channels.c.fetch.table: 'a.b.c' is not a table name (name or schema.name, each of 1 to 63 bytes)"
            ),
            (
                "    queue: q\n    decode: json\n    fetch: {table: events, key: '', from: event.id}",
                "processor.yml:5:33: channels.c.fetch.key: a column name must have 1 to 63 bytes"
            ),
            // batch
            (
                "    queue: q\n    batch: {max_items: 0}",
                "processor.yml:4:24: channels.c.batch.max_items: 0 is out of range (1…100000)"
            ),
            (
                "    queue: q\n    batch: {max_seconds: 0}",
                "processor.yml:4:26: channels.c.batch.max_seconds: expected a positive number of seconds, found '0'"
            ),
            (
                "    queue: q\n    batch: {max_seconds: 100000}",
                "processor.yml:4:26: channels.c.batch.max_seconds: 100000.0 seconds is more than a day"
            ),
            (
                "    queue: q\n    decode: json\n    batch: {group_by: [event.table, tabel]}",
                "processor.yml:5:37: channels.c.batch.group_by[1]: a field path starts with event, row or meta, found 'tabel'"
            ),
            (
                "    queue: q\n    batch: {group_by: [event.table]}",
                "processor.yml:4:24: channels.c.batch.group_by[0]: event.table reads a field of the payload: set decode: json or csv"
            ),
            (
                "    queue: q\n    batch: {size: 10}",
                "processor.yml:4:13: channels.c.batch: unknown key 'size' (expected one of: group_by, max_items, max_seconds)"
            ),
        ])
    func errors(body: String, expected: String) {
        let error = #expect(throws: ProcessorError.self) { try Self.channel(body) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.hasPrefix(expected) == true, "\(error?.message ?? "no error")")
    }
}
