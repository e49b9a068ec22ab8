public import PGEventsPostgres

/// The SQL pgevents needs in a database (the files of `sql/pgevents/`, compiled in): the journal, `pgevents.emit`,
/// the journal trigger, consumers and their cursors, and the table source. Every file is safe to apply again.
///
/// ```swift
/// try await JournalSchema.install(on: connection)   // in a test's template database, or a migration step
/// ```
public enum JournalSchema {
    /// Applies every file in order, each in a transaction of its own. Throws `PostgresError` naming the file.
    public static func install(on connection: PostgresConnection) async throws {
        for (name, sql) in files {
            do {
                try await connection.execute("BEGIN;\n" + sql + "\nCOMMIT;")
            } catch {
                if connection.isUsable { _ = try? await connection.execute("ROLLBACK") }
                var failure = error
                failure.message = "sql/pgevents/\(name): \(error.message)"
                throw failure
            }
        }
    }
}
