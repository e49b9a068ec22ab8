public import PGEventsPostgres
import PGEventsSystem

/// A channel's row lookup (`fetch:`), prepared against the catalog: the rows of a chunk's keys in one query,
/// each key matched **exactly** against the key column, and a key that is not a value of the column's type
/// reported for its event alone.
///
/// - The table and column are checked when the lookup is prepared; their names are quoted, and a payload's key
///   is only ever a parameter (one `text[]` for the chunk, one index lookup per key).
/// - A key is cast to the column's type *without* its modifier, so a cast never truncates or rounds it into
///   another row's key: `'abcdefg'` is not `varchar(5)`'s `'abcde'`, `1.234` is not `numeric(3,1)`'s `1.2`,
///   and for `real`/`double precision` the key must survive the cast digit for digit. Such a key is
///   ``Outcome/notExact(_:)``.
/// - A key PostgreSQL cannot read as the type (`'not-a-date'` for a `date`, an unknown enum label, `1e99` for
///   an `integer`) fails the chunk's query with a data exception (SQLSTATE class 22); the lookup then halves the
///   keys until it has the failing ones, each with PostgreSQL's error, and reads the others' rows.
public struct RowFetch: Sendable {
    public let channel: String
    public let spec: FetchSpec
    /// The key column's type as the catalog names it (`character varying(5)`), and without its modifier.
    public let keyType: String
    let baseType: String
    let sql: String

    /// What one key's lookup found.
    public enum Outcome: Sendable {
        /// The row (as a JSON object), or nil when no row has that key.
        case row(EventValue?)
        /// The key is a value of the type only after rounding or truncation: the message says so.
        case notExact(String)
        /// PostgreSQL cannot read the key as the column's type.
        case failed(PostgresError)
    }

    /// Checks `spec` against the catalog and builds its query; throws `ProcessorError.invalidConfiguration` naming
    /// a missing table or column, or a column type that cannot be compared with `=`.
    public static func prepare(channel: String, spec: FetchSpec, on connection: PostgresConnection) async throws -> RowFetch {
        let table = "\(PostgresIdentifier.quote(spec.schema)).\(PostgresIdentifier.quote(spec.table))"
        let types = try await connection.query(
            """
            SELECT format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL) FROM pg_attribute a
             WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
            """, [table, spec.keyColumn])
        guard let row = types.first, let keyType = try row.decode(String?.self, at: 0), let baseType = try row.decode(String?.self, at: 1)
        else {
            let exists = try await connection.query("SELECT to_regclass($1) IS NOT NULL", [table]).scalar(Bool.self)
            throw ProcessorError(
                code: .invalidConfiguration,
                message: exists
                    ? "channels.\(channel).fetch: table \(spec.schema).\(spec.table) has no column \(spec.keyColumn)"
                    : "channels.\(channel).fetch: there is no table \(spec.schema).\(spec.table) in this database")
        }
        let key = "p.k::\(baseType)"
        let exact: String
        if ["real", "double precision"].contains(baseType) {
            exact = "(\(key))::text::numeric = p.k::numeric"
        } else if keyType != baseType {
            exact = "(\(key))::\(keyType) = \(key)"
        } else {
            exact = "true"
        }
        // A subquery per key: an index lookup each (a join let the planner hash the whole table per chunk).
        let sql = """
            SELECT p.i::int8, CASE WHEN e.exact THEN (SELECT row_to_json(t)::text FROM \(table) AS t \
            WHERE t.\(PostgresIdentifier.quote(spec.keyColumn)) = \(key) LIMIT 1) END, e.exact \
            FROM unnest($1::text[]) WITH ORDINALITY AS p(k, i) CROSS JOIN LATERAL (SELECT \(exact) AS exact) AS e
            """
        let fetch = RowFetch(channel: channel, spec: spec, keyType: keyType, baseType: baseType, sql: sql)
        do {
            _ = try await connection.query(sql, ["{}"])
        } catch {
            if error.isConnectionError { throw error }
            throw ProcessorError(
                code: .invalidConfiguration,
                message:
                    "channels.\(channel).fetch: \(spec.schema).\(spec.table).\(spec.keyColumn) (\(keyType)) cannot be looked up by key: \(error.message)"
            )
        }
        return fetch
    }

    /// The outcome of each key, in order.
    public func look(up keys: [String], on connection: PostgresConnection) async throws -> [Outcome] {
        var outcomes = [Outcome](repeating: .row(nil), count: keys.count)
        var readable: [Int] = []
        for (index, key) in keys.enumerated() {
            if key.utf8.contains(0) {
                outcomes[index] = .notExact("the key contains a NUL byte, which no \(keyType) holds")
            } else {
                readable.append(index)
            }
        }
        try await look(up: readable, in: keys, into: &outcomes, on: connection)
        return outcomes
    }

    private func look(up indices: [Int], in keys: [String], into outcomes: inout [Outcome], on connection: PostgresConnection) async throws
    {
        guard !indices.isEmpty else { return }
        let result: PostgresResult
        do {
            result = try await connection.query(sql, [EventPipeline.textArrayLiteral(indices.map { keys[$0] })])
        } catch {
            // query throws PostgresError only; what is not a data exception is not the keys' fault.
            guard error.sqlState?.hasPrefix("22") == true else { throw error }
            guard indices.count > 1 else {
                outcomes[indices[0]] = .failed(error)
                return
            }
            let half = indices.count / 2
            try await look(up: Array(indices[..<half]), in: keys, into: &outcomes, on: connection)
            try await look(up: Array(indices[half...]), in: keys, into: &outcomes, on: connection)
            return
        }
        for row in result {
            let position = try row.decode(Int.self, at: 0) - 1
            guard indices.indices.contains(position) else { continue }
            let index = indices[position]
            guard try row.decode(Bool.self, at: 2) else {
                outcomes[index] = .notExact(
                    "the key '\(TextExcerpt.excerpt(keys[index], limit: 80))' is not exactly a value of \(keyType) (the type of \(spec.schema).\(spec.table).\(spec.keyColumn)): a cast would change it"
                )
                continue
            }
            outcomes[index] = .row(try row.decode(String?.self, at: 1).flatMap { try? EventValue(json: $0) })
        }
    }
}
