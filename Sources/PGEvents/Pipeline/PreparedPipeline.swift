public import Logging
import Metrics
public import PGEventsPostgres

/// An ``EventPipeline`` checked against its database, with its row lookups prepared: it turns a chunk of events into
/// the jobs to write, in order, and sets aside the events that cannot become jobs (``EventFailure``).
public struct PreparedPipeline: Sendable {
    public let pipeline: EventPipeline
    /// The row lookup of each channel that fetches.
    public let fetches: [String: RowFetch]
    /// The database the events come from (`meta.database`); nil when not known.
    public var database: String?

    public init(pipeline: EventPipeline, fetches: [String: RowFetch], database: String? = nil) {
        self.pipeline = pipeline
        self.fetches = fetches
        self.database = database
    }

    /// Decodes each event as its channel says, looks up the rows (one query per channel for the chunk), evaluates
    /// the rules and renders their jobs. Jobs come out in event order, and each event's jobs in rule order, which
    /// is the order the writer keeps per destination. An event that cannot be decoded, or whose key is not a value
    /// of the key column's type, is a failure of that event alone. Throws only for what is not the events' fault
    /// (a lost connection, a missing privilege).
    public func process(_ events: [SourceEvent], on connection: PostgresConnection, logger: Logger) async throws -> PipelineOutput {
        var output = PipelineOutput()
        output.jobs.reserveCapacity(events.count)
        var contexts: [(index: Int, context: EvaluationContext)] = []
        var failed = Set<Int>()
        var failures: [(index: Int, failure: EventFailure)] = []
        for (index, event) in events.enumerated() {
            if let job = pipeline.passThroughJob(event) {
                output.jobs.append(job)
                continue
            }
            // passThroughJob answers for every channel that is not configured.
            guard let channel = pipeline.channels[event.channel] else { continue }
            switch channel.decode(event.payload) {
            case .success(let value):
                contexts.append((index, EvaluationContext(event, decoded: value, database: database)))
            case .failure(let failure):
                Counter(label: "pgevents_parse_errors_total", dimensions: [("channel", event.channel)]).increment()
                failed.insert(index)
                failures.append(
                    (
                        index,
                        EventFailure(
                            stage: "decode", event: event, reason: "the payload cannot be decoded: \(failure.reason)", sqlState: nil,
                            hint: "fix what emits on channel \(event.channel); replay re-emits the payload (pgevents dead-letters replay)")
                    ))
            }
        }
        guard !contexts.isEmpty else {
            output.failures = failures.map(\.failure)
            return output
        }
        // Rows: one lookup per channel for all its events of this chunk.
        var rows: [Int: EventValue] = [:]
        for (channel, fetch) in fetches.sorted(by: { $0.key < $1.key }) {
            var keys: [String] = []
            var owners: [Int] = []
            for (index, context) in contexts where events[index].channel == channel {
                guard let key = fetch.spec.parameter(for: context) else { continue }
                keys.append(key)
                owners.append(index)
            }
            guard !keys.isEmpty else { continue }
            for (owner, outcome) in zip(owners, try await fetch.look(up: keys, on: connection)) {
                let column = "\(fetch.spec.schema).\(fetch.spec.table).\(fetch.spec.keyColumn)"
                let hint =
                    "the key in \(fetch.spec.valuePath) must be a value of \(column) (\(fetch.keyType)): fix the payload or the trigger, then replay (pgevents dead-letters replay)"
                switch outcome {
                case .row(let row):
                    if let row { rows[owner] = row }
                case .notExact(let message):
                    failed.insert(owner)
                    failures.append((owner, EventFailure(stage: "fetch", event: events[owner], reason: message, sqlState: nil, hint: hint)))
                case .failed(let error):
                    failed.insert(owner)
                    failures.append(
                        (
                            owner,
                            EventFailure(
                                stage: "fetch", event: events[owner],
                                reason: "the fetch key is not a value of \(fetch.keyType) (\(column)): \(error.message)",
                                sqlState: error.sqlState, hint: hint)
                        ))
                }
            }
        }
        // Rules and jobs, in event order (pass-through jobs are already in place).
        var ruled: [(index: Int, jobs: [Job])] = []
        for (index, context) in contexts where !failed.contains(index) {
            let event = events[index]
            guard let channel = pipeline.channels[event.channel] else { continue }
            var context = context
            context.row = rows[index]
            let actions = channel.route(context, payload: event.payload) { diagnostic in
                logger.debug(
                    "rule evaluation",
                    metadata: ["seq": "\(event.seq)", "channel": "\(event.channel)", "diagnostic": "\(diagnostic.message)"])
            }
            if actions.isEmpty {
                output.dropped += 1
                continue
            }
            let group = channel.batch.map { $0.key(for: context) } ?? ""
            var jobs: [Job] = []
            for (number, action) in actions.enumerated() {
                if let batch = channel.batch {
                    // A batch's items are JSON values: a rule's job is; an event passed on unmatched goes as decoded,
                    // with its row when the channel fetches one (`{"event": …, "row": …}`).
                    let item: String
                    if action.rule != nil {
                        item = action.body
                    } else if channel.fetch != nil {
                        item = EventValue.object(["event": context.event, "row": context.row ?? .null]).jsonText
                    } else {
                        item = action.job.jsonText
                    }
                    let destination = BatchDestination(
                        queue: action.queue, sink: action.sink, streamMaxLength: channel.streamMaxLength, channel: event.channel,
                        group: group, spec: batch)
                    jobs.append(Job(event: event, index: number, destination: .batch(destination), body: item))
                } else {
                    let destination: Job.Destination =
                        action.sink == .stream
                        ? .stream(action.queue, maxLength: channel.streamMaxLength) : .list(action.queue)
                    jobs.append(Job(event: event, index: number, destination: destination, body: action.body))
                }
            }
            ruled.append((index, jobs))
        }
        if output.jobs.isEmpty {
            for (_, jobs) in ruled { output.jobs += jobs }
        } else {
            // Mixed with pass-through jobs: put every job back in event order.
            var byEvent: [Int: [Job]] = [:]
            for (index, jobs) in ruled { byEvent[index] = jobs }
            var merged: [Job] = []
            merged.reserveCapacity(output.jobs.count + ruled.count)
            var passed = output.jobs.makeIterator()
            var nextPassed = passed.next()
            for (index, event) in events.enumerated() {
                if let jobs = byEvent[index] {
                    merged += jobs
                } else if let job = nextPassed, job.event == event {
                    merged.append(job)
                    nextPassed = passed.next()
                }
            }
            output.jobs = merged
        }
        output.failures = failures.sorted { $0.index < $1.index }.map(\.failure)
        return output
    }
}

/// What a chunk of events became.
public struct PipelineOutput: Sendable {
    /// The jobs to write, in event order.
    public var jobs: [Job] = []
    /// Events that cannot become jobs, in event order: they go to the dead-letter list.
    public var failures: [EventFailure] = []
    /// Events no rule matched, on channels that drop such events.
    public var dropped = 0
}

/// An event that cannot be delivered, and why.
public struct EventFailure: Sendable, Equatable {
    /// Where it failed: `decode` (the payload) or `fetch` (its key and the key column).
    public var stage: String
    public var event: SourceEvent
    public var reason: String
    /// PostgreSQL's SQLSTATE when it said why (`22007` for a key that is not a date).
    public var sqlState: String?
    /// What to do about it.
    public var hint: String
}
