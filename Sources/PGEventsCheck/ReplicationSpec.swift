public import PGEventsHarness

/// The optional `replication:` section: checked on a publisher/subscriber pair.
public struct ReplicationSpec: Sendable, Hashable {
    public var publication: String
    public var tables: [QualifiedName]
    /// The subscriber's migrations directory (absolute).
    public var subscriberMigrations: String

    public init(publication: String, tables: [QualifiedName], subscriberMigrations: String) {
        self.publication = publication
        self.tables = tables
        self.subscriberMigrations = subscriberMigrations
    }
}
