import Foundation
public import PGEventsPostgres

/// One operation the exercise ran, and what it caused.
public struct ExercisedOperation: Sendable {
    public enum Kind: String, Sendable {
        case insert = "INSERT", update = "UPDATE", delete = "DELETE"
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

    /// What the exercise ran, and what each trigger of `alone` sent on its own.
    struct Outcome {
        var operations: [ExercisedOperation]
        var firedAlone: Firings
    }

    static let fenceChannel = "pgevents_check_fence"

    /// What went wrong before any operation could run (a row that cannot be generated): a sentence.
    struct SetupFailure: Error { var message: String }

    func run(on database: CheckDatabase) async throws -> Outcome {
        let writer = try await database.connect()
        let listener = try await database.connect()
        defer {
            Task { await writer.close(); await listener.close() }
        }
        for channel in channels.sorted() + [Self.fenceChannel] { try await listener.listen(channel) }
        var notifications = await listener.notifications().makeAsyncIterator()
        var fence = 0

        func collect() async throws -> [(channel: String, payload: String)] {
            fence += 1
            let marker = String(fence)
            try await writer.notify(Self.fenceChannel, payload: marker)
            var collected: [(channel: String, payload: String)] = []
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                guard let notification = try await notifications.next() else {
                    throw SetupFailure(message: "the listening connection closed")
                }
                if notification.channel == Self.fenceChannel {
                    if notification.payload == marker { return collected }
                    continue
                }
                collected.append((notification.channel, notification.payload))
            }
            throw SetupFailure(message: "no fence notification within 15 s")
        }

        var serial = 1
        var parentValues: [String: GeneratedValue] = [:]
        var visiting: Set<QualifiedName> = [shape.table]
        for key in shape.foreignKeys {
            let values = try await insertParent(key.parent, columns: key.parentColumns, on: writer, serial: &serial, visiting: &visiting)
            for (column, value) in zip(key.columns, values) { parentValues[column] = value }
        }
        _ = try await collect()  // the parents' own notifications are not this table's

        // Foreign keys that are part of the primary key (a membership table: (channel_id, user_id)) need new
        // parents for every row, or the second row repeats the first one's key.
        let keyedForeignKeys = shape.foreignKeys.filter { !Set($0.columns).isDisjoint(with: shape.primaryKey) }
        // Optional columns are filled, unless a filled row was refused (a CHECK across columns, e.g. "finished_at
        // is set exactly when state = 'done'"): then they are left NULL in this row and every later one.
        var optionalColumnsNull = false
        // Values of a row that worked after the generated one was refused: every later row takes them.
        var overrides: [String: GeneratedValue] = [:]
        let keyColumns = Set(shape.primaryKey + shape.foreignKeys.flatMap(\.columns))
        func baseRow() async throws -> [String: GeneratedValue] {
            if !keyedForeignKeys.isEmpty {
                for key in keyedForeignKeys {
                    let values = try await insertParent(key.parent, columns: key.parentColumns, on: writer, serial: &serial, visiting: &visiting)
                    for (column, value) in zip(key.columns, values) { parentValues[column] = value }
                }
                _ = try await collect()  // the parents' notifications are not this table's
            }
            serial += 1
            var values: [String: GeneratedValue] = [:]
            for column in shape.columns {
                if let fixed = fixedValues[column.name] {
                    values[column.name] = .text(fixed)
                } else if let override = overrides[column.name] {
                    values[column.name] = override
                } else if let parent = parentValues[column.name] {
                    values[column.name] = parent
                } else if column.isIdentity || column.isGenerated || column.hasDefault {
                    values[column.name] = .default
                } else if optionalColumnsNull, !column.notNull, !keyColumns.contains(column.name) {
                    values[column.name] = .null
                } else if let value = shape.normalValue(column, serial: serial) {
                    values[column.name] = value
                } else if !column.notNull {
                    values[column.name] = .null
                } else {
                    throw SetupFailure(message: "cannot generate a value for \(shape.table).\(column.name) of type \(column.type): give it one in the spec (tables.\(shape.table).values.\(column.name))")
                }
            }
            return values
        }

        var operations: [ExercisedOperation] = []

