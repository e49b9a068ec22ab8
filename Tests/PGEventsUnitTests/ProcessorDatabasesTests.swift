import Testing

@testable import PGEvents

@Suite("Processor configuration: databases (one process, several databases)")
struct ProcessorDatabasesTests {
    @Test("a list names the databases; a mapping discovers them, with defaults")
    func parsing() throws {
        let named = try ProcessorConfiguration(yaml: "databases: [gis, shop]\nchannels: {c: {queue: q}}")
        #expect(named.databases == .named(["gis", "shop"]))
        let discovered = try ProcessorConfiguration(
            yaml: "databases: {include: \"gc2_*\", exclude: [\"*_test\", gc2_old], refresh: 5}\nchannels: {c: {queue: q}}")
        #expect(discovered.databases == .discovered(include: ["gc2_*"], exclude: ["*_test", "gc2_old"], refresh: 5))
        let everything = try ProcessorConfiguration(yaml: "databases: {}\nchannels: {c: {queue: q}}")
        #expect(everything.databases == .discovered(include: ["*"], exclude: [], refresh: 60))
        let table = try ProcessorConfiguration(
            yaml: "source: table\ntable: {name: events, key: id}\ndatabases: [a]\nchannels: {c: {queue: q}}")
        #expect(table.databases == .named(["a"]))
        #expect(try ProcessorConfiguration(yaml: "channels: {c: {queue: q}}").databases == nil)
    }

    @Test("bad lists, patterns and sources are refused with the file, line and reason")
    func refused() {
        let cases: [(String, String)] = [
            ("databases: []\nchannels: {c: {queue: q}}", "processor.yml:1:12: databases: name at least one database"),
            ("databases: [a, a]\nchannels: {c: {queue: q}}", "processor.yml:1:12: databases: the database 'a' is named twice"),
            (
                "databases: [\"\"]\nchannels: {c: {queue: q}}",
                "processor.yml:1:12: databases: database 1: a database name has 1 to 63 bytes, none of them NUL"
            ),
            (
                "databases: {include: []}\nchannels: {c: {queue: q}}",
                "processor.yml:1:22: databases.include: 'include' is empty: give at least one pattern, e.g. \"*\""
            ),
            (
                "databases: {refresh: 0}\nchannels: {c: {queue: q}}",
                "processor.yml:1:22: databases.refresh: expected a positive number of seconds, found '0'"
            ),
            (
                "databases: {pattern: x}\nchannels: {c: {queue: q}}",
                "processor.yml:1:13: databases: unknown key 'pattern' (expected one of: exclude, include, refresh)"
            ),
            (
                "source: wal\ndatabases: [a]\nchannels: {c: {queue: q}}",
                "processor.yml:2:12: databases: 'databases' is read with source: journal or table; for source: wal run one processor per database (a replication slot belongs to one database, and notify keeps no cursor)"
            ),
        ]
        for (yaml, message) in cases {
            let error = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: yaml) }
            #expect(error?.message == message, "\(yaml)")
        }
    }

    @Test("patterns: * is any run of characters, ? one character, the rest literal; exclude wins")
    func patterns() {
        let matches = ProcessorConfiguration.Databases.matches
        #expect(matches("gc2_parks", "gc2_*"))
        #expect(matches("gc2_", "gc2_*"))
        #expect(!matches("xgc2_parks", "gc2_*"))
        #expect(matches("shop", "*"))
        #expect(matches("a1b", "a?b"))
        #expect(!matches("ab", "a?b"))
        #expect(matches("app_eu_test", "*_test"))
        #expect(matches("aaab", "*a*b"))
        #expect(!matches("aaac", "*a*b"))
        #expect(matches("x.y", "x.y"))
        #expect(!matches("xzy", "x.y"))  // not a regular expression
        let selection = ProcessorConfiguration.Databases.discovered(include: ["app_*"], exclude: ["*_test"], refresh: 60)
        #expect(selection.selects("app_eu"))
        #expect(!selection.selects("app_eu_test"))
        #expect(!selection.selects("postgres"))
        #expect(ProcessorConfiguration.Databases.named(["a"]).selects("a"))
        #expect(!ProcessorConfiguration.Databases.named(["a"]).selects("b"))
    }
}
