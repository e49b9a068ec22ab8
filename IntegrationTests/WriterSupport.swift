import PGEvents
import PGEventsRedis

/// What a write did, as the tests count it: jobs pushed, and jobs found written before.
struct Counts: Equatable {
    var pushed: Int
    var duplicates: Int
}

/// The job writer in the shape of a sink of one kind: each event becomes one job, to the destination `route` names.
struct EventWriter {
    var writer = RedisJobWriter()
    var route: @Sendable (SourceEvent) -> Job.Destination

    /// Writes each event as one job (its payload) and returns the counts; refusals are in `failures`.
    func deliver(_ events: [SourceEvent], consumer: String, on redis: RedisConnection) async throws -> Counts {
        let outcome = try await write(events, consumer: consumer, on: redis)
        return Counts(pushed: outcome.written, duplicates: outcome.duplicates)
    }

    func write(_ events: [SourceEvent], consumer: String, on redis: RedisConnection) async throws -> WriteOutcome {
        try await writer.write(events.map { Job(event: $0, destination: route($0), body: $0.payload) }, consumer: consumer, on: redis)
    }
}

/// Every event to the list `queue`.
func listWriter(_ queue: String = "jobs") -> EventWriter {
    EventWriter(route: { _ in .list(queue) })
}

/// Events to `streams[channel]`, else `defaultStream`, trimmed to about `maxLength`.
func streamWriter(streams: [String: String] = [:], defaultStream: String = "pgevents:events", maxLength: Int? = nil) -> EventWriter {
    EventWriter(route: { event in .stream(streams[event.channel] ?? defaultStream, maxLength: maxLength) })
}