        // The ordinary row: INSERT, UPDATE, DELETE.
        var base = try await baseRow()
        var ctid: String?
        do {
            ctid = try await insert(base, on: writer)
            operations.append(.init(kind: .insert, variant: "base", row: nil, notifications: try await collect(), error: nil))
        } catch let error as PostgresError {
            // Refused before any trigger ran: try again with the optional columns NULL; if that row is written, it
            // is the ordinary row from now on.
            var retried = false
            if !Self.isTriggerFailure(error), !optionalColumnsNull, shape.columns.contains(where: { !$0.notNull && !keyColumns.contains($0.name) && base[$0.name] != .null && base[$0.name] != .default }) {
                _ = try await collect()
                optionalColumnsNull = true
                let second = try await baseRow()
                if let written = try? await insert(second, on: writer) {
                    base = second
                    ctid = written
                    retried = true
                    operations.append(.init(kind: .insert, variant: "base", row: nil, notifications: try await collect(), error: nil))
                } else {
                    optionalColumnsNull = false
                }
            }
            if !retried, Self.isTriggerFailure(error) {
                operations.append(.init(kind: .insert, variant: "base", row: describe(base), notifications: try await collect(), error: error))
            } else if !retried {
                _ = try await collect()
                // Another row that works — the generated row with one column's edge value (NULL, another allowed
                // value, another length) — is the ordinary row from now on, so that the later checks still run.
                if let (column, value, written) = try await rowThatWorks(base, on: writer) {
                    overrides[column] = value
                    base[column] = value
                    ctid = written
                    operations.append(.init(kind: .insert, variant: "base", row: "\(column) = \(value) (the generated row was refused: \(error.message))",
                                            notifications: try await collect(), error: nil))
                } else {
                    var refused = ExercisedOperation(kind: .insert, variant: "base", row: describe(base), notifications: [], error: error)
                    refused.refusedBy = try await refusingConstraint(error, on: writer)
                    operations.append(refused)
                }
            }
        }
        if let current = ctid {
            let (column, value) = updateTarget(serial: serial + 100_000, onlyRequired: optionalColumnsNull, avoiding: Set(overrides.keys))
            do {
                ctid = try await update(current, column: column, value: value, on: writer)
                operations.append(.init(kind: .update, variant: "base", row: "\(column) = \(value?.description ?? column)", notifications: try await collect(), error: nil))
            } catch let error as PostgresError {
                _ = try await collect()
                // The new value was refused (a CHECK on the column): the UPDATE that sets it to itself, which the row
                // already satisfies, still exercises the UPDATE triggers.
                if !Self.isTriggerFailure(error), value != nil, let updated = try? await update(current, column: column, value: nil, on: writer) {
                    ctid = updated
                    operations.append(.init(kind: .update, variant: "base", row: "\(column) = \(column) (\(value?.description ?? "") was refused: \(error.message))",
                                            notifications: try await collect(), error: nil))
                } else {
                    operations.append(.init(kind: .update, variant: "base", row: "\(column) = \(value?.description ?? column)", notifications: [], error: error))
                }
            }
            if let current = ctid {
                do {
                    try await writer.query("DELETE FROM \(shape.quotedName) WHERE ctid = $1::tid", [current])
                    operations.append(.init(kind: .delete, variant: "base", row: nil, notifications: try await collect(), error: nil))
                } catch let error as PostgresError {
                    operations.append(.init(kind: .delete, variant: "base", row: nil, notifications: try await collect(), error: error))
                }
            }
        }

        // A rolled-back INSERT, and two rows in one transaction.
        do {
            let row = try await baseRow()  // before BEGIN: it may insert parents, and fences only pass outside a transaction
            try await writer.execute("BEGIN")
            _ = try await insert(row, on: writer)
            try await writer.execute("ROLLBACK")
            operations.append(.init(kind: .rolledBackInsert, variant: "base", row: nil, notifications: try await collect(), error: nil))
        } catch let error as PostgresError {
            _ = try? await writer.execute("ROLLBACK")
            operations.append(.init(kind: .rolledBackInsert, variant: "base", row: nil, notifications: try await collect(), error: error))
        }
        do {
            let first = try await baseRow(), second = try await baseRow()
            try await writer.execute("BEGIN")
            _ = try await insert(first, on: writer)
            _ = try await insert(second, on: writer)
            try await writer.execute("COMMIT")
            operations.append(.init(kind: .twoRowInsert, variant: "base", row: nil, notifications: try await collect(), error: nil))
        } catch let error as PostgresError {
            _ = try? await writer.execute("ROLLBACK")
            operations.append(.init(kind: .twoRowInsert, variant: "base", row: nil, notifications: try await collect(), error: error))
        }

