import PGEventsHarness
import PGEventsPostgres
import PGEventsSystem

/// Judges a table whose spec names a publication: the catalog (the table is published, with the operations, row
/// filter and column list the spec says, and a replica identity that gives the old values it asks for), then what
/// a real slot gave for the exercise's statements.
struct PublicationJudge {
    let table: QualifiedName
    let spec: PublicationSpec
    let facts: PublicationFacts
    /// The exercise's statements, each with the changes the slot gave for it; nil when no slot was read.
    let operations: [ExercisedOperation]?
    /// What the slot gave for a TRUNCATE after the exercise; nil when it did not run.
    let truncated: [PublishedChange]?
    /// Why no slot was read, when it was not.
    let noSlot: String?
    let version: String

    private(set) var results: [CheckResult] = []

    private var publication: String { spec.name }

    private mutating func add(_ name: String, _ status: CheckStatus, _ message: String, row: String? = nil, fix: String? = nil) {
        results.append(
            CheckResult(
                group: table.description, name: name, status: status, message: message, row: row, fix: fix, postgresVersion: version))
    }

    /// A statement that fails because of how the table is published (no replica identity, a column list or a row
    /// filter beyond it), not because of the value.
    static func isPublicationFailure(_ error: PostgresError) -> Bool {
        error.message.contains("replica identity")
    }

    /// Whether the catalog allows reading a slot at all (the publication exists and publishes the table).
    static func canStream(_ facts: PublicationFacts) -> Bool {
        facts.exists && facts.membership != nil && facts.walLevel == "logical"
    }

    mutating func judge() {
        guard judgeMembership() else { return }
        judgeOperations()
        judgeRowFilter()
        judgeColumns()
        judgeIdentity()
        judgeSlot()
    }

    // MARK: The catalog

    private mutating func judgeMembership() -> Bool {
        let name = "\(table) is in publication \(publication)"
        guard facts.exists else {
            let others = facts.publications.isEmpty ? "none" : facts.publications.joined(separator: ", ")
            add(
                name, .failed, "there is no publication \(publication) after the migrations (publications: \(others))",
                fix: "CREATE PUBLICATION \(quote(publication)) FOR TABLE \(table)\(publishClause(spec.operations)); in a migration")
            return false
        }
        guard let membership = facts.membership else {
            add(
                name, .failed, "publication \(publication) does not publish \(table): a slot of it sends none of its changes",
                fix: "ALTER PUBLICATION \(quote(publication)) ADD TABLE \(table); in a migration")
            return false
        }
        add(name, .passed, membership)
        return true
    }

    private mutating func judgeOperations() {
        let wanted = spec.operations
        let name = "\(publication) publishes \(describe(wanted)) for \(table)"
        if facts.published == wanted {
            add(name, .passed, "publish = '\(facts.published.sorted().map(\.rawValue).joined(separator: ", "))'")
            return
        }
        let missing = wanted.subtracting(facts.published)
        let extra = facts.published.subtracting(wanted)
        var found: [String] = []
        if !missing.isEmpty { found.append("\(describe(missing)) \(missing.count == 1 ? "is" : "are") not published") }
        if !extra.isEmpty { found.append("\(describe(extra)) \(extra.count == 1 ? "is" : "are") published, which the spec does not list") }
        add(
            name, .failed,
            "it publishes \(facts.published.isEmpty ? "nothing" : describe(facts.published)): " + found.joined(separator: "; "),
            fix:
                "ALTER PUBLICATION \(quote(publication)) SET (publish = '\(wanted.sorted().map(\.rawValue).joined(separator: ", "))'); (it applies to every table of the publication), or correct tables.\(table).publication.operations"
        )
    }

    private mutating func judgeRowFilter() {
        guard let wanted = spec.rowFilter, let canonical = facts.specRowFilter else { return }
        let name = "\(table) is published WHERE (\(wanted))"
        switch canonical {
        case .failure(let refused):
            add(
                name, .failed, "the spec's row filter is not one the server accepts for \(table): \(refused.message)",
                fix: "correct tables.\(table).publication.where")
        case .success(let written):
            if facts.rowFilter == written {
                add(name, .passed, "row filter \(written)")
            } else {
                add(
                    name, .failed,
                    facts.rowFilter.map { "its row filter is \($0), not \(written)" } ?? "it is published without a row filter",
                    fix:
                        "ALTER PUBLICATION \(quote(publication)) SET TABLE … replaces every table of the publication: drop and add this one, ALTER PUBLICATION \(quote(publication)) DROP TABLE \(table); ALTER PUBLICATION \(quote(publication)) ADD TABLE \(table)\(columnClause(facts.hasColumnList ? facts.publishedColumns : nil)) WHERE (\(wanted));"
                )
            }
        }
    }

