public import PGEventsPostgres

/// What happens between reading events and writing them to Redis, per channel: decoding, the row lookup, the
/// rules, the jobs they render and where each goes. ``prepare(on:)`` checks it against the database once and
/// returns the ``PreparedPipeline`` that turns chunks of events into jobs.
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

    /// True when every channel passes payloads through to a list unchanged (no decoding, rules or fetching).
    public var isPassThrough: Bool {
        channels.values.allSatisfy { $0.decoder == nil && $0.rules == nil && $0.fetch == nil && $0.sink == .list && $0.batch == nil }
    }

    /// True when some channel batches its jobs.
    public var batches: Bool {
        channels.values.contains { $0.batch != nil }
    }

    /// Checks every channel's row lookup against the catalog (see ``RowFetch``) and returns the pipeline ready to
    /// process chunks read from that connection's database. Throws a configuration error naming what is wrong.
    public func prepare(on connection: PostgresConnection) async throws -> PreparedPipeline {
        var fetches: [String: RowFetch] = [:]
        for (channel, pipeline) in channels.sorted(by: { $0.key < $1.key }) {
            guard let fetch = pipeline.fetch else { continue }
            fetches[channel] = try await RowFetch.prepare(channel: channel, spec: fetch, on: connection)
        }
        let database = try await connection.query("SELECT current_database()::text").scalar(String.self)
        return PreparedPipeline(pipeline: self, fetches: fetches, database: database)
    }

    /// The job of an event whose channel passes payloads through (no decoding, row, rules or batching), or of a
    /// channel that is not configured; nil when the channel has more to do.
    func passThroughJob(_ event: SourceEvent) -> Job? {
        guard let pipeline = channels[event.channel] else {
            return Job(event: event, destination: .list(defaultQueue), body: event.payload)
        }
        guard pipeline.decoder == nil, pipeline.rules == nil, pipeline.fetch == nil, pipeline.batch == nil, let queue = pipeline.queue
        else {
            return nil
        }
        let destination: Job.Destination = pipeline.sink == .stream ? .stream(queue, maxLength: pipeline.streamMaxLength) : .list(queue)
        return Job(event: event, destination: destination, body: event.payload)
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
