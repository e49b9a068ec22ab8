// The data of `pgevents check`: the spec (what the user says their triggers send), and the report (what
// each check found). Parsing, judging and rendering live in their own files.

public import PGEventsHarness

/// A row operation a trigger can fire on.
public enum TableOperation: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case insert, update, delete

    /// The SQL keyword: `INSERT`, `UPDATE`, `DELETE`.
    public var keyword: String { rawValue.uppercased() }

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// How a channel's payloads are written.
public enum PayloadFormat: String, Sendable, Hashable, Codable {
    case json, csv, text
}

/// The declared type of a JSON field: `string`, `integer`, `number`, `boolean`, `object`, `array`; a `?` suffix
/// allows null.
public struct JSONFieldType: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case string, integer, number, boolean, object, array
    }

    public var kind: Kind
    public var nullable: Bool

    public init(kind: Kind, nullable: Bool = false) {
        self.kind = kind
        self.nullable = nullable
    }

    /// Parses `integer`, `string?`, …; nil for anything else.
    public init?(parsing text: String) {
        let nullable = text.hasSuffix("?")
        guard let kind = Kind(rawValue: nullable ? String(text.dropLast()) : text) else { return nil }
        self.init(kind: kind, nullable: nullable)
    }

    public var description: String { kind.rawValue + (nullable ? "?" : "") }
}

/// What the spec says about one channel's payloads.
public struct ChannelSpec: Sendable, Hashable {
    public var name: String
    public var format: PayloadFormat
    /// JSON: the fields every payload must have, in the order written in the spec.
    public var fields: [(name: String, type: JSONFieldType)]
    /// CSV: the column names (their count is what is checked).
    public var columns: [String]?
    /// No payload may be longer than this many bytes; nil: the server's limit (7,999 bytes).
    public var maxBytes: Int?
    /// Words that must never appear as a JSON key or in a value (case-insensitive).
    public var forbid: [String]

    public init(name: String, format: PayloadFormat, fields: [(name: String, type: JSONFieldType)] = [], columns: [String]? = nil, maxBytes: Int? = nil, forbid: [String] = []) {
        self.name = name
        self.format = format
        self.fields = fields
        self.columns = columns
        self.maxBytes = maxBytes
        self.forbid = forbid
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.format == b.format && a.fields.map(\.name) == b.fields.map(\.name)
            && a.fields.map(\.type) == b.fields.map(\.type) && a.columns == b.columns && a.maxBytes == b.maxBytes && a.forbid == b.forbid
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(format)
    }
}

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

    public init(table: QualifiedName, notify: [TableOperation: String], trigger: String? = nil, values: [String: String] = [:], oncePer: NotificationMultiplicity = .row) {
        self.table = table
        self.notify = notify
        self.trigger = trigger
        self.oncePer = oncePer
        self.values = values
    }
}

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

    public init(file: String? = nil, migrations: String, postgres: [Int] = [], channels: [String: ChannelSpec] = [:], tables: [QualifiedName: TableSpec] = [:], replication: ReplicationSpec? = nil) {
        self.file = file
        self.migrations = migrations
        self.postgres = postgres
        self.channels = channels
        self.tables = tables
        self.replication = replication
    }
}

// MARK: The report

/// The outcome of one check.
public enum CheckStatus: String, Sendable, Hashable, Codable {
    case passed, failed
    /// Not run, with the reason in the message (e.g. an operation the table has no trigger for).
    case skipped
    /// A fact worth knowing that is not a defect by itself (e.g. identical payloads that PostgreSQL collapses in
    /// one transaction, from a wake-up trigger): reported, and the check still passes.
    case warning
}

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

    public init(group: String, name: String, status: CheckStatus, message: String, payload: String? = nil, row: String? = nil, fix: String? = nil, postgresVersion: String? = nil) {
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

/// What a trigger was seen to send: for the report's "what each trigger really sends".
public struct ObservedChannel: Sendable, Hashable, Codable {
    public var table: String
    public var trigger: String
    public var operation: String
    public var channel: String
    public var samplePayload: String

    public init(table: String, trigger: String, operation: String, channel: String, samplePayload: String) {
        self.table = table
        self.trigger = trigger
        self.operation = operation
        self.channel = channel
        self.samplePayload = samplePayload
    }
}

/// Everything `check` found.
public struct CheckReport: Sendable, Hashable, Codable {
    /// The spec file or migrations directory checked.
    public var source: String
    /// The PostgreSQL versions the checks ran on.
    public var postgresVersions: [String]
    public var results: [CheckResult]
    /// The triggers seen notifying, with a sample payload each.
    public var observed: [ObservedChannel]
    /// Seconds the whole check took.
    public var durationSeconds: Double
    /// Server versions the check could not run on, each with the reason (an extension the server lacks) and
    /// what to do; nil when it ran on every version. Any makes `pgevents check` exit with status 2.
    public var unavailable: [String]?
    /// The migration layout the files were read as (`flyway`, `dbmate`, `goose`, `golang-migrate`, `sqitch`,
    /// `plain`); nil for reports made before layouts were detected.
    public var layout: String?

    public init(source: String, postgresVersions: [String] = [], results: [CheckResult] = [], observed: [ObservedChannel] = [], durationSeconds: Double = 0) {
        self.source = source
        self.postgresVersions = postgresVersions
        self.results = results
        self.observed = observed
        self.durationSeconds = durationSeconds
    }

    /// True when no check failed, on every version asked for.
    public var passed: Bool { !results.contains { $0.status == .failed } && unavailable == nil }
    public var failures: [CheckResult] { results.filter { $0.status == .failed } }
    /// The warnings: facts reported that do not fail the check.
    public var warnings: [CheckResult] { results.filter { $0.status == .warning } }
}