        // Edge values, one column at a time: INSERT, then UPDATE (the column set to itself) and DELETE.
        for column in shape.columns where !column.isGenerated && !column.isIdentity && fixedValues[column.name] == nil && parentValues[column.name] == nil {
            for (label, value) in shape.edgeValues(column) {
                var row = try await baseRow()
                row[column.name] = value
                let variant = "\(column.name): \(label)"
                let described = "\(column.name) = \(value)"
                var current: String?
                do {
                    current = try await insert(row, on: writer)
                    operations.append(.init(kind: .insert, variant: variant, row: described, notifications: try await collect(), error: nil, column: column.name))
                } catch let error as PostgresError {
                    var operation = ExercisedOperation(kind: .insert, variant: variant, row: described, notifications: try await collect(), error: error, column: column.name)
                    // Any text that can be shortened (a long payload, a channel name built from the column): the
                    // smallest failing size, and the example's size when its summary does not say it.
                    if Self.isTriggerFailure(error), case .text(let text) = value, text.unicodeScalars.count > 1 {
                        operation.smallestFailure = try await smallestFailingSize(row: row, column: column.name, original: text, sqlState: error.sqlState, on: writer)
                        if operation.smallestFailure != nil, !described.hasSuffix("bytes") { operation.row = described + " (\(text.utf8.count.formatted()) bytes)" }
                    }
                    operations.append(operation)
                    continue
                }
                guard let inserted = current else { continue }
                do {
                    current = try await update(inserted, column: column.name, value: nil, on: writer)
                    operations.append(.init(kind: .update, variant: variant, row: described, notifications: try await collect(), error: nil, column: column.name))
                } catch let error as PostgresError {
                    operations.append(.init(kind: .update, variant: variant, row: described, notifications: try await collect(), error: error, column: column.name))
                }
                guard let updated = current else { continue }
                do {
                    try await writer.query("DELETE FROM \(shape.quotedName) WHERE ctid = $1::tid", [updated])
                    operations.append(.init(kind: .delete, variant: variant, row: described, notifications: try await collect(), error: nil, column: column.name))
                } catch let error as PostgresError {
                    operations.append(.init(kind: .delete, variant: variant, row: described, notifications: try await collect(), error: error, column: column.name))
                }
            }
        }

        // Each notifying trigger alone: the ordinary row and every edge row again.
        let firedAlone = try await fireAlone(alone, rows: {
            var rows = [try await baseRow()]
            for column in shape.columns where !column.isGenerated && !column.isIdentity && fixedValues[column.name] == nil && parentValues[column.name] == nil {
                for (_, value) in shape.edgeValues(column) {
                    var row = try await baseRow()
                    row[column.name] = value
                    rows.append(row)
                }
            }
            return rows
        }, on: writer, update: { ctid, trigger in
            serial += 1
            let target = TableExercise(shape: shape, fixedValues: fixedValues, channels: channels, updateColumns: trigger.updateColumns)
                .updateTarget(serial: serial + 100_000, onlyRequired: optionalColumnsNull, avoiding: Set(overrides.keys))
            if let updated = try? await update(ctid, column: target.0, value: target.1, on: writer) { return updated }
            return try await update(ctid, column: target.0, value: nil, on: writer)
        }, collect: collect)
        return Outcome(operations: operations, firedAlone: firedAlone)
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
    private func update(_ ctid: String, column: String, value: GeneratedValue?, on connection: PostgresConnection) async throws -> String {
        let quoted = PostgresIdentifier.quote(column)
        let type = shape.columns.first { $0.name == column }?.type ?? "text"
        switch value {
        case .text(let text)?:
            return try await connection.query("UPDATE \(shape.quotedName) SET \(quoted) = $2::\(type) WHERE ctid = $1::tid RETURNING ctid::text", [ctid, text]).scalar(String.self)
        case .null?:
            return try await connection.query("UPDATE \(shape.quotedName) SET \(quoted) = NULL WHERE ctid = $1::tid RETURNING ctid::text", [ctid]).scalar(String.self)
        case .default?, nil:
            return try await connection.query("UPDATE \(shape.quotedName) SET \(quoted) = \(quoted) WHERE ctid = $1::tid RETURNING ctid::text", [ctid]).scalar(String.self)
        }
    }

