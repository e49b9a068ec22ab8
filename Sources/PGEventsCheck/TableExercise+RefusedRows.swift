import PGEventsPostgres

/// When the generated row is refused: another row that works, or the constraint that refused it.
extension TableExercise {
    /// The first row like `base` but for one column's edge value that the table takes (inserted and kept); nil when
    /// none does. Each try runs in a transaction of its own, rolled back when refused.
    func rowThatWorks(_ base: [String: GeneratedValue], on writer: PostgresConnection) async throws -> (String, GeneratedValue, String)? {
        let keyColumns = Set(shape.primaryKey + shape.foreignKeys.flatMap(\.columns))
        for column in shape.columns
        where !column.isGenerated && !column.isIdentity && fixedValues[column.name] == nil && !keyColumns.contains(column.name) {
            for (_, value) in shape.edgeValues(column) where value != base[column.name] {
                var row = base
                row[column.name] = value
                if let written = try? await insert(row, on: writer) { return (column.name, value, written) }
            }
        }
        return nil
    }

    /// For a row refused by a CHECK constraint: its name and definition, and the pattern the generator could not
    /// match when it is one of those; nil for other errors.
    func refusingConstraint(_ error: PostgresError, on connection: PostgresConnection) async throws -> String? {
        guard error.sqlState == "23514", let start = error.message.range(of: "check constraint \""),
            let end = error.message[start.upperBound...].firstIndex(of: "\"")
        else { return nil }
        let name = String(error.message[start.upperBound..<end])
        let definition = try? await connection.query(
            """
            SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $2 AND (conrelid = to_regclass($1) OR contypid IN
                (SELECT atttypid FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0)) LIMIT 1
            """, [shape.quotedName, name]
        ).scalar(String.self)
        var text = "\(name): \(definition ?? "(definition unknown)")"
        let unmatched = shape.columns.flatMap(\.checkPatterns).filter {
            $0.constraint == name && $0.kind == .regex && RegexSample.generate($0.pattern) == nil
        }
        if let pattern = unmatched.first {
            text +=
                " — no value could be generated for its pattern '\(pattern.pattern)' (check reads anchors, character classes, groups, alternation and quantifiers, not look-arounds, back-references or word boundaries)"
        }
        return text
    }
}
