import Testing

@testable import PGEventsPostgres

@Suite("Connection strings and secrets")
struct PostgresConfigurationTests {
    @Test("URLs are parsed by libpq into keywords")
    func url() throws {
        let configuration = try PostgresConfiguration(
            "postgresql://app:s3cr%40t@db.example.com:6543/events?sslmode=disable&application_name=worker")
        #expect(configuration["host"] == "db.example.com")
        #expect(configuration["port"] == "6543")
        #expect(configuration["user"] == "app")
        #expect(configuration["password"] == "s3cr@t")
        #expect(configuration["dbname"] == "events")
        #expect(configuration["sslmode"] == "disable")
        #expect(configuration["application_name"] == "worker")
    }

    @Test("conninfo strings, including quoted values")
    func conninfo() throws {
        let configuration = try PostgresConfiguration(#"host='/tmp/socket dir' port=5432 dbname='my db' password='it\'s' user=x"#)
        #expect(configuration["host"] == "/tmp/socket dir")
        #expect(configuration["password"] == "it's")
        #expect(configuration["dbname"] == "my db")
        #expect(configuration["user"] == "x")
    }

    @Test("the password never appears in description or debugDescription")
    func masking() throws {
        let configuration = try PostgresConfiguration("postgres://u:hunter2@localhost/db")
        #expect(!configuration.description.contains("hunter2"))
        #expect(!configuration.debugDescription.contains("hunter2"))
        #expect(configuration.description.contains("password=********"))
        #expect(configuration.conninfoIncludingSecrets.contains("password=hunter2"))
        #expect(!"\(configuration)".contains("hunter2"))
    }

    @Test(
        "a malformed string is rejected with libpq's reason and no secret",
        arguments: [
            "postgres://u:hunter2@host:notaport/db",
            "host=localhost password=hunter2 nonsense",
            "postgresql://u:hunter2@[::1/db",
            "host=x bogus_keyword=hunter2 password=hunter2",
        ])
    func malformed(input: String) throws {
        let error = #expect(throws: PostgresError.self) { try PostgresConfiguration(input) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.hasPrefix("invalid connection string") == true)
        #expect(error?.description.contains("hunter2") == false)
    }

    @Test("conninfo values are quoted when they need it, so they round-trip through libpq")
    func quoting() throws {
        let original = PostgresConfiguration(parameters: ["host": "/tmp/a b", "dbname": #"it's \odd"#, "user": "plain", "password": ""])
        let reparsed = try PostgresConfiguration(original.conninfoIncludingSecrets)
        #expect(reparsed["host"] == "/tmp/a b")
        #expect(reparsed["dbname"] == #"it's \odd"#)
        #expect(reparsed["user"] == "plain")
        #expect(reparsed["password"] == "")
    }

    @Test("redaction finds URL and conninfo passwords")
    func redaction() {
        #expect(PostgresConfiguration.redact("bad: u:pw1@x", secretsOf: "postgres://u:pw1@x/db") == "bad: u:********@x")
        #expect(PostgresConfiguration.redact("near password = 'a b'", secretsOf: "password = 'a b'") == "near password = '********'")
        #expect(PostgresConfiguration.redact("q pw2", secretsOf: "postgres://h/db?password=pw2") == "q ********")
        #expect(PostgresConfiguration.redact("nothing secret", secretsOf: "host=x") == "nothing secret")
        // A password that starts with a combining mark fuses with the character before it into one Character, so
        // a Character-based replace missed it (found in review after fuzzing; the same held for Redis' AUTH).
        #expect(
            PostgresConfiguration.redact("auth failed for u:\u{301}pw@x", secretsOf: "password=\u{301}pw") == "auth failed for u:********@x"
        )
        #expect("a\u{301}pw and \u{301}pw".redacting("\u{301}pw") == "a******** and ********")
        #expect("keep".redacting("") == "keep")
        #expect("ééé".redacting("é", with: "x") == "xxx")
    }
}

@Suite("Identifier quoting and channel names")
struct PostgresIdentifierTests {
    @Test("identifiers are double-quoted with inner quotes doubled")
    func identifiers() {
        #expect(PostgresIdentifier.quote("events") == #""events""#)
        #expect(PostgresIdentifier.quote("MixedCase") == #""MixedCase""#)
        #expect(PostgresIdentifier.quote(#"a"b"#) == #""a""b""#)
        #expect(PostgresIdentifier.quote(#""; DROP TABLE x; --"#) == #""""; DROP TABLE x; --""#)
        #expect(PostgresIdentifier.quote(schema: "public", name: "event json") == #""public"."event json""#)
    }

    @Test("literals double single quotes")
    func literals() {
        #expect(PostgresIdentifier.literal("it's") == "'it''s'")
        #expect(PostgresIdentifier.literal(#"back\slash"#) == #"'back\slash'"#)
    }

    // A quote followed by a combining mark is one Character; String.replacing left it single, ending the
    // identifier or literal early: `a'\u{301}; DROP TABLE t; --` became SQL.
    @Test("a quote followed by a combining mark or joiner is doubled too", arguments: ["\u{301}", "\u{200D}", "\u{FE0F}", "\u{20DD}"])
    func quotesWithCombiningMarks(mark: String) {
        let literal = PostgresIdentifier.literal("a'" + mark + "; DROP TABLE t; --")
        #expect(Array(literal.unicodeScalars) == Array(("'a''" + mark + "; DROP TABLE t; --'").unicodeScalars))
        let identifier = PostgresIdentifier.quote("a\"" + mark + "b")
        #expect(Array(identifier.unicodeScalars) == Array(("\"a\"\"" + mark + "b\"").unicodeScalars))
    }

    @Test("channel validation: empty, NUL and over 63 bytes are refused")
    func channels() throws {
        try PostgresIdentifier.validateChannel("new_event")
        try PostgresIdentifier.validateChannel(String(repeating: "a", count: 63))
        try PostgresIdentifier.validateChannel(String(repeating: "é", count: 31))  // 62 bytes
        #expect(throws: PostgresError.self) { try PostgresIdentifier.validateChannel("") }
        #expect(throws: PostgresError.self) { try PostgresIdentifier.validateChannel("a\u{0}b") }
        #expect(throws: PostgresError.self) { try PostgresIdentifier.validateChannel(String(repeating: "é", count: 32)) }
    }
}
