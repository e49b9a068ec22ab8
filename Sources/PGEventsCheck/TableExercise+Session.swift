import PGEventsHarness
import PGEventsPostgres

extension TableExercise {
    /// One exercise's state: the writer, the notifications heard so far, the serial numbers and parent rows
    /// generated, and the operations recorded. One task uses it, phase after phase.
    final class Session {
        let exercise: TableExercise
        let writer: PostgresConnection
        private var notifications: PostgresNotificationSequence.AsyncIterator
        private var fence = 0
        private var serial = 1
        private(set) var parentValues: [String: GeneratedValue] = [:]
        private var visiting: Set<QualifiedName>
        /// Foreign keys that are part of the primary key (a membership table: (channel_id, user_id)) need new
        /// parents for every row, or the second row repeats the first one's key.
        private let keyedForeignKeys: [TableShape.ForeignKey]
        /// Optional columns are filled, unless a filled row was refused (a CHECK across columns, e.g.
        /// "finished_at is set exactly when state = 'done'"): then they are left NULL in this row and every later one.
        private var optionalColumnsNull = false
        /// Values of a row that worked after the generated one was refused: every later row takes them.
        private var overrides: [String: GeneratedValue] = [:]
        private let keyColumns: Set<String>
        private(set) var operations: [ExercisedOperation] = []
        /// What the slot gave since the last statement, for the next operation recorded.
        private var slotChanges: [PublishedChange]?

        var shape: TableShape { exercise.shape }
        var fixedValues: [String: String] { exercise.fixedValues }

        /// Listens on every channel involved and on the fence, and writes the table's parent rows (their
        /// notifications are not this table's).
        init(_ exercise: TableExercise, writer: PostgresConnection, listener: PostgresConnection) async throws {
            self.exercise = exercise
            self.writer = writer
            let shape = exercise.shape
            for channel in exercise.channels.sorted() + [TableExercise.fenceChannel] { try await listener.listen(channel) }
            notifications = await listener.notifications().makeAsyncIterator()
            visiting = [shape.table]
            keyedForeignKeys = shape.foreignKeys.filter { !Set($0.columns).isDisjoint(with: shape.primaryKey) }
            keyColumns = Set(shape.primaryKey + shape.foreignKeys.flatMap(\.columns))
            for key in shape.foreignKeys {
                let values = try await exercise.insertParent(
                    key.parent, columns: key.parentColumns, on: writer, serial: &serial, visiting: &visiting)
                for (column, value) in zip(key.columns, values) { parentValues[column] = value }
            }
            _ = try await collect()  // the parents' own notifications are not this table's
        }

        /// What arrived since the last call: a fence notification from the writer marks the end.
        private func collect() async throws -> [(channel: String, payload: String)] {
            if let slot = exercise.slot { slotChanges = try await slot.changes() }
            fence += 1
            let marker = String(fence)
            try await writer.notify(TableExercise.fenceChannel, payload: marker)
            var collected: [(channel: String, payload: String)] = []
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                guard let notification = try await notifications.next() else {
                    throw SetupFailure(message: "the listening connection closed")
                }
                if notification.channel == TableExercise.fenceChannel {
                    if notification.payload == marker { return collected }
                    continue
                }
                collected.append((notification.channel, notification.payload))
            }
            throw SetupFailure(message: "no fence notification within 15 s")
        }

        /// A row of ordinary values (the next serial number), with new parents first when the key needs them.
        private func baseRow() async throws -> [String: GeneratedValue] {
            if !keyedForeignKeys.isEmpty {
                for key in keyedForeignKeys {
                    let values = try await exercise.insertParent(
                        key.parent, columns: key.parentColumns, on: writer, serial: &serial, visiting: &visiting)
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
                    throw SetupFailure(
                        message:
                            "cannot generate a value for \(shape.table).\(column.name) of type \(column.type): give it one in the spec (tables.\(shape.table).values.\(column.name))"
                    )
                }
            }
            return values
        }

