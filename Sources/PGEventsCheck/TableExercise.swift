import Foundation
import PGEventsHarness
public import PGEventsPostgres

/// One operation the exercise ran, and what it caused.
public struct ExercisedOperation: Sendable {
    public enum Kind: String, Sendable {
        case insert = "INSERT"
        case update = "UPDATE"
        case delete = "DELETE"
        /// An INSERT rolled back: must notify nothing.
        case rolledBackInsert = "rolled-back INSERT"
        /// Two INSERTs in one transaction: must notify twice.
        case twoRowInsert = "two INSERTs in one transaction"

        /// The row operation, for INSERT, UPDATE and DELETE.
        public var operation: TableOperation? {
            switch self {
            case .insert: .insert
            case .update: .update
            case .delete: .delete
            case .rolledBackInsert, .twoRowInsert: nil
            }
        }
    }

    public var kind: Kind
    /// `base` for the ordinary row, else the edge case: `content: long text`.
    public var variant: String
    /// The column and value that make this row special (edge rows), e.g. `content = 'x' × 20,000 bytes`.
    public var row: String?
    public var notifications: [(channel: String, payload: String)]
    /// The statement failed (the row was not written): the server's error.
    public var error: PostgresError?
    /// For a failing edge value that can be shortened: the smallest failing size, e.g. "once `content` reaches 7,913 bytes".
    public var smallestFailure: String?
    /// The edge column, when this is an edge row.
    public var column: String?
    /// For a row the schema refused: the constraint that refused it, and its definition (and, for a pattern the
    /// generator could not match, which one), e.g. `order_code_format: CHECK ((code ~ '^(?=…)'::text))`.
    public var refusedBy: String?
    /// The changes a slot of the table's publication gave for it (when the spec names a publication).
    var changes: [PublishedChange]? = nil

    public var isBase: Bool { variant == "base" }
}

/// Runs one table's operations on a database of its own while listening on every channel involved.
///
/// Every operation commits on its own (NOTIFY is sent at commit), then a fence notification from the same
/// session marks the end of what it caused: notifications arrive in commit order, so whatever precedes the
/// fence belongs to the operation.
struct TableExercise {
    let shape: TableShape
    let fixedValues: [String: String]
    let channels: Set<String>
    /// Columns the base UPDATE should change first: those of a notifying trigger's `UPDATE OF`.
    var updateColumns: [String] = []
    /// Notifying triggers to exercise one at a time afterwards, to credit each notification to the trigger that
    /// sent it (see `fireAlone`): the table's, when it has more than one.
    var alone: [TriggerInfo] = []
    /// A slot of the table's publication, read after every statement (see `ExercisedOperation.changes`).
    var slot: PublicationSlot? = nil

    /// What the exercise ran, and what each trigger of `alone` sent on its own.
    struct Outcome {
        var operations: [ExercisedOperation]
        var firedAlone: Firings
        /// What the slot gave for a TRUNCATE of the table after everything else (with a slot only).
        var truncated: [PublishedChange]? = nil
    }

    static let fenceChannel = "pgevents_check_fence"

    /// What went wrong before any operation could run (a row that cannot be generated): a sentence.
    struct SetupFailure: Error { var message: String }

    func run(on database: CheckDatabase) async throws -> Outcome {
        try await database.connect().closeAfter { writer in
            try await database.connect().closeAfter { listener in
                try await run(writer: writer, listener: listener)
            }
        }
    }

