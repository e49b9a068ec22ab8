/// How a migrations directory is laid out: which tool's conventions say which files run, in which order, and
/// which part of each file is the forward migration.
///
/// `detect` recognises the layout from the directory's file names (and, for goose and dbmate, the annotations
/// inside the files); `--layout NAME` overrides it.
public enum MigrationLayout: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// `*.sql` files in natural order (`2_x.sql` before `10_x.sql`), each file run whole.
    case plain
    /// Flyway: `V<version>__<description>.sql` in version order (`V2` before `V10`, `V1.1` between `V1` and
    /// `V2`), then `R__<description>.sql` repeatables by description; `U…` undo files are not run. SQL callbacks:
    /// `beforeMigrate*.sql` first, `afterMigrate*.sql` (and `afterMigrateApplied`) last; the per-script and error ones are not run.
    case flyway
    /// dbmate: `<version>_<name>.sql` with `-- migrate:up` and `-- migrate:down` sections; only the up section runs.
    case dbmate
    /// goose: `<version>_<name>.sql` with `-- +goose Up` / `-- +goose Down` sections and
    /// `-- +goose StatementBegin` / `StatementEnd` blocks; only the up section runs.
    case goose
    /// golang-migrate (and sqlx's reversible migrations): `<version>_<name>.up.sql`; `.down.sql` files never run.
    case golangMigrate = "golang-migrate"
    /// Sqitch: the changes listed in `sqitch.plan`, each `deploy/<change>.sql`, in plan order.
    case sqitch

    /// The name `--layout` takes and the report shows: `golang-migrate`, `flyway`, …
    public var description: String { rawValue }

    /// The names `--layout` accepts, for messages.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The layout of a directory holding `names` (file names, not paths); `contents` reads a file's text by
    /// name (nil when unreadable). Sqitch when there is a `sqitch.plan` or `sqitch.conf`; Flyway when a file is named `V…__…sql`
    /// or `R__…sql`; golang-migrate when one ends in `.up.sql`; goose or dbmate when a `.sql` file has their
    /// annotation on a line of its own; plain otherwise.
    public static func detect(names: [String], contents: (String) -> String?) -> MigrationLayout {
        if names.contains("sqitch.plan") || names.contains("sqitch.conf") { return .sqitch }
        let sql = names.filter { $0.hasSuffix(".sql") }
        if sql.contains(where: { FlywayName($0) != nil }) { return .flyway }
        if sql.contains(where: { $0.hasSuffix(".up.sql") }) { return .golangMigrate }
        var dbmate = false
        for name in sql.sorted() {
            guard let text = contents(name) else { continue }
            for line in text.split(whereSeparator: \.isNewline) {
                let annotation = MigrationSections.annotation(line)
                if annotation?.hasPrefix("+goose ") == true { return .goose }
                if annotation?.hasPrefix("migrate:up") == true { dbmate = true }
            }
        }
        return dbmate ? .dbmate : .plain
    }

    /// The files of `names` this layout runs, in the order it runs them (sqitch is ordered by its plan, not
    /// here: this returns nothing for it). Throws `HarnessError` (`.invalidInput`) for two files with the same
    /// version.
    public func order(_ names: [String]) throws -> [String] {
        switch self {
        case .plain:
            return names.filter { $0.hasSuffix(".sql") }.sorted(by: NaturalOrder.less)
        case .flyway:
            let parsed = names.compactMap { name in FlywayName(name).map { (name, $0) } }
            let versioned = parsed.filter { $0.1.version != nil }
            try Self.refuseDuplicates(versioned.map { ($0.0, $0.1.version!.map(String.init).joined(separator: ".")) }, tool: "Flyway")
            let repeatable = parsed.filter { $0.1.version == nil }
            // SQL callbacks of the whole run: beforeMigrate scripts first, afterMigrate (and afterMigrateApplied) last.
            func callbacks(_ event: Set<String>) -> [String] {  // one event's scripts, by description (`afterMigrate.sql` first)
                names.filter { name in FlywayName.callbackEvent(name).map(event.contains) ?? false }.sorted(by: NaturalOrder.less)
            }
            return callbacks(["beforeMigrate"])
                + versioned.sorted { FlywayName.less($0.1.version!, $1.1.version!) }.map(\.0)
                + repeatable.sorted { NaturalOrder.less($0.1.description, $1.1.description) }.map(\.0)
                + callbacks(["afterMigrate"]) + callbacks(["afterMigrateApplied"])
        case .golangMigrate:
            let up = names.filter { $0.hasSuffix(".up.sql") && Self.leadingVersion($0) != nil }
            try Self.refuseDuplicates(up.map { ($0, String(Self.leadingVersion($0)!)) }, tool: "golang-migrate")
            return up.sorted(by: Self.byLeadingVersion)
        case .goose, .dbmate:
            // Both need the version prefix; a .sql file without one is not a migration to them.
            let versioned = names.filter { $0.hasSuffix(".sql") && Self.leadingVersion($0) != nil }
            try Self.refuseDuplicates(versioned.map { ($0, String(Self.leadingVersion($0)!)) }, tool: rawValue)
            return versioned.sorted(by: Self.byLeadingVersion)
        case .sqitch:
            return []
        }
    }

    /// The changes of a `sqitch.plan`, in order: the first word of each line that is not a pragma (`%…`), a tag
    /// (`@…`), a comment or blank. A reworked change (`name [name@tag]`) is deployed from its latest script,
    /// `deploy/name.sql`, once.
    public static func sqitchChanges(plan: String) -> [(name: String, line: Int)] {
        var changes: [(name: String, line: Int)] = []
        for (index, raw) in plan.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmed()
            guard let first = line.first, !"%@#".contains(first) else { continue }
            let name = String(line.prefix { !$0.isWhitespace && $0 != "[" })
            if !name.isEmpty, !changes.contains(where: { $0.name == name }) { changes.append((name, index + 1)) }
        }
        return changes
    }

    // MARK: Versions

    /// The number a file name starts with (`20240101120000_x.sql` → 20240101120000); nil without one.
    static func leadingVersion(_ name: String) -> UInt64? {
        let digits = name.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, name.dropFirst(digits.count).first == "_" else { return nil }
        return UInt64(digits)
    }

    private static func byLeadingVersion(_ a: String, _ b: String) -> Bool {
        let (x, y) = (leadingVersion(a) ?? 0, leadingVersion(b) ?? 0)
        return x != y ? x < y : a < b
    }

    private static func refuseDuplicates(_ versions: [(name: String, version: String)], tool: String) throws {
        var seen: [String: String] = [:]
        for (name, version) in versions.sorted(by: { $0.name < $1.name }) {
            if let other = seen[version] {
                throw HarnessError(
                    code: .invalidInput, message: "\(other) and \(name) have the same version \(version); \(tool) refuses to run either",
                    hint: "renumber one of them")
            }
            seen[version] = name
        }
    }
}

