import PGEvents
import Testing

@testable import PGEventsServe

@Suite("serve.yml")
struct ServeConfigurationTests {
    @Test("a full file is read with every field")
    func fullFile() throws {
        let configuration = try ServeConfiguration(
            yaml: """
                listen: {host: 0.0.0.0, port: 0}
                streams:
                  - {key: "gc2:changes", database: gisdb, format: gc2}
                  - {key: "orders", relation: [schema, table]}
                  - {key: "audit", relation: rel}
                auth:
                  algorithm: rs256
                  key: {file: /etc/jwt.pem}
                  claims: {database: db, user: sub, superuser: admin}
                  leeway: 2
                  privilege: select
                clients: {queue: 10, max_connections: 5, max_message_bytes: 1024, ping_interval: 0.5, block: 0.1, close_timeout: 3}
                sql: {enabled: true, statement_timeout: 2, max_rows: 50, max_queued: 4}
                """)
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 0)
        #expect(
            configuration.streams == [
                .init(key: "gc2:changes", database: "gisdb", format: .gc2, relation: .field("table")),
                .init(key: "orders", relation: .fields(schema: "schema", table: "table")),
                .init(key: "audit", relation: .field("rel")),
            ])
        #expect(configuration.auth.algorithm == .rs256)
        #expect(configuration.auth.key == .file("/etc/jwt.pem"))
        #expect(configuration.auth.claims == .init(database: "db", user: "sub", superuser: "admin", role: "sub"))
        #expect(configuration.auth.leeway == 2)
        #expect(configuration.auth.privilege == "SELECT")
        #expect(
            configuration.clients
                == .init(queue: 10, maxConnections: 5, maxMessageBytes: 1024, pingInterval: 0.5, block: 0.1, closeTimeout: 3))
        #expect(configuration.sql == .init(enabled: true, statementTimeout: 2, maxRows: 50, maxQueued: 4))
    }

    @Test("the defaults: GC2's claim names, HS256, SQL off")
    func defaults() throws {
        let configuration = try ServeConfiguration(yaml: "streams: [{key: s}]\nauth: {key: {env: SECRET}}")
        #expect(configuration.port == 8088)
        #expect(configuration.auth.claims == .init(database: "database", user: "uid", superuser: "superUser", role: "uid"))
        #expect(configuration.auth.algorithm == .hs256)
        #expect(configuration.auth.key == .environment("SECRET"))
        #expect(configuration.sql.enabled == false)
        #expect(configuration.streams[0].relation == nil)
    }

    @Test(
        "mistakes are refused with the place and what is wrong",
        arguments: [
            ("streams: [{key: s}]", "no signing key"),
            ("auth: {key: {env: S}}", "'streams' is missing"),
            ("streams: []\nauth: {key: {env: S}}", "the list is empty"),
            ("streams: [{key: s}, {key: s}]\nauth: {key: {env: S}}", "listed twice"),
            ("streams: [{key: 'a,b'}]\nauth: {key: {env: S}}", "cannot hold ',' or '@'"),
            ("streams: [{key: s, format: csv}]\nauth: {key: {env: S}}", "unknown format 'csv'"),
            ("streams: [{key: s}]\nauth: {key: {env: S}, algorithm: none}", "unknown algorithm 'none'"),
            ("streams: [{key: s}]\nauth: {key: {env: S, file: f}}", "expected {env: NAME} or {file: PATH}"),
            ("streams: [{key: s}]\nauth: {key: {env: S}}\nclients: {queue: 0}", "out of range"),
            ("streams: [{key: s}]\nauth: {key: {env: S}}\nlisten: {port: 70000}", "out of range"),
            ("streams: [{key: s}]\nauth: {key: {env: S}}\ncleints: {}", "unknown key 'cleints'"),
            ("streams: [{key: s, relation: [a]}]\nauth: {key: {env: S}}", "expected [schema field, table field]"),
            ("streams: [{key: s}]\nauth: {key: {env: S}, privilege: ALL}", "unknown privilege 'ALL'"),
        ])
    func refused(yaml: String, expected: String) {
        #expect {
            try ServeConfiguration(yaml: yaml)
        } throws: { error in
            "\(error)".contains(expected) && "\(error)".contains("serve.yml")
        }
    }
}

@Suite("Resume cursors and stream IDs")
struct StreamCursorTests {
    @Test("stream IDs parse and order as Redis orders them")
    func ids() {
        #expect(StreamID("1714566896789-3") == StreamID(milliseconds: 1_714_566_896_789, sequence: 3))
        #expect(StreamID("5") == StreamID(milliseconds: 5, sequence: 0))
        #expect(StreamID("1-2")! < StreamID("1-10")!)
        #expect(StreamID("2-0")! > StreamID("1-99")!)
        for bad in ["", "-", "1-", "-1", "a-1", "1-2-3", "+", "$", " 1-2", "99999999999999999999999-0", "1--2"] {
            #expect(StreamID(bad) == nil, "\(bad)")
        }
    }

    @Test("one stream: a bare ID; several: key@ID items, round trip")
    func roundTrip() throws {
        let one = try StreamCursor(parsing: "10-1", streams: ["s"])
        #expect(one.positions == ["s": StreamID("10-1")!])
        #expect(one.text(streams: ["s"]) == "10-1")
        let two = try StreamCursor(parsing: "a:b@10-1,c@3-0", streams: ["a:b", "c"])
        #expect(two.positions == ["a:b": StreamID("10-1")!, "c": StreamID("3-0")!])
        #expect(two.text(streams: ["a:b", "c"]) == "a:b@10-1,c@3-0")
    }

    @Test(
        "a cursor naming no, an unknown or a doubled stream, or a bad ID, is refused with the reason",
        arguments: [
            ("10-1", ["a", "b"], "names no stream"),
            ("x@10-1", ["a"], "not a stream this gateway reads"),
            ("a@1-0,a@2-0", ["a"], "named twice"),
            ("a@zz", ["a"], "not a stream ID"),
            ("zz", ["a"], "not a stream ID"),
            ("a", ["a", "b"], "names no stream"),
        ])
    func refused(text: String, streams: [String], expected: String) {
        #expect(throws: StreamCursor.ParseError.self) { try StreamCursor(parsing: text, streams: streams) }
        do {
            _ = try StreamCursor(parsing: text, streams: streams)
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }
}