    /// Every operation, written on `writer` and heard on `listener` (both closed by the caller): the ordinary row,
    /// a rolled-back INSERT and two rows in one transaction, then the edge values; then each trigger of `alone`
    /// on its own.
    private func run(writer: PostgresConnection, listener: PostgresConnection) async throws -> Outcome {
        // A slot decodes only what is flushed: commits must not return before their WAL is (a server may run with
        // synchronous_commit off).
        if slot != nil { try await writer.execute("SET synchronous_commit = on") }
        let session = try await Session(self, writer: writer, listener: listener)
        try await session.exerciseOrdinaryRow()
        try await session.exerciseTransactions()
        try await session.exerciseEdgeValues()
        let firedAlone = try await session.exerciseTriggersAlone()
        var outcome = Outcome(operations: session.operations, firedAlone: firedAlone)
        if let slot {
            _ = try await slot.changes()  // what the last phase left
            // CASCADE: tables referring to this one would refuse it otherwise (the database is a scratch one).
            if (try? await writer.execute("TRUNCATE \(shape.quotedName) CASCADE")) != nil {
                outcome.truncated = try await slot.changes()
            }
        }
        return outcome
    }

    /// An error raised inside a trigger (or a function it called), not by the value itself: the context names a function.
    static func isTriggerFailure(_ error: PostgresError) -> Bool {
        guard let context = error.context else { return false }
        return context.contains("function") || context.contains("trigger")
    }

    // MARK: Statements

    func insert(_ values: [String: GeneratedValue], on connection: PostgresConnection) async throws -> String {
        try await shape.insert(values, on: connection)
    }

    /// Sets `column` to `value` (nil: to itself) in the row at `ctid`; returns the row's new ctid.
    func update(_ ctid: String, column: String, value: GeneratedValue?, on connection: PostgresConnection) async throws -> String {
        let quoted = PostgresIdentifier.quote(column)
        let type = shape.columns.first { $0.name == column }?.type ?? "text"
        switch value {
        case .text(let text)?:
            return try await connection.query(
                "UPDATE \(shape.quotedName) SET \(quoted) = $2::\(type) WHERE ctid = $1::tid RETURNING ctid::text", [ctid, text]
            ).scalar(String.self)
        case .null?:
            return try await connection.query(
                "UPDATE \(shape.quotedName) SET \(quoted) = NULL WHERE ctid = $1::tid RETURNING ctid::text", [ctid]
            ).scalar(String.self)
        case .default?, nil:
            return try await connection.query(
                "UPDATE \(shape.quotedName) SET \(quoted) = \(quoted) WHERE ctid = $1::tid RETURNING ctid::text", [ctid]
            ).scalar(String.self)
        }
    }

    /// The column the base UPDATE changes: the first ordinary one (not a key, not fixed), set to another value.
    /// With `onlyRequired`, a NOT NULL one (the optional columns are NULL on purpose: a filled one was refused).
    /// `avoiding`: columns whose generated values were refused (the row holds an edge value there instead).
    func updateTarget(serial: Int, onlyRequired: Bool = false, avoiding: Set<String> = []) -> (String, GeneratedValue?) {
        let keyColumns = Set(shape.primaryKey + shape.foreignKeys.flatMap(\.columns))
        for name in updateColumns where !keyColumns.contains(name) && fixedValues[name] == nil && !avoiding.contains(name) {
            if let column = shape.columns.first(where: { $0.name == name && !$0.isIdentity && !$0.isGenerated }),
                let value = shape.normalValue(column, serial: serial)
            {
                return (column.name, value)
            }
        }
        for column in shape.columns
        where !keyColumns.contains(column.name) && !column.isIdentity && !column.isGenerated && fixedValues[column.name] == nil
            && (!onlyRequired || column.notNull) && !avoiding.contains(column.name)
        {
            if let value = shape.normalValue(column, serial: serial) { return (column.name, value) }
        }
        return (shape.columns.first { !$0.isGenerated && !$0.isIdentity }?.name ?? shape.columns[0].name, nil)
    }

