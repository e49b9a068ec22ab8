public import Logging
import PGEventsPostgres

/// SQL sent over the WebSocket (GC2's `RunQueryTask`), off unless `sql.enabled`. Each statement runs in its own
/// `READ ONLY` transaction as the token's role (`SET LOCAL ROLE`), with `statement_timeout`, through a cursor
/// (`DECLARE … CURSOR FOR <statement>` sent with the extended protocol, so it is exactly one query: no
/// `; RESET ROLE`, no `SET ROLE`, no second statement), and at most `max_rows` rows are fetched.
///
/// The role must be a plain one: superuser roles are refused, and so is a role that may execute
/// `pg_catalog.set_config` (with it, a query could change its role mid-statement:
/// `REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC` in the database).
struct SQLRunner: Sendable {
    let settings: ServeConfiguration.SQL
    let authorizer: RelationAuthorizer
    let logger: Logger

    /// The JSON answer to `sql` from the client `identity`: `{"success":true,"data":[…],"total_rows":N,"format":"json"}`
    /// or `{"success":false,"message":…}`.
    func answer(_ sql: String, identity: TokenIdentity) async -> String {
        guard settings.enabled else { return Self.disabled }
        guard !sql.utf8.contains(0) else { return Self.failure("the statement holds a NUL byte") }
        do {
            let configuration = try PostgresConfiguration(authorizer.url(database: identity.database))
            return try await PostgresConnection.withConnection(configuration, logger: logger) { db in
                try await run(sql, role: identity.role, on: db)
            }
        } catch let error as PostgresError {
            return Self.failure(error.message, sqlState: error.sqlState)
        } catch {
            return Self.failure("\(error)")
        }
    }

    private func run(_ sql: String, role: String, on db: PostgresConnection) async throws -> String {
        let checks = try await db.query(
            """
            SELECT r.rolsuper, has_function_privilege(r.oid, 'pg_catalog.set_config(text, text, boolean)', 'EXECUTE')
              FROM pg_roles r WHERE r.rolname = $1
            """, [role])
        guard checks.count == 1 else { return Self.failure("the token's role does not exist in this database") }
        if checks[0][0] == "t" { return Self.failure("SQL is not run as a superuser role") }
        if checks[0][1] == "t" {
            return Self.failure(
                "the token's role may execute set_config, with which a query could change its role; revoke it first (REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC)"
            )
        }
        try await db.execute("BEGIN TRANSACTION READ ONLY")
        do {
            let milliseconds = max(1, Int((settings.statementTimeout * 1000).rounded()))
            try await db.query("SELECT set_config('statement_timeout', $1, true)", ["\(milliseconds)"])
            try await db.query("SELECT set_config('role', $1, true)", [role])  // SET LOCAL ROLE, with the name as a parameter
            try await db.query("DECLARE pgevents_sql NO SCROLL CURSOR FOR " + sql)
            let rows = try await db.query("FETCH FORWARD \(settings.maxRows + 1) FROM pgevents_sql")
            try await db.execute("ROLLBACK")
            return Self.success(rows, cap: settings.maxRows)
        } catch {
            if db.isUsable { _ = try? await db.execute("ROLLBACK") }
            throw error
        }
    }

    /// The answer to every statement while `sql.enabled` is off.
    static let disabled = failure("SQL over this connection is disabled (sql.enabled in the gateway's configuration)")

    static func failure(_ message: String, sqlState: String? = nil) -> String {
        var object: [String: JSONValue] = ["success": .bool(false), "message": .string(message)]
        if let sqlState { object["code"] = .string(sqlState) }
        return JSONValue.object(object).text
    }

    static func success(_ result: PostgresResult, cap: Int) -> String {
        let rows = result.prefix(cap).map { row in
            JSONValue.object(
                Dictionary(
                    result.columns.enumerated().map { index, column in
                        (column.name, convert(row[index], type: column.typeOID))
                    }, uniquingKeysWith: { first, _ in first }))
        }
        var object: [String: JSONValue] = [
            "success": .bool(true), "data": .array(rows), "total_rows": .number(Double(rows.count)), "format": .string("json"),
        ]
        if result.count > cap { object["truncated"] = .bool(true) }
        return JSONValue.object(object).text
    }

    /// A value in PostgreSQL's text format as JSON by its type (GC2's convert_types): numbers, booleans and JSON
    /// as themselves, everything else as text.
    static func convert(_ text: String?, type: UInt32) -> JSONValue {
        guard let text else { return .null }
        switch type {
        case 16: return .bool(text == "t")
        case 20, 21, 23, 26, 700, 701, 1700:
            if let number = Double(text), number.isFinite { return .number(number) }
            return .string(text)
        case 114, 3802: return JSONValue.parse(text) ?? .string(text)
        default: return .string(text)
        }
    }
}