    /// The column the base UPDATE changes: the first ordinary one (not a key, not fixed), set to another value.
    /// With `onlyRequired`, a NOT NULL one (the optional columns are NULL on purpose: a filled one was refused).
    /// `avoiding`: columns whose generated values were refused (the row holds an edge value there instead).
    func updateTarget(serial: Int, onlyRequired: Bool = false, avoiding: Set<String> = []) -> (String, GeneratedValue?) {
        let keyColumns = Set(shape.primaryKey + shape.foreignKeys.flatMap(\.columns))
        for name in updateColumns where !keyColumns.contains(name) && fixedValues[name] == nil && !avoiding.contains(name) {
            if let column = shape.columns.first(where: { $0.name == name && !$0.isIdentity && !$0.isGenerated }), let value = shape.normalValue(column, serial: serial) {
                return (column.name, value)
            }
        }
        for column in shape.columns where !keyColumns.contains(column.name) && !column.isIdentity && !column.isGenerated && fixedValues[column.name] == nil
            && (!onlyRequired || column.notNull) && !avoiding.contains(column.name) {
            if let value = shape.normalValue(column, serial: serial) { return (column.name, value) }
        }
        return (shape.columns.first { !$0.isGenerated && !$0.isIdentity }?.name ?? shape.columns[0].name, nil)
    }

    /// Inserts a row into `table` (and its own parents first); returns the values of `columns` as written.
    private func insertParent(_ table: QualifiedName, columns: [String], on connection: PostgresConnection, serial: inout Int, visiting: inout Set<QualifiedName>) async throws -> [GeneratedValue] {
        guard visiting.insert(table).inserted, visiting.count < 8 else {
            throw SetupFailure(message: "\(shape.table) refers to \(table) in a cycle (or too deep a chain of foreign keys): give the key columns values in the spec")
        }
        defer { visiting.remove(table) }
        guard let parent = try await TableShape.read(table, on: connection) else {
            throw SetupFailure(message: "\(shape.table) refers to \(table), which cannot be read")
        }
        var values: [String: GeneratedValue] = [:]
        for key in parent.foreignKeys where key.parent != table {
            let keyValues = try await insertParent(key.parent, columns: key.parentColumns, on: connection, serial: &serial, visiting: &visiting)
            for (column, value) in zip(key.columns, keyValues) { values[column] = value }
        }
        serial += 1
        var names: [String] = []
        var placeholders: [String] = []
        var parameters: [(any PostgresEncodable)?] = []
        for column in parent.columns where values[column.name] == nil && !column.isIdentity && !column.isGenerated && !column.hasDefault {
            if let value = parent.normalValue(column, serial: serial) { values[column.name] = value } else if column.notNull {
                throw SetupFailure(message: "cannot generate a value for \(table).\(column.name) (type \(column.type)), needed for a parent row of \(shape.table)")
            }
        }
        for column in parent.columns {
            guard case .text(let text)? = values[column.name] else { continue }
            names.append(PostgresIdentifier.quote(column.name))
            parameters.append(text)
            placeholders.append("$\(parameters.count)::\(column.type)")
        }
        let returning = columns.map { "\(PostgresIdentifier.quote($0))::text" }.joined(separator: ", ")
        let sql = names.isEmpty
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
    private func smallestFailingSize(row: [String: GeneratedValue], column: String, original: String, sqlState: String?, on connection: PostgresConnection) async throws -> String? {
        let unit = String(original.first ?? "x")
        let isJSON = original.hasPrefix("{\"blob\": \"")
        func value(_ length: Int) -> String { isJSON ? "{\"blob\": \"" + String(repeating: "y", count: length) + "\"}" : String(repeating: unit, count: length) }
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
        var low = 0, high = isJSON ? 20_000 : original.utf8.count  // as many units as the original has bytes: multi-byte text shortens too
        guard try await fails(high), try await !fails(low) else { return nil }
        while high - low > 1 {
            let middle = (low + high) / 2
            if try await fails(middle) { high = middle } else { low = middle }
        }
        return "once `\(column)` reaches \(value(high).utf8.count.formatted()) bytes (at \(value(low).utf8.count.formatted()) it still works)"
    }

    private func describe(_ values: [String: GeneratedValue]) -> String {
        shape.columns.compactMap { column in values[column.name].map { "\(column.name) = \($0)" } }.joined(separator: ", ")
    }
}
