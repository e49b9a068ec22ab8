import PGEventsSystem

import struct Foundation.Date

/// A dead letter: an event (or one of its jobs) that could not be delivered, set aside with what went wrong and
/// what to do, so that nothing else waits for it. Written to the dead-letter list as JSON:
///
/// `{"reason", "sqlstate", "redis_error", "channel", "seq", "batch", "created_at", "dead_at", "attempts", "hint",
///   "payload", "destination", "destination_kind", "job"}` — `sqlstate` or `redis_error` when PostgreSQL or Redis
/// said why; `destination`, `destination_kind` (list or stream) and `job` when a job was refused (what
/// `pgevents dead-letters replay` pushes back), else the event's `payload` is re-emitted into the journal.
struct DeadLetter: Sendable {
    var reason: String
    var sqlState: String?
    var redisError: String?
    var attempts: Int
    var hint: String
    /// The job that was refused, if the failure was a job's.
    var refusedJob: Job?

    /// The dead letter's job for `event`, to `queue`, at the position of the job it replaces (or the event's first).
    func job(for event: SourceEvent, queue: String) -> Job {
        var fields: [(String, EventValue)] = [
            ("reason", .string(reason)),
            ("channel", .string(event.channel)),
            ("seq", .integer(event.seq)),
            ("batch", .integer(event.batch)),
            ("created_at", .string(EvaluationContext.timestamp(event.createdAt))),
            ("dead_at", .string(EvaluationContext.timestamp(Date()))),
            ("attempts", .integer(Int64(attempts))),
            ("hint", .string(hint)),
        ]
        if let sqlState { fields.append(("sqlstate", .string(sqlState))) }
        if let redisError { fields.append(("redis_error", .string(redisError))) }
        // A payload over 1 MB is kept as an excerpt and its size: a dead letter must always fit in Redis (the payload
        // may be what Redis refused), and the list is for people to read.
        let payloadLimit = 1 << 20
        if event.payload.utf8.count > payloadLimit {
            fields.append(("payload", .string(TextExcerpt.excerpt(event.payload, limit: 1_000))))
            fields.append(("payload_bytes", .integer(Int64(event.payload.utf8.count))))
        } else {
            fields.append(("payload", .string(event.payload)))
        }
        var replaced: Job.Destination.Replaced?
        if let refusedJob {
            replaced = .init(refusedJob.destination)
            let kind: String
            switch refusedJob.destination {
            case .stream: kind = "stream"
            case .batch(let batch): kind = batch.sink == .stream ? "stream" : "list"
            default: kind = "list"
            }
            fields.append(("destination", .string(refusedJob.destination.name)))
            fields.append(("destination_kind", .string(kind)))
            if refusedJob.body.utf8.count <= payloadLimit { fields.append(("job", .string(refusedJob.body))) }
        }
        return Job(
            event: event, index: refusedJob?.index ?? 0, destination: .deadLetter(queue, replacing: replaced),
            body: EventValue.object(EventObject(fields)).jsonText)
    }
}