    /// Inserts a row into `table` (and its own parents first); returns the values of `columns` as written.
    func insertParent(
        _ table: QualifiedName, columns: [String], on connection: PostgresConnection, serial: inout Int, visiting: inout Set<QualifiedName>
    ) async throws -> [GeneratedValue] {
        guard visiting.insert(table).inserted, visiting.count < 8 else {
            throw SetupFailure(
                message:
                    "\(shape.table) refers to \(table) in a cycle (or too deep a chain of foreign keys): give the key columns values in the spec"
            )
        }
        defer { visiting.remove(table) }
        guard let parent = try await TableShape.read(table, on: connection) else {
            throw SetupFailure(message: "\(shape.table) refers to \(table), which cannot be read")
        }
        var values: [String: GeneratedValue] = [:]
        for key in parent.foreignKeys where key.parent != table {
            let keyValues = try await insertParent(
                key.parent, columns: key.parentColumns, on: connection, serial: &serial, visiting: &visiting)
            for (column, value) in zip(key.columns, keyValues) { values[column] = value }
        }
        serial += 1
        var names: [String] = []
        var placeholders: [String] = []
        var parameters: [(any PostgresEncodable)?] = []
        for column in parent.columns where values[column.name] == nil && !column.isIdentity && !column.isGenerated && !column.hasDefault {
            if let value = parent.normalValue(column, serial: serial) {
                values[column.name] = value
            } else if column.notNull {
                throw SetupFailure(
                    message:
                        "cannot generate a value for \(table).\(column.name) (type \(column.type)), needed for a parent row of \(shape.table)"
                )
            }
        }
        for column in parent.columns {
            guard case .text(let text)? = values[column.name] else { continue }
            names.append(PostgresIdentifier.quote(column.name))
            parameters.append(text)
            placeholders.append("$\(parameters.count)::\(column.type)")
        }
        let returning = columns.map { "\(PostgresIdentifier.quote($0))::text" }.joined(separator: ", ")
        let sql =
            names.isEmpty
            ? "INSERT INTO \(parent.quotedName) DEFAULT VALUES RETURNING \(returning)"
            : "INSERT INTO \(parent.quotedName) (\(names.joined(separator: ", "))) VALUES (\(placeholders.joined(separator: ", "))) RETURNING \(returning)"
        do {
            let row = try await connection.query(sql, parameters)
            guard let first = row.first else { throw SetupFailure(message: "inserting a parent row into \(table) returned nothing") }
            return try columns.indices.map { index in .text(try first.decode(String.self, at: index)) }
        } catch let error as PostgresError {
            throw SetupFailure(message: "cannot insert a parent row into \(table) for \(shape.table): \(error.message)")
        }
    }

    /// The smallest length of `column`'s value (repeating its first character) at which the INSERT fails with
    /// the same SQLSTATE — found by bisection, each probe rolled back.
    func smallestFailingSize(
        row: [String: GeneratedValue], column: String, original: String, sqlState: String?, on connection: PostgresConnection
    ) async throws -> String? {
        let unit = String(original.first ?? "x")
        let isJSON = original.hasPrefix("{\"blob\": \"")
        func value(_ length: Int) -> String {
            isJSON ? "{\"blob\": \"" + String(repeating: "y", count: length) + "\"}" : String(repeating: unit, count: length)
        }
        func fails(_ length: Int) async throws -> Bool {
            var probe = row
            probe[column] = .text(value(length))
            try await connection.execute("BEGIN")
            do {
                _ = try await insert(probe, on: connection)
                try await connection.execute("ROLLBACK")
                return false
            } catch let error as PostgresError {
                _ = try? await connection.execute("ROLLBACK")
                return error.sqlState == sqlState
            }
        }
        var low = 0
        var high = isJSON ? 20_000 : original.utf8.count  // as many units as the original has bytes: multi-byte text shortens too
        guard try await fails(high), try await !fails(low) else { return nil }
        while high - low > 1 {
            let middle = (low + high) / 2
            if try await fails(middle) { high = middle } else { low = middle }
        }
        return
            "once `\(column)` reaches \(value(high).utf8.count.formatted()) bytes (at \(value(low).utf8.count.formatted()) it still works)"
    }

    func describe(_ values: [String: GeneratedValue]) -> String {
        shape.columns.compactMap { column in values[column.name].map { "\(column.name) = \($0)" } }.joined(separator: ", ")
    }
}
