public import Logging
public import PGEventsPostgres

/// Decides which relations a client may read by asking PostgreSQL: each requested name is resolved by the
/// server (`to_regclass`, so quoting and case folding are PostgreSQL's own) and checked with
/// `has_table_privilege(role, relation, privilege)` for the token's role. Never string matching.
public struct RelationAuthorizer: Sendable {
    /// The URL of the database a token's database claim names (`{database}` in the template is replaced).
    let urlTemplate: String
    let privilege: String
    let logger: Logger

    /// An authorizer connecting with `urlTemplate` (a PostgreSQL URL, `{database}` standing for the token's
    /// database) and checking `privilege`.
    public init(urlTemplate: String, privilege: String = "SELECT", logger: Logger) {
        self.urlTemplate = urlTemplate
        self.privilege = privilege
        self.logger = logger
    }

    /// The outcome of a check.
    public enum Decision: Sendable, Equatable {
        /// Every relation may be read; they are given as `schema.table` with the catalog's names.
        case allowed(Set<String>)
        /// This one (as the client wrote it) may not be read, or does not exist, or the role does not exist.
        case notAllowed(String)
    }

    /// The relation's catalog names and whether the role has the privilege on it ($3 false: not checked).
    static let lookup = """
        SELECT n.nspname, c.relname, CASE WHEN $3 THEN has_table_privilege($2, c.oid, $4) ELSE true END
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = to_regclass($1)
        """

    /// The URL for `database`: the template with `{database}` replaced (the name percent-encoded).
    public func url(database: String) -> String {
        let encoded = database.addingPercentEncodingForURLPath()
        return urlTemplate.replacingOccurrences(of: "{database}", with: encoded)
    }

    /// Checks `relations` for `role` in `database`; with `checkPrivileges` false (superusers) only resolves them.
    public func check(_ relations: [String], role: String, database: String, checkPrivileges: Bool) async throws -> Decision {
        try await PostgresConnection.withConnection(PostgresConfiguration(url(database: database)), logger: logger) { db in
            let roleExists = try await db.query("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", [role]).scalar(Bool.self)
            var allowed: Set<String> = []
            for relation in relations {
                // to_regclass: NULL for a name that is not a relation; an error for one that is not even a name
                // ("improper qualified name"), which is not allowed either.
                let result: PostgresResult
                do {
                    result = try await db.query(Self.lookup, [relation, role, checkPrivileges && roleExists, privilege])
                } catch {
                    guard let failure = error as? PostgresError, failure.code == .server else { throw error }
                    return .notAllowed(relation)
                }
                guard result.count == 1, let schema = result[0][0], let table = result[0][1] else { return .notAllowed(relation) }
                if checkPrivileges && (!roleExists || result[0][2] != "t") { return .notAllowed(relation) }
                allowed.insert("\(schema).\(table)")
            }
            return .allowed(allowed)
        }
    }
}

extension String {
    /// Percent-encodes everything but unreserved characters (RFC 3986), for a path segment of a URL.
    func addingPercentEncodingForURLPath() -> String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    private func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