    private mutating func judgeColumns() {
        guard let wanted = spec.columns else { return }
        let name = "\(table) publishes exactly the columns \(wanted.joined(separator: ", "))"
        let published = facts.publishedColumns
        let hidden = wanted.filter { !published.contains($0) }
        let extra = published.filter { !wanted.contains($0) }
        if hidden.isEmpty, extra.isEmpty {
            add(name, .passed, facts.hasColumnList ? "column list (\(published.joined(separator: ", ")))" : "every column")
            return
        }
        var found: [String] = []
        let what = facts.hasColumnList ? "its column list (\(published.joined(separator: ", ")))" : "it publishes every column, and"
        if !hidden.isEmpty {
            let missing = hidden.filter { !facts.columns.contains($0) }
            found.append(
                missing.isEmpty
                    ? "\(what) leaves out \(hidden.joined(separator: ", ")), which the spec needs"
                    : "\(table) has no column \(missing.joined(separator: ", "))")
        }
        if !extra.isEmpty { found.append("it also publishes \(extra.joined(separator: ", ")), which the spec does not list") }
        add(
            name, .failed, found.joined(separator: "; "),
            fix:
                "ALTER PUBLICATION \(quote(publication)) DROP TABLE \(table); ALTER PUBLICATION \(quote(publication)) ADD TABLE \(table)\(columnClause(wanted))\(facts.rowFilter.map { " WHERE \($0)" } ?? ""); or correct tables.\(table).publication.columns"
        )
    }

    private mutating func judgeIdentity() {
        let changesOld = !facts.published.isDisjoint(with: [.update, .delete])
        let noIdentity = facts.identityColumns.isEmpty
        let keyFix =
            "give \(table) a primary key, or a unique index on NOT NULL columns and ALTER TABLE \(table) REPLICA IDENTITY USING INDEX <index>; or ALTER TABLE \(table) REPLICA IDENTITY FULL;"
        if changesOld, noIdentity {
            let operations = describe(facts.published.intersection([.update, .delete]))
            add(
                "\(operations) of \(table) can be published", .failed,
                "\(table) has \(facts.identityDescription): it has no replica identity, and \(publication) publishes \(operations), so every \(operations) of it fails (\"cannot update table … because it does not have a replica identity and publishes updates\")",
                fix: keyFix)
        }
        switch spec.old {
        case .none:
            break
        case .key:
            if !noIdentity {
                add(
                    "old values give the key of the changed row (old: key)", .passed,
                    "\(facts.identityDescription): DELETE, and an UPDATE that changes them, carry \(facts.identityColumns.joined(separator: ", "))"
                )
            } else if !changesOld {
                add(
                    "old values give the key of the changed row (old: key)", .failed,
                    "\(table) has \(facts.identityDescription): an UPDATE or DELETE would carry no old values", fix: keyFix)
            }
        case .full:
            if facts.identity == "f" {
                add("old values give every column (old: full)", .passed, "REPLICA IDENTITY FULL: UPDATE and DELETE carry the whole old row")
            } else {
                add(
                    "old values give every column (old: full)", .failed,
                    "\(table) has \(facts.identityDescription): UPDATE and DELETE carry \(noIdentity ? "no old values" : "only the old \(facts.identityColumns.joined(separator: ", ")), and an UPDATE that leaves them unchanged no old values at all")",
                    fix: "ALTER TABLE \(table) REPLICA IDENTITY FULL;")
            }
        }
        // A column list must cover the replica identity, or published UPDATEs and DELETEs fail (PostgreSQL 15+).
        if changesOld, facts.hasColumnList, !noIdentity {
            let uncovered = facts.identityColumns.filter { !facts.publishedColumns.contains($0) }
            if !uncovered.isEmpty {
                add(
                    "the column list of \(table) covers its replica identity", .failed,
                    "its column list (\(facts.publishedColumns.joined(separator: ", "))) leaves out \(uncovered.joined(separator: ", ")) of \(facts.identityDescription): every published UPDATE and DELETE of it fails",
                    fix:
                        "add \(uncovered.joined(separator: ", ")) to the column list: ALTER PUBLICATION \(quote(publication)) DROP TABLE \(table); ALTER PUBLICATION \(quote(publication)) ADD TABLE \(table)\(columnClause(facts.publishedColumns + uncovered));"
                )
            }
        }
    }

    // MARK: The slot

