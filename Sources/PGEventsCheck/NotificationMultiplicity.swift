/// How many notifications a table's declared channel owes (`once_per` in a spec's table).
public enum NotificationMultiplicity: String, Sendable, Hashable, Codable, CaseIterable {
    /// One notification per row written: each row is an event, so its payload must be unique per row
    /// (PostgreSQL delivers identical payloads of one transaction once).
    case row
    /// At least one per transaction: a wake-up signal (an empty payload, `{"queue": …}`, a statement-level
    /// trigger) whose identical payloads PostgreSQL may collapse on purpose.
    case transaction
}
