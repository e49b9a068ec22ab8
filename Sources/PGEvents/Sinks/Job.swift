/// One thing to write to Redis: an event as it was emitted, a rule's job, or a dead letter.
public struct Job: Sendable, Hashable {
    /// Unique among the jobs of one consumer, and the same on every replay: `<seq>` for an event delivered as
    /// it is (the first job of an event), `<seq>:<n>` for an event's further jobs, `<seq>:dead` for its dead letter.
    public var key: String
    /// The list or stream it goes to.
    public var destination: String
    /// What is written: the payload, or the job's JSON.
    public var body: String
    /// The event it comes from (a stream entry carries its seq, channel and time).
    public var event: JournalEvent

    public init(key: String, destination: String, body: String, event: JournalEvent) {
        self.key = key
        self.destination = destination
        self.body = body
        self.event = event
    }
}
