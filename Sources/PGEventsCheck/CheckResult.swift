/// One check: what was checked, on what, and what was found.
public struct CheckResult: Sendable, Hashable, Codable {
    /// What it is grouped under in the report: a table (`public.events`), or `migrations`, `catalog`, `replication`.
    public var group: String
    /// A short name of the check, e.g. `INSERT notifies on new_event`, `payload fits in 8000 bytes`.
    public var name: String
    public var status: CheckStatus
    /// What was found, in a sentence (for a failure: what is wrong and where).
    public var message: String
    /// The payload concerned, cut to a few hundred bytes.
    public var payload: String?
    /// The row (or the edge value) that caused it, e.g. `content = 'x' × 7,913 bytes`.
    public var row: String?
    /// The fix to consider.
    public var fix: String?
    /// The PostgreSQL version it ran on, e.g. `15.18`.
    public var postgresVersion: String?

    public init(
        group: String, name: String, status: CheckStatus, message: String, payload: String? = nil, row: String? = nil, fix: String? = nil,
        postgresVersion: String? = nil
    ) {
        self.group = group
        self.name = name
        self.status = status
        self.message = message
        self.payload = payload
        self.row = row
        self.fix = fix
        self.postgresVersion = postgresVersion
    }
}

/// The outcome of one check.
public enum CheckStatus: String, Sendable, Hashable, Codable {
    case passed, failed
    /// Not run, with the reason in the message (e.g. an operation the table has no trigger for).
    case skipped
    /// A fact worth knowing that is not a defect by itself (e.g. identical payloads that PostgreSQL collapses in
    /// one transaction, from a wake-up trigger): reported, and the check still passes.
    case warning
}