        /// Runs `statement` and records the operation with the notifications it caused, or with the server's
        /// error (after `undo`); returns what the statement returned, nil when it failed.
        private func attempt<T>(
            _ kind: ExercisedOperation.Kind, _ variant: String, row: String? = nil, column: String? = nil,
            undo: () async -> Void = {}, _ statement: () async throws -> T
        ) async throws -> T? {
            do {
                let value = try await statement()
                record(
                    .init(kind: kind, variant: variant, row: row, notifications: try await collect(), error: nil, column: column))
                return value
            } catch let error as PostgresError {
                await undo()
                record(
                    .init(kind: kind, variant: variant, row: row, notifications: try await collect(), error: error, column: column))
                return nil
            }
        }

        /// Records an operation, with what the slot gave for it.
        private func record(_ operation: ExercisedOperation) {
            var operation = operation
            operation.changes = slotChanges
            slotChanges = nil
            operations.append(operation)
        }

        private func rollback() async { _ = try? await writer.execute("ROLLBACK") }

        // MARK: Phases

        /// The ordinary row: INSERT (again with the optional columns NULL when refused), UPDATE, DELETE.
        func exerciseOrdinaryRow() async throws {
            var base = try await baseRow()
            var ctid: String?
            do {
                ctid = try await insert(base, on: writer)
                record(.init(kind: .insert, variant: "base", row: nil, notifications: try await collect(), error: nil))
            } catch let error as PostgresError {
                // Refused before any trigger ran: try again with the optional columns NULL; if that row is written, it
                // is the ordinary row from now on.
                var retried = false
                if !TableExercise.isTriggerFailure(error), !optionalColumnsNull,
                    shape.columns.contains(where: {
                        !$0.notNull && !keyColumns.contains($0.name) && base[$0.name] != .null && base[$0.name] != .default
                    })
                {
                    _ = try await collect()
                    optionalColumnsNull = true
                    let second = try await baseRow()
                    if let written = try? await insert(second, on: writer) {
                        base = second
                        ctid = written
                        retried = true
                        record(.init(kind: .insert, variant: "base", row: nil, notifications: try await collect(), error: nil))
                    } else {
                        optionalColumnsNull = false
                    }
                }
                if !retried, TableExercise.isTriggerFailure(error) {
                    record(
                        .init(
                            kind: .insert, variant: "base", row: exercise.describe(base), notifications: try await collect(), error: error))
                } else if !retried {
                    _ = try await collect()
                    // Another row that works — the generated row with one column's edge value (NULL, another allowed
                    // value, another length) — is the ordinary row from now on, so that the later checks still run.
                    if let (column, value, written) = try await exercise.rowThatWorks(base, on: writer) {
                        overrides[column] = value
                        base[column] = value
                        ctid = written
                        record(
                            .init(
                                kind: .insert, variant: "base",
                                row: "\(column) = \(value) (the generated row was refused: \(error.message))",
                                notifications: try await collect(), error: nil))
                    } else {
                        var refused = ExercisedOperation(
                            kind: .insert, variant: "base", row: exercise.describe(base), notifications: [], error: error)
                        refused.refusedBy = try await exercise.refusingConstraint(error, on: writer)
                        record(refused)
                    }
                }
            }
            if let current = ctid {
                let (column, value) = exercise.updateTarget(
                    serial: serial + 100_000, onlyRequired: optionalColumnsNull, avoiding: Set(overrides.keys))
                do {
                    ctid = try await update(current, column: column, value: value, on: writer)
                    record(
                        .init(
                            kind: .update, variant: "base", row: "\(column) = \(value?.description ?? column)",
                            notifications: try await collect(), error: nil))
                } catch let error as PostgresError {
                    _ = try await collect()
                    // The new value was refused (a CHECK on the column): the UPDATE that sets it to itself, which the row
                    // already satisfies, still exercises the UPDATE triggers. A refused UPDATE leaves the row where it was.
                    if !TableExercise.isTriggerFailure(error), value != nil,
                        let updated = try? await update(current, column: column, value: nil, on: writer)
                    {
                        ctid = updated
                        record(
                            .init(
                                kind: .update, variant: "base",
                                row: "\(column) = \(column) (\(value?.description ?? "") was refused: \(error.message))",
                                notifications: try await collect(), error: nil))
                    } else {
                        record(
                            .init(
                                kind: .update, variant: "base", row: "\(column) = \(value?.description ?? column)", notifications: [],
                                error: error))
                    }
                }
                if let current = ctid {
                    _ = try await attempt(.delete, "base") {
                        try await writer.query("DELETE FROM \(shape.quotedName) WHERE ctid = $1::tid", [current])
                    }
                }
            }
        }

