// The inputs of the micro-benchmarks, shared by pgevents-micro-bench (BenchResults, compared with a baseline
// like `pgevents bench`) and PGEventsMicroBenchmarks (ordo-one/benchmark, `swift package benchmark`).
import Foundation
public import PGEvents

/// A typical event and the pipeline pieces that handle it, each checked to do what it should.
public struct MicroWorkloads: Sendable {
    /// Why the fixtures are not what the benchmarks need.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// A journal event's payload as `pgevents.journal_trigger` writes it: the table, the operation and a row of 7 columns.
    public static let jsonPayload = #"""
        {"table":"public.events","op":"INSERT","row":{"id":4217,"event_id":"e-4217","block_number":19000001,"event_type":"AgentRegistered","registry":"identity","score":0.97,"tags":["agent","new"]}}
        """#
    /// GC2's `OP,SCHEMA,TABLE,KEY,VALUE`, with a quoted value.
    public static let csvPayload = #"UPDATE,public,parcels,gid,"4217, north ""lot"" 7""#
    public static let csvColumns = ["op", "schema", "table", "key", "value"]

    /// The channel's rules: `all_matches` over 3 rules, of which the second (an `all` of `eq`, `gte`, `in`) and
    /// the third (no condition) match; each enqueues a job rendered from a template.
    public static let configurationYAML = """
        channels:
          new_event:
            decode: json
            rule_mode: all_matches
            rules:
              - name: deletes
                when: {field: event.op, eq: DELETE}
                enqueue: {queue: deleted, job: {id: "{{event.row.id}}"}}
              - name: agents
                when: {all: [{field: event.op, eq: INSERT}, {field: event.row.block_number, gte: 1000}, {field: event.row.registry, in: [identity, reputation]}]}
                enqueue: {queue: agents, job: {id: "{{event.row.id}}", event: "{{event.row.event_type}}", note: "block {{event.row.block_number}} on {{meta.channel}}", score: "{{event.row.score}}"}}
              - name: audit
                enqueue: {queue: audit, job: {table: "{{event.table}}", op: "{{event.op}}"}}
        """

    public let jsonDecoder = PayloadDecoder(format: .json)
    public let csvDecoder = PayloadDecoder(format: .csv(columns: csvColumns))
    public let rules: RuleSet
    /// The second rule's condition.
    public let condition: Condition
    /// The second rule's job.
    public let job: JobTemplate
    /// The JSON payload decoded, on channel `new_event`.
    public let context: EvaluationContext

    public init() throws {
        let configuration = try ProcessorConfiguration(yaml: Self.configurationYAML)
        guard let channel = configuration.channels.first, let rules = channel.pipeline.rules, rules.rules.count == 3,
            let condition = rules.rules[1].when, let job = rules.rules[1].actions.first?.job
        else {
            throw Invalid(description: "the configuration has not the rules it should")
        }
        let event: EventValue
        switch jsonDecoder.decode(Self.jsonPayload) {
        case .success(let value): event = value
        case .failure(let failure): throw Invalid(description: "the JSON payload does not decode: \(failure)")
        }
        self.rules = rules
        self.condition = condition
        self.job = job
        self.context = EvaluationContext(
            event: event, channel: "new_event", seq: 4217, createdAt: Date(timeIntervalSince1970: 1_790_000_000))
        guard condition.evaluate(context), rules.evaluate(context).count == 2 else {
            throw Invalid(description: "the rules do not match as they should")
        }
        guard case .success = csvDecoder.decode(Self.csvPayload) else { throw Invalid(description: "the CSV record does not decode") }
    }
}
