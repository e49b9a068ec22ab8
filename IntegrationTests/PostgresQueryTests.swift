import PGEventsHarness
import PGEventsPostgres
import Testing

@Suite("Queries, errors and typed rows on a real server")
struct PostgresQueryTests {
    @Test("parameters, typed rows, command tags and affected rows")
    func typedRows() async throws {
        let connection = try await Shared.database().connect()
        try await connection.execute("CREATE TABLE items (id bigint PRIMARY KEY, name text, price float8, active bool)")
        let insert = try await connection.query(
            "INSERT INTO items VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)",
            [1, "one's", 1.5, true, 2, nil, nil, false])
        #expect(insert.commandTag == "INSERT 0 2")
        #expect(insert.affectedRows == 2)

        let rows = try await connection.query("SELECT id, name, price, active FROM items ORDER BY id")
        #expect(rows.count == 2)
        #expect(rows.columns.map(\.name) == ["id", "name", "price", "active"])
        #expect(try rows[0].decode(Int64.self, column: "id") == 1)
        #expect(try rows[0].decode(String.self, column: "name") == "one's")
        #expect(try rows[0].decode(Double.self, column: "price") == 1.5)
        #expect(try rows[0].decode(Bool.self, column: "active") == true)
        #expect(try rows[1].decode(String?.self, column: "name") == nil)

        let error = #expect(throws: PostgresError.self) { try rows[1].decode(String.self, column: "name") }
        #expect(error?.code == .decoding)
        #expect(error?.message.contains("'name'") == true)
        let wrongType = #expect(throws: PostgresError.self) { try rows[0].decode(Int.self, column: "name") }
        #expect(wrongType?.message.contains("one's") == true)

        let update = try await connection.query("UPDATE items SET active = NOT active")
        #expect(update.affectedRows == 2)
        await connection.close()
    }

    @Test("server errors carry SQLSTATE, position, detail and hint; the connection survives")
    func serverErrors() async throws {
        let connection = try await Shared.database().connect()
        let syntax = await #expect(throws: PostgresError.self) { try await connection.execute("SELECT 1 FROM WHERE") }
        #expect(syntax?.sqlState == "42601")
        #expect(syntax?.position == 15)
        #expect(syntax?.severity == "ERROR")

        try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
        try await connection.query("INSERT INTO t VALUES ($1)", [1])
        let duplicate = await #expect(throws: PostgresError.self) { try await connection.query("INSERT INTO t VALUES ($1)", [1]) }
        #expect(duplicate?.sqlState == "23505")
        #expect(duplicate?.detail == "Key (id)=(1) already exists.")

        let hinted = await #expect(throws: PostgresError.self) { try await connection.execute("SELECT nosuchfunction(1)") }
        #expect(hinted?.sqlState == "42883")
        #expect(hinted?.hint != nil)

        #expect(try await connection.query("SELECT $1::int + 1", [41]).scalar(Int.self) == 42)
        await connection.close()
    }

    @Test("server notices are collected, not printed")
    func notices() async throws {
        let connection = try await Shared.database().connect()
        try await connection.execute("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$")
        let notices = await connection.takeNotices()
        #expect(notices == ["NOTICE:  hello from plpgsql"])
        #expect(await connection.takeNotices().isEmpty)
        await connection.close()
    }

    @Test("a NUL byte in a parameter is refused with a clear error")
    func nulParameter() async throws {
        let connection = try await Shared.database().connect()
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT $1::text", ["a\u{0}b"]) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("$1") == true)
        await connection.close()
    }

    @Test("transaction() commits, and rolls back when the body throws")
    func transactions() async throws {
        let connection = try await Shared.database().connect()
        try await connection.execute("CREATE TABLE t (id int)")
        try await connection.transaction { connection in try connection.query("INSERT INTO t VALUES (1)") }
        await #expect(throws: PostgresError.self) {
            try await connection.transaction { connection in
                try connection.query("INSERT INTO t VALUES (2)")
                try connection.query("INSERT INTO nosuchtable VALUES (3)")
            }
        }
        #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 1)
        await connection.close()
    }

    @Test("connecting over TCP needs the password, and the password never shows in errors or descriptions")
    func tcpAndSecrets() async throws {
        let server = try await Shared.postgres()
        let connection = try await PostgresConnection.connect(to: server.url)
        #expect(try await connection.query("SELECT current_user").scalar(String.self) == "postgres")
        #expect(!connection.configuration.description.contains(server.password))
        await connection.close()

        let wrong = server.url.replacing(server.password, with: "not-the-password")
        let error = await #expect(throws: PostgresError.self) { try await PostgresConnection.connect(to: wrong) }
        #expect(error?.code == .connectionFailed)
        #expect(error?.description.contains("not-the-password") == false)
        #expect(error?.description.contains("password authentication failed") == true)
    }

    @Test("connecting where no server listens fails with connectionFailed")
    func nothingListening() async throws {
        let error = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(to: "host=/nonexistent-dir port=5 dbname=x connect_timeout=2")
        }
        #expect(error?.code == .connectionFailed)
    }
}
