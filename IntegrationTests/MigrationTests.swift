import Foundation
import PGEventsHarness
import PGEventsPostgres
import Testing

/// Writes `files` into a new temporary directory and returns its path.
func migrationDirectory(_ files: [String: String]) throws -> String {
    let directory = NSTemporaryDirectory() + "pgevents-migrations-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for (name, text) in files { try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }
    return directory
}

@Suite("Applying migrations")
struct MigrationTests {
    @Test("files apply in lexical order, each in its own transaction")
    func order() async throws {
        let directory = try migrationDirectory([
            "002_insert.sql": "INSERT INTO events (kind) VALUES ('second file');",
            "001_create.sql": "CREATE TABLE events (id serial PRIMARY KEY, kind text NOT NULL);",
            "notes.txt": "not a migration",
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let migrations = try MigrationSet(directory: directory)
        #expect(migrations.files.map(\.name) == ["001_create.sql", "002_insert.sql"])
        let connection = try await Shared.database().connect()
        #expect(try await migrations.apply(to: connection) == ["001_create.sql", "002_insert.sql"])
        #expect(try await connection.query("SELECT kind FROM events").scalar(String.self) == "second file")
        await connection.close()
    }

    @Test("a failing file is reported as FILE:LINE:COLUMN with SQLSTATE, rolled back, and nothing after it runs")
    func failure() async throws {
        let directory = try migrationDirectory([
            "001_ok.sql": "CREATE TABLE a (id int);",
            "002_bad.sql": "CREATE TABLE b (id int);\n\nCREATE TABLE c (\n  id int,\n  name txet\n);",
            "003_never.sql": "CREATE TABLE d (id int);",
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await Shared.database().connect()
        let error = await #expect(throws: MigrationError.self) { try await MigrationSet(directory: directory).apply(to: connection) }
        #expect(error?.file.hasSuffix("002_bad.sql") == true)
        #expect(error?.line == 5)
        #expect(error?.column == 8)
        #expect(error?.sqlState == "42704")
        #expect(error?.description.contains("002_bad.sql:5:8: ERROR 42704: type \"txet\" does not exist") == true)
        let tables = try await connection.query(
            "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relname IN ('a','b','c','d')"
        ).scalar(String.self)
        #expect(tables == "a")  // b rolled back with its file, d never ran
        await connection.close()
    }

    @Test("an error without a position points at the statement that failed")
    func executionError() async throws {
        let directory = try migrationDirectory([
            "001.sql": "CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1);\n  INSERT INTO a VALUES (1);\n"
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await Shared.database().connect()
        let error = await #expect(throws: MigrationError.self) { try await MigrationSet(directory: directory).apply(to: connection) }
        #expect(error?.line == 3)
        #expect(error?.column == 3)
        #expect(error?.sqlState == "23505")
        #expect(error?.description.contains("DETAIL: Key (id)=(1) already exists.") == true)
        await connection.close()
    }

    @Test(
        "a statement that cannot run in a transaction makes its file run again statement by statement, as psql would; a marker runs it so from the start"
    )
    func noTransaction() async throws {
        let directory = try migrationDirectory([
            "001.sql": "CREATE TABLE a (id int);",
            "002.sql": "INSERT INTO a VALUES (1);\nCREATE INDEX CONCURRENTLY a_id ON a (id);",
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let connection = try await Shared.database().connect()
        let applied = try await MigrationSet(directory: directory).applyReporting(to: connection)
        #expect(applied.map(\.name) == ["001.sql", "002.sql"])
        #expect(applied[0].outsideTransaction == nil)
        #expect(applied[1].outsideTransaction?.contains("line 2") == true, "\(applied)")
        #expect(applied[1].outsideTransaction?.contains("SQLSTATE 25001") == true, "\(applied)")
        #expect(try await connection.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'a_id'").scalar(Int.self) == 1)
        #expect(try await connection.query("SELECT count(*) FROM a").scalar(Int.self) == 1)  // the first attempt was rolled back whole
        await connection.close()

        try "-- pgevents: no-transaction\nCREATE INDEX CONCURRENTLY a_id ON a (id);".write(
            toFile: directory + "/002.sql", atomically: true, encoding: .utf8)
        let fresh = try await Shared.database().connect()
        let marked = try await MigrationSet(directory: directory).applyReporting(to: fresh)
        #expect(marked[1].outsideTransaction == "-- pgevents: no-transaction")
        #expect(try await fresh.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'a_id'").scalar(Int.self) == 1)
        await fresh.close()
    }

    @Test("a missing or empty directory, and a psql meta-command, are input errors")
    func inputErrors() throws {
        #expect(throws: HarnessError.self) { try MigrationSet(directory: "/nonexistent/migrations") }
        let empty = try migrationDirectory(["README": "nothing"])
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let error = #expect(throws: HarnessError.self) { try MigrationSet(directory: empty) }
        #expect(error?.message.contains("no *.sql file") == true)
        let meta = try migrationDirectory(["001.sql": "SELECT 1;\n\\set x 1\n"])
        defer { try? FileManager.default.removeItem(atPath: meta) }
        let problem = #expect(throws: MigrationError.self) { try MigrationSet(directory: meta) }
        #expect(problem?.description.hasSuffix("001.sql:2:1: psql meta-command '\\set' is not SQL; only psql understands it") == true)
    }

    @Test("a template made from migrations is cloned with its schema")
    func template() async throws {
        let directory = try migrationDirectory([
            "001.sql": "CREATE TABLE events (id serial PRIMARY KEY); INSERT INTO events DEFAULT VALUES;"
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await withTemporaryPostgres { server in
            try await server.makeTemplate(migrations: try MigrationSet(directory: directory))
            let connection = try await server.makeDatabase().connect()
            #expect(try await connection.query("SELECT count(*) FROM events").scalar(Int.self) == 1)
            await connection.close()
        }
    }
}
