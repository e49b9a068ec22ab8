import PGEventsPostgres

/// A user function that calls `pg_notify` or runs `NOTIFY`, as `check` reports it when no trigger runs it:
/// projects that notify from application code often do it through such a function.
struct NotifyingFunction: Sendable, Hashable, CustomStringConvertible {
    /// `schema.name(argument types)`.
    var signature: String
    /// Where it sends, as read from its source: `'jobs'`, `TG_ARGV[0]`, `channel` (a parameter).
    var channels: [ChannelSource]

    var description: String {
        "\(signature) notifies on \(channels.map(\.description).joined(separator: ", "))"
    }

    /// The notifying functions that no trigger runs directly, by signature.
    static func untriggered(on connection: PostgresConnection) async throws -> [NotifyingFunction] {
        let notifying = try await Catalog.notifyingFunctions(on: connection)
        guard !notifying.isEmpty else { return [] }
        let rows = try await connection.query(
            """
            SELECT p.oid::int8, n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.oid = ANY($1::oid[]) AND NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgfoid = p.oid AND NOT t.tgisinternal)
             ORDER BY 2
            """, ["{" + notifying.keys.map(String.init).joined(separator: ",") + "}"])
        return try rows.map { row in
            NotifyingFunction(signature: try row.decode(String.self, at: 1), channels: notifying[try row.decode(Int64.self, at: 0)] ?? [])
        }
    }
}