/// A Flyway script name: `V1__init.sql`, `V1.1__x.sql`, `V2_1__x.sql` (version 2.1), `R__views.sql`.
struct FlywayName: Sendable, Hashable {
    /// The version's numeric parts; nil for a repeatable (`R__`).
    var version: [UInt64]?
    var description: String

    init?(_ name: String) {
        guard name.hasSuffix(".sql"), let separator = name.range(of: "__") else { return nil }
        let prefix = name[..<separator.lowerBound]
        description = String(name[separator.upperBound...].dropLast(4))
        if prefix == "R" {
            version = nil
            return
        }
        guard prefix.first == "V" else { return nil }
        let parts = prefix.dropFirst().split(omittingEmptySubsequences: false, whereSeparator: { $0 == "." || $0 == "_" })
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else { return nil }
        let numbers = parts.compactMap { UInt64($0) }
        guard numbers.count == parts.count else { return nil }
        // 1.0 is 1, as Flyway compares them.
        var trimmed = numbers
        while trimmed.count > 1, trimmed.last == 0 { trimmed.removeLast() }
        version = trimmed
    }

    /// The event of a Flyway SQL callback (`beforeMigrate.sql`, `afterMigrate__grants.sql` → `afterMigrate`); nil
    /// for any other name.
    static func callbackEvent(_ name: String) -> String? {
        guard name.hasSuffix(".sql") else { return nil }
        let base = name.dropLast(4)
        let event = base.range(of: "__").map { String(base[..<$0.lowerBound]) } ?? String(base)
        let events: Set<String> = [
            "beforeMigrate", "beforeEachMigrate", "beforeEachMigrateStatement", "afterEachMigrate", "afterEachMigrateStatement",
            "afterEachMigrateError", "afterMigrate", "afterMigrateApplied", "afterVersioned", "afterMigrateError",
        ]
        return events.contains(event) ? event : nil
    }

    /// Part by part, numerically: 1 < 1.1 < 1.2 < 1.10 < 2 < 10.
    static func less(_ a: [UInt64], _ b: [UInt64]) -> Bool {
        for (x, y) in zip(a, b) where x != y { return x < y }
        return a.count < b.count
    }
}

/// Natural order of names: runs of digits compare as numbers (`2_x.sql` before `10_x.sql`), the rest as text.
public enum NaturalOrder {
    /// Whether `a` comes before `b`: `001_x` < `1_x` < `2_x` < `10_x` < `a` (a total order).
    public static func less(_ a: String, _ b: String) -> Bool {
        let (x, y) = (chunks(a), chunks(b))
        for (p, q) in zip(x, y) where p != q {
            switch (p, q) {
            case (.number(let m, let mText), .number(let n, let nText)):
                return m != n ? m < n : mText < nText  // 01 before 1 when equal, so the order is total
            case (.number, .text): return true
            case (.text, .number): return false
            case (.text(let s), .text(let t)): return s < t
            }
        }
        return x.count != y.count ? x.count < y.count : a < b
    }

    private enum Chunk: Equatable {
        case number(UInt64, String)
        case text(String)
    }

    private static func chunks(_ text: String) -> [Chunk] {
        var result: [Chunk] = []
        var current = ""
        var digits = false
        func flush() {
            guard !current.isEmpty else { return }
            // A run too long for UInt64 compares by length, then as text: the same order.
            result.append(digits ? .number(UInt64(current) ?? UInt64.max, current) : .text(current))
            current = ""
        }
        for character in text {
            let isDigit = character.isASCII && character.isNumber
            if isDigit != digits {
                flush()
                digits = isDigit
            }
            current.append(character)
        }
        flush()
        return result
    }
}