    private mutating func judgeSlot() {
        guard let operations else {
            if let noSlot { add("changes come out of a slot as the spec says", .skipped, noSlot) }
            return
        }
        for kind in [ExercisedOperation.Kind.insert, .update, .delete] {
            guard let operation = kind.operation.flatMap({ PublishedOperation(rawValue: $0.rawValue) }) else { continue }
            judgeSlot(kind, operation, operations.filter { $0.kind == kind })
        }
        judgeTransactions(operations)
        judgeOldValues(operations)
        judgePublishedColumns(operations)
        judgeTruncate()
    }

    private mutating func judgeSlot(_ kind: ExercisedOperation.Kind, _ operation: PublishedOperation, _ statements: [ExercisedOperation]) {
        let declared = spec.operations.contains(operation)
        let name = declared ? "the slot gives one \(kind.rawValue) change per row" : "the slot gives no \(kind.rawValue) change"
        // A statement the publication makes fail: the catalog checks above say why.
        if let failed = statements.first(where: { $0.isBase && $0.error.map(Self.isPublicationFailure) == true }), let error = failed.error
        {
            add(
                name, .failed,
                "\(kind.rawValue) of a generated row fails: \(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "")"
                    + (error.detail.map { " — \($0)" } ?? ""),
                row: failed.row,
                fix:
                    "give \(table) a replica identity that covers its column list and row filter: a primary key, REPLICA IDENTITY USING INDEX, or ALTER TABLE \(table) REPLICA IDENTITY FULL;"
            )
            return
        }
        let written = statements.filter { $0.error == nil && $0.changes != nil }
        guard let base = written.first(where: \.isBase) else { return }
        let filtered = facts.rowFilter != nil
        func count(_ statement: ExercisedOperation) -> Int { statement.changes?.filter { $0.operation == operation }.count ?? 0 }
        if declared, count(base) != 1 {
            add(
                name, .failed,
                "the \(kind.rawValue) of the ordinary row gave \(count(base)) \(kind.rawValue) change(s)"
                    + (filtered
                        ? ": the row filter \(facts.rowFilter ?? "") may leave the generated row out; give tables.\(table).values values that pass it"
                        : ""),
                row: base.row,
                fix: filtered ? nil : "check that \(publication) publishes \(kind.rawValue) for \(table)")
            return
        }
        // Every other row: one change (at most one behind a row filter) when declared, none when not.
        let wrong = written.first { statement in
            let changes = count(statement)
            return declared ? (changes > 1 || (!filtered && changes == 0)) : changes > 0
        }
        if let wrong {
            add(
                name, .failed,
                "the \(kind.rawValue) of the row with \(wrong.variant == "base" ? "ordinary values" : wrong.variant) gave \(count(wrong)) \(kind.rawValue) change(s)"
                    + (declared ? "" : ": the spec does not list \(operation.rawValue) in tables.\(table).publication.operations"),
                row: wrong.row,
                fix: declared
                    ? nil
                    : "ALTER PUBLICATION \(quote(publication)) SET (publish = '\(spec.operations.sorted().map(\.rawValue).joined(separator: ", "))'); or add \(operation.rawValue) to the spec's operations"
            )
            return
        }
        add(
            name, .passed,
            "\(written.count) \(kind.rawValue)(s) of generated rows (ordinary and edge values), \(written.map(count).reduce(0, +)) change(s) decoded from a pgoutput slot of \(publication)"
        )
    }

    private mutating func judgeTransactions(_ operations: [ExercisedOperation]) {
        if let rolledBack = operations.first(where: { $0.kind == .rolledBackInsert && $0.error == nil }), let changes = rolledBack.changes {
            add(
                "a rolled-back INSERT gives no change", changes.isEmpty ? .passed : .failed,
                changes.isEmpty ? "nothing decoded" : "\(changes.count) change(s) decoded from a transaction that rolled back")
        }
        guard spec.operations.contains(.insert), facts.rowFilter == nil,
            let double = operations.first(where: { $0.kind == .twoRowInsert && $0.error == nil }), let changes = double.changes
        else { return }
        let inserts = changes.filter { $0.operation == .insert }.count
        add(
            "two rows in one transaction give two INSERT changes", inserts == 2 ? .passed : .failed,
            "\(inserts) INSERT change(s) for two rows committed together")
    }

