import PGEventsSystem

public import struct Foundation.Date

/// A field of what rules, templates, batch keys and row lookups read: `event.user.id`, `row.chain_id`,
/// `meta.channel`. The first component names the root:
///
/// - `event`: the decoded payload;
/// - `row`: the row fetched for the event (absent when there is no `fetch:`, or no such row);
/// - `meta`: `channel` (a string), `seq` (an integer), `created_at` (a string, ISO 8601 in UTC with
///   microseconds: `2025-01-24T10:00:00.123456Z`, so that strings compare in time order) and `database` (the name of
///   the database the event came from: the processor serves several with `databases:`).
///
/// The other components are object keys, or indices (`0`, `12`) into arrays. A root alone (`event`) is the whole value.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public enum Root: String, Sendable, Hashable, CaseIterable {
        case event, row, meta
    }

    /// What a path can be wrong about, in words: `a field path starts with event, row or meta, found 'evnt.x'`.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The fields of `meta`.
    public static let metaFields = ["channel", "seq", "created_at", "database"]

    public var root: Root
    public var components: [String]

    public init(root: Root, components: [String] = []) {
        self.root = root
        self.components = components
    }

    /// Parses a dotted path; throws when the root is not `event`, `row` or `meta`, when a component is empty, or
    /// when `meta` is followed by something other than one of ``metaFields``.
    public init(validating text: String) throws(Invalid) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, let root = Root(rawValue: first) else {
            throw Invalid(message: "a field path starts with event, row or meta, found '\(TextExcerpt.excerpt(text, limit: 80))'")
        }
        let components = Array(parts.dropFirst())
        if components.contains(where: \.isEmpty) {
            throw Invalid(message: "the field path '\(TextExcerpt.excerpt(text, limit: 80))' has an empty component")
        }
        if root == .meta, !components.isEmpty, components.count != 1 || !Self.metaFields.contains(components[0]) {
            throw Invalid(
                message:
                    "meta has the fields \(Self.metaFields.joined(separator: ", ")); '\(TextExcerpt.excerpt(text, limit: 80))' is not one of them"
            )
        }
        self.init(root: root, components: components)
    }

    /// A path from its text, or `nil` when ``init(validating:)`` would throw.
    public init?(_ text: String) {
        guard let path = try? FieldPath(validating: text) else { return nil }
        self = path
    }

    public var description: String {
        ([root.rawValue] + components).joined(separator: ".")
    }
}

/// What rules, templates and batch keys are evaluated against: one event, decoded, with its fetched row.
public struct EvaluationContext: Sendable, Hashable {
    /// The decoded payload (`.string(payload)` when the channel does not decode).
    public var event: EventValue
    /// The fetched row; `nil` when there is none (no `fetch:`, or no row with that key).
    public var row: EventValue?
    /// `{channel, seq, created_at, database}` (`database` when known).
    public var meta: EventValue

    public init(event: EventValue, row: EventValue? = nil, meta: EventValue = .object([:])) {
        self.event = event
        self.row = row
        self.meta = meta
    }

    public init(event: EventValue, row: EventValue? = nil, channel: String, seq: Int64, createdAt: Date, database: String? = nil) {
        var meta: [(String, EventValue)] = [
            ("channel", .string(channel)),
            ("seq", .integer(seq)),
            ("created_at", .string(Self.timestamp(createdAt))),
        ]
        if let database { meta.append(("database", .string(database))) }
        self.init(event: event, row: row, meta: .object(EventObject(meta)))
    }

    /// The context of a source's event, decoded as `decoded`, with its row and the name of its database.
    public init(_ journalEvent: SourceEvent, decoded: EventValue, row: EventValue? = nil, database: String? = nil) {
        self.init(
            event: decoded, row: row, channel: journalEvent.channel, seq: journalEvent.seq, createdAt: journalEvent.createdAt,
            database: database)
    }

    /// The value at `path`; `nil` when it is missing (including every `row.` path when there is no row).
    public func value(at path: FieldPath) -> EventValue? {
        switch path.root {
        case .event: event.value(at: path.components)
        case .row: row?.value(at: path.components)
        case .meta: meta.value(at: path.components)
        }
    }

    /// `2025-01-24T10:00:00.123456Z`: UTC, microseconds (PostgreSQL's precision), fixed width, so that the strings
    /// of the years 0001…9999 sort in time order.
    public static func timestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        // Limited to the years 0001…9999: a Date beyond (or NaN) is clamped, so the text keeps its fixed width.
        let clamped = seconds.isNaN ? 0 : min(max(seconds, -62_135_596_800), 253_402_300_800)
        let micros = min(Int64((clamped * 1_000_000).rounded()), 253_402_300_799_999_999)
        let (wholeSeconds, fraction) = floorDivision(micros, 1_000_000)
        let (days, secondOfDay) = floorDivision(wholeSeconds, 86_400)
        // Howard Hinnant's civil_from_days.
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return
            "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3_600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 6))Z"
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }
}

/// Something worth a log line that an evaluation met: a missing field, or a comparison of values of different
/// kinds (`event.chain_id is a string ("1"), compared (gt) with an integer (100)`), which is false, not a crash.
public struct EvaluationDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The path has no value (the rule's test is false, except `exists: false` and `ne`).
        case missingField
        /// The field and the rule's value are of kinds that do not compare (a string and a number, a boolean
        /// ordered with `gt`…).
        case typeMismatch
    }

    public var kind: Kind
    /// The rule being evaluated (set by ``RuleSet``).
    public var rule: String?
    public var path: FieldPath
    public var message: String

    public init(kind: Kind, rule: String? = nil, path: FieldPath, message: String) {
        self.kind = kind
        self.rule = rule
        self.path = path
        self.message = message
    }

    public var description: String {
        (rule.map { "rule '\($0)': " } ?? "") + message
    }
}
