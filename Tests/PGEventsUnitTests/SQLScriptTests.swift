import PGEventsHarness
import PGEventsSystem
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

    @Test(
        "broken files are reported with line and column",
        arguments: [
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

    // Found by fuzzing (FuzzTests, Benchmarks/Fuzz): the message quoted the rest of the line raw, control
    // characters and all, however long.
    @Test("a psql meta-command is named escaped and cut short")
    func metaCommandMessage() {
        let control = #expect(throws: SQLScript.Problem.self) { try SQLScript("SELECT 1;\n\\i\u{1D}x\u{1B}[2J y") }
        #expect(control?.message == "psql meta-command '\\i\\u{1D}x\\u{1B}[2J' is not SQL; only psql understands it")
        #expect(control?.line == 2)
        let long = #expect(throws: SQLScript.Problem.self) { try SQLScript("\\" + String(repeating: "\"", count: 5_000)) }
        #expect(long?.message == "psql meta-command '\\" + String(repeating: "\"", count: 40) + "…' is not SQL; only psql understands it")
    }

    // Found by fuzzing: trimming a statement walked the whole text once per trailing white space character,
    // so a statement ending in 64,000 tabs took 30 s (release). The input stays, as a hang guard; how long it
    // takes is not asserted (a timed assertion failed on the loaded machine at 3.1 s).
    @Test("long runs of white space are trimmed", .timeLimit(.minutes(1)))
    func longWhiteSpace() throws {
        let sql = "SELECT 1;\r\n  SELECT\r\n  2 " + String(repeating: "\t", count: 64_000) + ";" + String(repeating: " \n", count: 32_000)
        let script = try SQLScript(sql)
        #expect(script.statements.map(\.text) == ["SELECT 1", "SELECT\r\n  2"])
        #expect(" \t a b \r\n".trimmed() == "a b")
        #expect(" \t a b \r\n".trimmedTrailing() == " \t a b")
        #expect(" \n\t".trimmed() == "")
        #expect(" \n\t".trimmedTrailing() == "")
        #expect("".trimmed() == "")
        #expect("x".trimmed() == "x")
    }
    // Found while fuzzing: the text was read as Swift Characters, and a quote or semicolon followed by a
    // combining mark is one Character that is neither, while PostgreSQL sees the quote (or the semicolon).
    @Test("quotes and semicolons followed by combining marks are what PostgreSQL sees: code points")
    func combiningMarks() throws {
        let script = try SQLScript("SELECT '\u{301};';\nSELECT \"\u{20DD};\";\nSELECT 3;\u{301}")
        #expect(script.statements.map(\.text) == ["SELECT '\u{301};'", "SELECT \"\u{20DD};\"", "SELECT 3", "\u{301}"])
        // Lines and columns count code points, as PostgreSQL's positions do: e + U+0301 is two.
        let columns = try SQLScript("e\u{301};SELECT 2;\r\nSELECT e\u{301}x")
        #expect(columns.statements.map(\.column) == [1, 4, 1])
        #expect(columns.statements[2].line == 2)
        #expect(columns.statements[2].location(ofCharacter: 10) == (2, 10))
    }

    // Found by fuzzing: looking for the end of a dollar quote copied the tag's length at every `$`, so a long
    // tag and a body of dollars took seconds (6 s for 64 kB, release). How long it takes is not asserted; the
    // time limit is a hang guard.
    @Test("a long dollar-quote tag in an unterminated string is refused", .timeLimit(.minutes(1)))
    func longDollarTag() {
        let problem = #expect(throws: SQLScript.Problem.self) {
            try SQLScript("SELECT $" + String(repeating: "a", count: 16_000) + "$" + String(repeating: "$", count: 48_000))
        }
        #expect(problem?.message == "unterminated dollar-quoted string $" + String(repeating: "a", count: 39) + "…")
        #expect(problem?.column == 8)
    }
}
