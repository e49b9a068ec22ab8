// What the spec says about a table: which operations notify, and on which channel.

public import PGEventsHarness

/// What the spec says about one table.
public struct TableSpec: Sendable, Hashable {
    public var table: QualifiedName
    /// The operations that must notify, and on which channel; the others must not notify.
    public var notify: [TableOperation: String]
    /// The exact name of the trigger that must exist and be enabled, if given.
    public var trigger: String?
    /// How many notifications the declared channels owe: one per row (the default: each row is an event), or
    /// at least one per transaction (a wake-up signal whose identical payloads PostgreSQL may collapse).
    public var oncePer: NotificationMultiplicity
    /// Column values fixed for every generated row (SQL literals as text, cast to the column's type).
    public var values: [String: String]
    /// The publication the table's changes go through, checked in the catalog and through a real slot.
    public var publication: PublicationSpec?

    public init(
        table: QualifiedName, notify: [TableOperation: String], trigger: String? = nil, values: [String: String] = [:],
        oncePer: NotificationMultiplicity = .row, publication: PublicationSpec? = nil
    ) {
        self.table = table
        self.notify = notify
        self.trigger = trigger
        self.oncePer = oncePer
        self.values = values
        self.publication = publication
    }
}

/// A row operation a trigger can fire on.
public enum TableOperation: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case insert, update, delete

    /// The SQL keyword: `INSERT`, `UPDATE`, `DELETE`.
    public var keyword: String { rawValue.uppercased() }

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
