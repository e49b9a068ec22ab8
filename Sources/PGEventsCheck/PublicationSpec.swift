// What the spec says about a table whose changes go through a publication (the processor's `source: wal`, or any
// logical replication consumer: Debezium, Supabase Realtime, Sequin).

/// The `publication:` of a table in the spec: the publication its changes go through, and what a consumer of
/// the publication's slot must receive.
public struct PublicationSpec: Sendable, Hashable {
    /// The publication's name.
    public var name: String
    /// The operations the publication must publish for the table; the others must not be published.
    public var operations: Set<PublishedOperation>
    /// Which old values an UPDATE or DELETE must carry.
    public var old: OldValues
    /// The columns that must be published, exactly (a column list); nil: not checked.
    public var columns: [String]?
    /// The row filter the table must be published with (an SQL expression, compared as the server writes it
    /// back); nil: not checked.
    public var rowFilter: String?

    public init(
        name: String, operations: Set<PublishedOperation> = Set(PublishedOperation.allCases), old: OldValues = .key,
        columns: [String]? = nil, rowFilter: String? = nil
    ) {
        self.name = name
        self.operations = operations
        self.old = old
        self.columns = columns
        self.rowFilter = rowFilter
    }
}

/// An operation a publication publishes (`CREATE PUBLICATION … WITH (publish = '…')`).
public enum PublishedOperation: String, Sendable, Hashable, CaseIterable, Comparable {
    case insert, update, delete, truncate

    /// `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`.
    public var keyword: String { rawValue.uppercased() }

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Which old values of a row an UPDATE or DELETE must carry through the slot.
public enum OldValues: String, Sendable, Hashable, CaseIterable {
    /// The replica identity's key columns (the primary key, or the index of `REPLICA IDENTITY USING INDEX`): sent
    /// on DELETE, and on an UPDATE that changes them. Needs a replica identity: without one, a published UPDATE or
    /// DELETE fails.
    case key
    /// Every published column, on every UPDATE and DELETE: needs `REPLICA IDENTITY FULL`.
    case full
    /// No old values needed (an insert-only outbox, or a consumer that reads only the new row).
    case none
}
