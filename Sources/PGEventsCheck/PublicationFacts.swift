import Foundation
import PGEventsHarness
import PGEventsPostgres

/// What the catalog says about a table and the publication its spec names, read after the migrations: enough to
/// judge the publication without a slot, and to know whether a slot can be read at all.
struct PublicationFacts: Sendable {
    /// The server's `wal_level`: a slot needs `logical`.
    var walLevel: String
    var majorVersion: Int
    /// Every publication of the database (to name them when the spec's is missing).
    var publications: [String]
    /// The spec's publication exists.
    var exists: Bool
    /// `FOR ALL TABLES`.
    var allTables = false
    /// What the publication publishes (`pubinsert`, `pubupdate`, `pubdelete`, `pubtruncate`).
    var published: Set<PublishedOperation> = []
    /// How the table is in it (`directly`, `FOR ALL TABLES`, `FOR TABLES IN SCHEMA app`); nil: it is not.
    var membership: String?
    /// The row filter, as the server writes it back; nil: none.
    var rowFilter: String?
    /// The published columns (the column list, or every column that is not generated).
    var publishedColumns: [String] = []
    /// Whether a column list limits them.
    var hasColumnList = false
    /// The spec's row filter as the server writes it back, or why the server refused it.
    var specRowFilter: Result<String, RefusedFilter>?
    /// `pg_class.relreplident`: `d` default (the primary key), `n` nothing, `f` full, `i` an index.
    var identity: Character
    /// The identity's key columns: the primary key (`d`), the index's columns (`i`), every column (`f`); empty: none.
    var identityColumns: [String]
    /// The index of `REPLICA IDENTITY USING INDEX`.
    var identityIndex: String?
    /// The table's columns that are not generated, in order.
    var columns: [String]

    struct RefusedFilter: Error, Sendable { var message: String }

    /// `REPLICA IDENTITY DEFAULT (the primary key id)`, as the report says it.
    var identityDescription: String {
        switch identity {
        case "f": "REPLICA IDENTITY FULL"
        case "n": "REPLICA IDENTITY NOTHING"
        case "i": "REPLICA IDENTITY USING INDEX \(identityIndex ?? "?") (\(identityColumns.joined(separator: ", ")))"
        default:
            identityColumns.isEmpty
                ? "REPLICA IDENTITY DEFAULT and no primary key"
                : "REPLICA IDENTITY DEFAULT (the primary key \(identityColumns.joined(separator: ", ")))"
        }
    }

    /// Reads the facts of `table` and `spec.name` on `connection` (a database with the migrations applied).
    static func read(_ table: QualifiedName, _ spec: PublicationSpec, on connection: PostgresConnection) async throws -> PublicationFacts {
        let walLevel = try await connection.query("SELECT current_setting('wal_level')").scalar(String.self)
        let major = try await connection.query("SELECT current_setting('server_version_num')::int / 10000").scalar(Int.self)
        let regclass = PostgresIdentifier.quote(schema: table.schema, name: table.name)
        let publications = try await connection.query("SELECT pubname::text FROM pg_publication ORDER BY 1").map {
            try $0.decode(String.self, at: 0)
        }
        let identityRow = try await connection.query("SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass", [regclass])
        let identity = Character(try identityRow.scalar(String.self))
        let identityColumns: [String]
        var identityIndex: String?
        let columns = try await connection.query(
            """
            SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
            ORDER BY attnum
            """, [regclass]
        ).map { try $0.decode(String.self, at: 0) }
        if identity == "f" {
            identityColumns = columns
        } else if identity == "d" || identity == "i" {
            let rows = try await connection.query(
                """
                SELECT a.attname::text, i.indexrelid::regclass::text FROM pg_index i
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
                 WHERE i.indrelid = $1::regclass AND (CASE $2 WHEN 'd' THEN i.indisprimary ELSE i.indisreplident END)
                 ORDER BY array_position(i.indkey::int2[], a.attnum)
                """, [regclass, String(identity)])
            identityColumns = try rows.map { try $0.decode(String.self, at: 0) }
            identityIndex = try rows.first?.decode(String.self, at: 1)
        } else {
            identityColumns = []
        }
        var facts = PublicationFacts(
            walLevel: walLevel, majorVersion: major, publications: publications, exists: publications.contains(spec.name),
            identity: identity, identityColumns: identityColumns, identityIndex: identityIndex, columns: columns)
        guard facts.exists else { return facts }

        let flags = try await connection.query(
            "SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1", [spec.name])
        guard let row = flags.first else { return facts }
        facts.allTables = try row.decode(Bool.self, at: 0)
        for (index, operation) in PublishedOperation.allCases.enumerated() where try row.decode(Bool.self, at: index + 1) {
            facts.published.insert(operation)
        }
        // pg_publication_tables lists the tables of FOR ALL TABLES and FOR TABLES IN SCHEMA too; from 15 on, with
        // the column list and the row filter.
        let member = try await connection.query(
            major >= 15
                ? """
                SELECT array_to_json(attnames)::text, rowfilter FROM pg_publication_tables
                 WHERE pubname = $1 AND schemaname = $2 AND tablename = $3
                """
                : "SELECT NULL::text, NULL::text FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
            [spec.name, table.schema, table.name])
        facts.publishedColumns = columns
        if let row = member.first {
            if facts.allTables {
                facts.membership = "FOR ALL TABLES"
            } else if try await connection.query(
                """
                SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = $1 AND r.prrelid = $2::regclass
                """, [spec.name, regclass]
            ).first != nil {
                facts.membership = "directly"
            } else {
                facts.membership = major >= 15 ? "FOR TABLES IN SCHEMA \(table.schema)" : "as a partition of a published table"
            }
            if let json = try row.decode(String?.self, at: 0),
                let names = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String]
            {
                facts.publishedColumns = names
            }
            facts.rowFilter = try row.decode(String?.self, at: 1)
            if major >= 15 {
                facts.hasColumnList =
                    try await connection.query(
                        """
                        SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
                         WHERE p.pubname = $1 AND r.prrelid = $2::regclass AND r.prattrs IS NOT NULL
                        """, [spec.name, regclass]
                    ).first != nil
            }
        }
        if let filter = spec.rowFilter {
            facts.specRowFilter = await canonical(filter, of: regclass, major: major, on: connection)
        }
        return facts
    }

    /// The spec's row filter as the server writes it back (`pg_get_expr`), for comparing with the publication's:
    /// a publication with it is created and rolled back.
    private static func canonical(_ filter: String, of regclass: String, major: Int, on connection: PostgresConnection) async -> Result<
        String, RefusedFilter
    > {
        guard major >= 15 else { return .failure(RefusedFilter(message: "row filters need PostgreSQL 15 or later")) }
        do {
            try await connection.execute("BEGIN")
            try await connection.execute("CREATE PUBLICATION pgevents_check_filter FOR TABLE \(regclass) WHERE (\(filter))")
            let written = try await connection.query(
                """
                SELECT pg_get_expr(r.prqual, r.prrelid) FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
                 WHERE p.pubname = 'pgevents_check_filter'
                """
            ).scalar(String.self)
            try await connection.execute("ROLLBACK")
            return .success(written)
        } catch {
            _ = try? await connection.execute("ROLLBACK")
            return .failure(RefusedFilter(message: error.message + (error.sqlState.map { " (SQLSTATE \($0))" } ?? "")))
        }
    }
}
