import PGEventsHarness
import Testing

@Suite("Splitting SQL files into statements")
struct SQLScriptTests {
    @Test("statements split at semicolons, with their start line and column")
    func basics() throws {
        let script = try SQLScript("CREATE TABLE a (id int);\n\n  INSERT INTO a VALUES (1);\nSELECT 1")
        #expect(script.statements.map(\.text) == ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)", "SELECT 1"])
        #expect(script.statements.map(\.line) == [1, 3, 4])
        #expect(script.statements.map(\.column) == [1, 3, 1])
        #expect(!script.noTransaction)
    }

    @Test("semicolons inside literals, identifiers, dollar quotes and comments do not split")
    func quoting() throws {
        let sql = """
            -- a comment; with a semicolon
            SELECT 'a;b', 'it''s;', E'back\\';slash', "odd;name" FROM t; /* block; /* nested; */ still */
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$
            BEGIN
              PERFORM pg_notify('c', 'x;y');  -- inside the body
              RETURN NEW;
            END $body$;
            CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;
            SELECT $1, a$b FROM t
            """
        let script = try SQLScript(sql)
        #expect(script.statements.count == 4)
        #expect(script.statements[0].text.hasPrefix("SELECT 'a;b'"))
        #expect(script.statements[0].line == 2)
        #expect(script.statements[1].text.hasPrefix("CREATE FUNCTION f()"))
        #expect(script.statements[1].text.hasSuffix("END $body$"))
        #expect(script.statements[1].line == 3)
        #expect(script.statements[2].text == "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$")
        #expect(script.statements[3].text == "SELECT $1, a$b FROM t")
    }

    @Test("error positions inside a statement map to file lines and columns")
    func locations() throws {
        let script = try SQLScript("SELECT 1;\nCREATE TABLE t (\n  id int,\n  bad typo\n);")
        let statement = script.statements[1]
        // 1-based position of "typo" in the statement text, as PostgreSQL would report it.
        let offset = statement.text.distance(from: statement.text.startIndex, to: statement.text.firstRange(of: "typo")!.lowerBound) + 1
        let location = statement.location(ofCharacter: offset)
        #expect(location.line == 4)
        #expect(location.column == 7)
    }

    @Test("-- pgevents: no-transaction before the first statement is honoured")
    func noTransaction() throws {
        #expect(try SQLScript("-- pgevents: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);").noTransaction)
        #expect(try SQLScript("-- PGEVENTS:NO-TRANSACTION\nSELECT 1;").noTransaction)
        #expect(try !SQLScript("SELECT 1;\n-- pgevents: no-transaction\nSELECT 2;").noTransaction)
    }

    @Test("comment-only files and empty statements produce nothing")
    func empty() throws {
        #expect(try SQLScript("").statements.isEmpty)
        #expect(try SQLScript("-- nothing\n/* here */\n;;\n").statements.isEmpty)
    }

    @Test("broken files are reported with line and column", arguments: [
        ("SELECT 'unterminated;\nSELECT 2;", "unterminated string literal", 1, 8),
        ("SELECT 1;\n/* open comment", "unterminated /* comment", 2, 1),
        ("SELECT 1;\nCREATE FUNCTION f() AS $x$ body", "unterminated dollar-quoted string $x$", 2, 24),
        ("SELECT \"open", "unterminated quoted identifier", 1, 8),
        ("SELECT 1;\n\\i other.sql\n", "psql meta-command '\\i' is not SQL; only psql understands it", 2, 1),
    ])
    func problems(sql: String, message: String, line: Int, column: Int) {
        let problem = #expect(throws: SQLScript.Problem.self) { try SQLScript(sql) }
        #expect(problem?.message == message)
        #expect(problem?.line == line)
        #expect(problem?.column == column)
    }
}
