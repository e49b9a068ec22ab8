// The spec of `pgevents check`: what the user says their triggers send. Parsing is in CheckSpec+Parsing.swift.

public import PGEventsHarness

/// A `pgevents.yml`: what the migrations' triggers must send.
public struct CheckSpec: Sendable, Hashable {
    /// The spec file, when read from one.
    public var file: String?
    /// The migrations directory (absolute; relative paths in the file are resolved against its directory).
    public var migrations: String
    /// The PostgreSQL major versions to check against; empty: the newest found.
    public var postgres: [Int]
    public var channels: [String: ChannelSpec]
    public var tables: [QualifiedName: TableSpec]
    public var replication: ReplicationSpec?

    public init(
        file: String? = nil, migrations: String, postgres: [Int] = [], channels: [String: ChannelSpec] = [:],
        tables: [QualifiedName: TableSpec] = [:], replication: ReplicationSpec? = nil
    ) {
        self.file = file
        self.migrations = migrations
        self.postgres = postgres
        self.channels = channels
        self.tables = tables
        self.replication = replication
    }
}
