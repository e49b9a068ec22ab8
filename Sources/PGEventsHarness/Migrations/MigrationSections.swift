import PGEventsSystem

/// Whether a migration file runs inside a transaction of its own.
public enum MigrationTransaction: Sendable, Hashable, Codable {
    /// In a transaction; if PostgreSQL answers that a statement cannot run inside one (SQLSTATE 25001, or 55P04
    /// for a new enum value used in the same transaction), the file is rolled back and run again the way psql
    /// runs it: one statement at a time, each committing on its own.
    case automatic
    /// One statement at a time, each committing on its own (the file's own `BEGIN`/`COMMIT` included), because
    /// the file says so: `marker` is what said it (e.g. `-- +goose NO TRANSACTION`).
    case none(marker: String)
}

/// The part of a migration file its tool runs, and what the file's annotations say about running it.
public struct MigrationSections: Sendable, Hashable {
    /// The file's text with every line its tool does not run (down sections, annotations) blanked, so that
    /// line numbers stay those of the file.
    public var text: String
    /// Statements the file delimits itself (goose's `StatementBegin` … `StatementEnd`), with their first line;
    /// their lines are blanked in `text`.
    public var blocks: [(text: String, line: Int)]
    /// A marker that turns the file's transaction off, as written.
    public var noTransactionMarker: String?

    /// Equal text, blocks (with their lines) and marker.
    public static func == (a: Self, b: Self) -> Bool {
        a.text == b.text && a.noTransactionMarker == b.noTransactionMarker
            && a.blocks.map(\.text) == b.blocks.map(\.text) && a.blocks.map(\.line) == b.blocks.map(\.line)
    }

    /// Hashes the text and the marker (equal values have equal blocks too, so this is consistent with `==`).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(text)
        hasher.combine(noTransactionMarker)
    }

    /// Reads `text` as `layout` writes it. `flywayConfiguration` is the text of the script's `.sql.conf`, if any.
    public init(_ text: String, layout: MigrationLayout, flywayConfiguration: String? = nil) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        blocks = []
        noTransactionMarker = nil
        switch layout {
        case .goose:
            self.text = ""
            readGoose(lines)
        case .dbmate:
            self.text = ""
            readDbmate(lines)
        case .flyway:
            self.text = text
            if let flywayConfiguration, Self.flywayDisablesTransaction(flywayConfiguration) {
                noTransactionMarker = "executeInTransaction=false (.sql.conf)"
            }
        case .plain, .golangMigrate, .sqitch:
            self.text = text
        }
        // sqlx: `-- no-transaction` as the file's first line (sqlx shares the plain and golang-migrate layouts).
        if noTransactionMarker == nil, let first = lines.first, Self.annotation(first) == "no-transaction" {
            noTransactionMarker = "-- no-transaction"
        }
    }

    /// `+goose Up` for a line `-- +goose Up` (the text after `--`, trimmed); nil for any other line.
    static func annotation<S: StringProtocol>(_ line: S) -> String? {
        let trimmed = line.trimmed()
        guard trimmed.hasPrefix("--") else { return nil }
        return String(trimmed.dropFirst(2)).trimmed()
    }

    private mutating func readGoose(_ lines: [String]) {
        enum Section { case before, up, down }
        var section = Section.before
        var kept: [String] = []
        var block: (lines: [String], line: Int)?
        for (index, line) in lines.enumerated() {
            if let annotation = Self.annotation(line), annotation.lowercased().hasPrefix("+goose") {
                let words = annotation.lowercased().split(separator: " ").dropFirst().joined(separator: " ")
                switch words {
                case "up": section = .up
                case "down": section = .down
                case "no transaction": noTransactionMarker = "-- +goose NO TRANSACTION"
                case "statementbegin" where section == .up: block = ([], index + 2)
                case "statementend" where section == .up:
                    if let finished = block {
                        let body = finished.lines.joined(separator: "\n").trimmedTrailing()
                        blocks.append((body.hasSuffix(";") ? String(body.dropLast()) : body, finished.line))
                    }
                    block = nil
                default: break
                }
                kept.append("")
                continue
            }
            if section == .up, block != nil {
                block!.lines.append(line)
                kept.append("")
            } else {
                kept.append(section == .up ? line : "")
            }
        }
        text = kept.joined(separator: "\n")
    }

    private mutating func readDbmate(_ lines: [String]) {
        var up = false
        var kept: [String] = []
        for line in lines {
            if let annotation = Self.annotation(line), annotation.hasPrefix("migrate:") {
                let words = annotation.split(separator: " ")
                if words.first == "migrate:up" {
                    up = true
                    if words.dropFirst().contains("transaction:false") { noTransactionMarker = "-- migrate:up transaction:false" }
                } else if words.first == "migrate:down" {
                    up = false
                }
                kept.append("")
                continue
            }
            kept.append(up ? line : "")
        }
        text = kept.joined(separator: "\n")
    }

    /// Whether a Flyway script configuration file says `executeInTransaction=false`.
    static func flywayDisablesTransaction(_ configuration: String) -> Bool {
        configuration.split(whereSeparator: \.isNewline).contains { line in
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmed().lowercased() }
            return parts.count == 2 && parts[0] == "executeintransaction" && parts[1] == "false"
        }
    }
}