        /// A rolled-back INSERT, and two rows in one transaction.
        func exerciseTransactions() async throws {
            _ = try await attempt(.rolledBackInsert, "base", undo: rollback) {
                let row = try await baseRow()  // before BEGIN: it may insert parents, and fences only pass outside a transaction
                try await writer.execute("BEGIN")
                _ = try await insert(row, on: writer)
                try await writer.execute("ROLLBACK")
            }
            _ = try await attempt(.twoRowInsert, "base", undo: rollback) {
                let first = try await baseRow()
                let second = try await baseRow()
                try await writer.execute("BEGIN")
                _ = try await insert(first, on: writer)
                _ = try await insert(second, on: writer)
                try await writer.execute("COMMIT")
            }
        }

        /// Edge values, one column at a time: INSERT, then UPDATE (the column set to itself) and DELETE.
        func exerciseEdgeValues() async throws {
            for column in shape.columns
            where !column.isGenerated && !column.isIdentity && fixedValues[column.name] == nil && parentValues[column.name] == nil {
                for (label, value) in shape.edgeValues(column) {
                    var row = try await baseRow()
                    row[column.name] = value
                    let variant = "\(column.name): \(label)"
                    let described = "\(column.name) = \(value)"
                    var current: String?
                    do {
                        current = try await insert(row, on: writer)
                        record(
                            .init(
                                kind: .insert, variant: variant, row: described, notifications: try await collect(), error: nil,
                                column: column.name))
                    } catch let error as PostgresError {
                        var operation = ExercisedOperation(
                            kind: .insert, variant: variant, row: described, notifications: try await collect(), error: error,
                            column: column.name)
                        // Any text that can be shortened (a long payload, a channel name built from the column): the
                        // smallest failing size, and the example's size when its summary does not say it.
                        if TableExercise.isTriggerFailure(error), case .text(let text) = value, text.unicodeScalars.count > 1 {
                            operation.smallestFailure = try await exercise.smallestFailingSize(
                                row: row, column: column.name, original: text, sqlState: error.sqlState, on: writer)
                            if operation.smallestFailure != nil, !described.hasSuffix("bytes") {
                                operation.row = described + " (\(text.utf8.count.formatted()) bytes)"
                            }
                        }
                        record(operation)
                        continue
                    }
                    guard let inserted = current else { continue }
                    current =
                        try await attempt(.update, variant, row: described, column: column.name) {
                            try await update(inserted, column: column.name, value: nil, on: writer)
                        } ?? inserted
                    guard let updated = current else { continue }
                    _ = try await attempt(.delete, variant, row: described, column: column.name) {
                        try await writer.query("DELETE FROM \(shape.quotedName) WHERE ctid = $1::tid", [updated])
                    }
                }
            }
        }

        /// Each notifying trigger of `alone` on its own: the ordinary row and every edge row again.
        func exerciseTriggersAlone() async throws -> Firings {
            try await exercise.fireAlone(
                exercise.alone,
                rows: {
                    var rows = [try await baseRow()]
                    for column in shape.columns
                    where !column.isGenerated && !column.isIdentity && fixedValues[column.name] == nil && parentValues[column.name] == nil {
                        for (_, value) in shape.edgeValues(column) {
                            var row = try await baseRow()
                            row[column.name] = value
                            rows.append(row)
                        }
                    }
                    return rows
                }, on: writer,
                update: { ctid, trigger in
                    serial += 1
                    let target = TableExercise(
                        shape: shape, fixedValues: fixedValues, channels: exercise.channels, updateColumns: trigger.updateColumns
                    )
                    .updateTarget(serial: serial + 100_000, onlyRequired: optionalColumnsNull, avoiding: Set(overrides.keys))
                    if let updated = try? await update(ctid, column: target.0, value: target.1, on: writer) { return updated }
                    return try await update(ctid, column: target.0, value: nil, on: writer)
                }, collect: collect)
        }

        private func insert(_ values: [String: GeneratedValue], on connection: PostgresConnection) async throws -> String {
            try await exercise.insert(values, on: connection)
        }

        private func update(_ ctid: String, column: String, value: GeneratedValue?, on connection: PostgresConnection) async throws
            -> String
        {
            try await exercise.update(ctid, column: column, value: value, on: connection)
        }
    }
}