    private mutating func judgeOldValues(_ operations: [ExercisedOperation]) {
        guard spec.old != .none else { return }
        var checked = 0
        for statement in operations where statement.error == nil {
            for change in statement.changes ?? [] where change.operation == .update || change.operation == .delete {
                checked += 1
                if let problem = oldValueProblem(change) {
                    add(
                        "UPDATE and DELETE changes carry the old values of old: \(spec.old.rawValue)", .failed,
                        "the \(change.operation.keyword) of the row with \(statement.variant == "base" ? "ordinary values" : statement.variant): \(problem)",
                        row: statement.row,
                        fix: spec.old == .full
                            ? "ALTER TABLE \(table) REPLICA IDENTITY FULL;"
                            : "give \(table) a replica identity (a primary key, or REPLICA IDENTITY USING INDEX)")
                    return
                }
            }
        }
        if checked > 0 {
            add(
                "UPDATE and DELETE changes carry the old values of old: \(spec.old.rawValue)", .passed,
                "\(checked) change(s), \(spec.old == .full ? "each with the whole old row" : "each with the key it changed")")
        }
    }

    /// What an UPDATE or DELETE change lacks of the old values the spec asks for; nil: nothing.
    private func oldValueProblem(_ change: PublishedChange) -> String? {
        switch spec.old {
        case .none:
            return nil
        case .full:
            guard let old = change.old, !change.oldIsKey else {
                return change.old == nil
                    ? "no old values at all"
                    : "only the old key (\(change.old?.keys.sorted().joined(separator: ", ") ?? "")), not the old row"
            }
            let missing = change.columns.filter { old[$0] == nil }
            return missing.isEmpty ? nil : "no old value for \(missing.joined(separator: ", "))"
        case .key:
            if change.keyColumns.isEmpty { return "the table has no replica identity: no old key" }
            if change.operation == .update, change.old == nil {
                // The key did not change: the new row carries it.
                let missing = change.keyColumns.filter { (change.new?[$0] ?? nil) == nil }
                return missing.isEmpty ? nil : "the new row lacks the key \(missing.joined(separator: ", "))"
            }
            let missing = change.keyColumns.filter { (change.old?[$0] ?? nil) == nil }
            return missing.isEmpty ? nil : "no old value for the key \(missing.joined(separator: ", "))"
        }
    }

    private mutating func judgePublishedColumns(_ operations: [ExercisedOperation]) {
        guard let first = operations.lazy.compactMap({ $0.changes?.first }).first else { return }
        let expected = spec.columns ?? facts.publishedColumns
        let name = "changes carry exactly the columns \(expected.joined(separator: ", "))"
        let sent = first.columns
        if Set(sent) == Set(expected) {
            add(name, .passed, "the slot's relation message describes \(sent.joined(separator: ", "))")
        } else {
            let missing = expected.filter { !sent.contains($0) }
            let extra = sent.filter { !expected.contains($0) }
            add(
                name, .failed,
                "the slot sends \(sent.joined(separator: ", "))"
                    + (missing.isEmpty ? "" : "; not \(missing.joined(separator: ", "))")
                    + (extra.isEmpty ? "" : "; also \(extra.joined(separator: ", "))"),
                fix: "see the column list check of \(table)")
        }
    }

    private mutating func judgeTruncate() {
        guard let truncated else { return }
        let declared = spec.operations.contains(.truncate)
        let got = truncated.filter { $0.operation == .truncate }.count
        if declared {
            add(
                "the slot gives a TRUNCATE change", got >= 1 ? .passed : .failed,
                got >= 1 ? "TRUNCATE \(table) decoded" : "TRUNCATE \(table) gave no change",
                fix: got >= 1
                    ? nil
                    : "ALTER PUBLICATION \(quote(publication)) SET (publish = '\(spec.operations.sorted().map(\.rawValue).joined(separator: ", "))');"
            )
        } else {
            add(
                "the slot gives no TRUNCATE change", got == 0 ? .passed : .failed,
                got == 0 ? "TRUNCATE \(table) gave none" : "TRUNCATE \(table) gave \(got) change(s), which the spec does not list",
                fix: got == 0
                    ? nil
                    : "ALTER PUBLICATION \(quote(publication)) SET (publish = '\(spec.operations.sorted().map(\.rawValue).joined(separator: ", "))'); or add truncate to the spec's operations"
            )
        }
    }

    // MARK: Words

    private func describe(_ operations: Set<PublishedOperation>) -> String {
        operations.sorted().map(\.keyword).joined(separator: ", ")
    }

    private func quote(_ name: String) -> String {
        name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" } && !(name.first?.isNumber ?? true)
            ? name : PostgresIdentifier.quote(name)
    }

    private func publishClause(_ operations: Set<PublishedOperation>) -> String {
        operations == Set(PublishedOperation.allCases)
            ? "" : " WITH (publish = '\(operations.sorted().map(\.rawValue).joined(separator: ", "))')"
    }

    private func columnClause(_ columns: [String]?) -> String {
        guard let columns else { return "" }
        return " (" + columns.map(quote).joined(separator: ", ") + ")"
    }
}
