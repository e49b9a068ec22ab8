import Foundation
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

@testable import PGEventsServe

@Suite("pgevents serve: SQL over the socket, token expiry", .serialized)
struct SQLAndExpiryTests {
    let stream = ServeConfiguration.Stream(key: "changes", format: .raw, relation: .field("table"))

    @Test(
        "SQL runs read-only as the token's role: it reads what the role may, cannot write, cannot change role; superuser roles and roles with set_config are refused"
    )
    func sqlReadOnly() async throws {
        let database = try await makeGrantedDatabase(role: "serve_sql_reader")
        try await PostgresConnection.withConnection(database.configuration) { db in
            try await db.execute(
                """
                INSERT INTO public.parcels VALUES (1, 'a'), (2, 'b'), (3, 'c');
                CREATE SEQUENCE public.counter; GRANT USAGE, UPDATE ON SEQUENCE public.counter TO serve_sql_reader;
                DROP ROLE IF EXISTS serve_sql_other; CREATE ROLE serve_sql_other NOLOGIN;
                REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;
                GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO serve_sql_other;
                """)
        }
        try await withTemporaryRedis { redis in
            let configuration = testConfiguration(streams: [stream], sql: .init(enabled: true, statementTimeout: 2, maxRows: 2))
            try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                func ask(_ uid: String, superUser: Bool = false, _ statements: [String]) async throws -> [JSONValue] {
                    let token = try await makeToken([
                        "database": .string(database.name), "uid": .string(uid), "superUser": .bool(superUser),
                    ])
                    let path = gateway.pathAndQuery("/broadcast", ["token": token, "rel": "public.parcels"])
                    let transcript = try await RawWebSocket.run(port: gateway.port, pathAndQuery: path) { socket in
                        for statement in statements { try socket.send(statement) }
                        return try socket.transcript { $0.count == statements.count }
                    }
                    // Fail, never crash on a short answer: name how the gateway ended the connection.
                    try #require(
                        transcript.messages.count == statements.count,
                        "the gateway answered \(transcript.messages.count) of \(statements.count) statements, then closed with \(String(describing: transcript.closeCode)) \(transcript.closeReason ?? "")"
                    )
                    return transcript.json
                }
                let answers = try await ask(
                    "serve_sql_reader",
                    [
                        "SELECT gid, owner FROM public.parcels ORDER BY gid",
                        "SELECT count(*) AS n FROM public.parcels",
                        "INSERT INTO public.parcels VALUES (9, 'x') RETURNING gid",
                        "SELECT * FROM secret.salaries",
                        "RESET ROLE",
                        "SELECT 1; RESET ROLE",
                        "SELECT current_user AS who",
                        "SELECT pg_sleep(5)",
                        "SELECT nextval('public.counter')",
                    ])
                #expect(answers[0]["success"] == .bool(true))
                #expect(
                    answers[0]["data"]
                        == .array([
                            .object(["gid": .number(1), "owner": .string("a")]), .object(["gid": .number(2), "owner": .string("b")]),
                        ]))
                #expect(
                    answers[0]["total_rows"] == .number(2) && answers[0]["truncated"] == .bool(true)
                        && answers[0]["format"] == .string("json"))
                #expect(answers[1]["data"] == .array([.object(["n": .number(3)])]))
                for (index, expected) in [
                    (2, "syntax error"), (8, "read-only transaction"), (3, "permission denied"), (4, "syntax error"),
                    (5, "cannot insert multiple commands"), (7, "statement timeout"),
                ] {
                    #expect(answers[index]["success"] == .bool(false), "\(index)")
                    #expect(answers[index]["message"]?.string?.contains(expected) == true, "\(index): \(answers[index])")
                }
                #expect(answers[6]["data"] == .array([.object(["who": .string("serve_sql_reader")])]))
                // Nothing was written.
                let count = try await PostgresConnection.withConnection(database.configuration) { db in
                    try await db.query("SELECT count(*) FROM public.parcels").scalar(Int.self)
                }
                #expect(count == 3)
                let superRole = try await ask(Shared.postgres().superuser, superUser: true, ["SELECT 1"])
                #expect(superRole.first?["message"]?.string?.contains("superuser") == true, "\(superRole)")
                try await PostgresConnection.withConnection(database.configuration) { db in
                    try await db.execute("GRANT SELECT ON public.parcels TO serve_sql_other")
                }
                let escaper = try await ask("serve_sql_other", ["SELECT set_config('role', 'serve_sql_reader', true)"])
                #expect(escaper.first?["message"]?.string?.contains("set_config") == true, "\(escaper)")
            }
        }
    }

    @Test(
        "a statement longer than the ping timeout runs while pings go on being answered: the connection stays up, answers come in order, a flood beyond max_queued is refused in place"
    )
    func keepaliveDuringStatement() async throws {
        let database = try await makeGrantedDatabase(role: "serve_sql_sleeper")
        try await PostgresConnection.withConnection(database.configuration) { db in
            try await db.execute("REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC")
        }
        try await withTemporaryRedis { redis in
            var configuration = testConfiguration(
                streams: [stream], sql: .init(enabled: true, statementTimeout: 20, maxRows: 10, maxQueued: 3))
            configuration.clients.pingInterval = 0.5  // a pong not seen within 0.5 s closes the connection (1001)
            try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                let token = try await makeToken([
                    "database": .string(database.name), "uid": .string("serve_sql_sleeper"), "superUser": .bool(false),
                ])
                let path = gateway.pathAndQuery("/broadcast", ["token": token, "rel": "public.parcels"])
                let statements = [
                    "SELECT pg_sleep(2.5) AS slept", "SELECT 2 AS n", "SELECT 3 AS n",
                    "SELECT 4 AS n",  // one running, two waiting: the fourth is refused in its place
                    "SELECT 5 AS n",  // and so is the fifth
                ]
                let transcript = try await RawWebSocket.run(port: gateway.port, pathAndQuery: path) { socket in
                    for statement in statements { try socket.send(statement) }
                    return try socket.transcript { $0.count == statements.count }
                }
                try #require(
                    transcript.messages.count == statements.count,
                    "answered \(transcript.messages.count) of \(statements.count), then closed with \(String(describing: transcript.closeCode)) \(transcript.closeReason ?? "")"
                )
                let answers = transcript.json
                #expect(answers[0]["data"] == .array([.object(["slept": .string("")])]), "\(answers[0])")
                #expect(answers[1]["data"] == .array([.object(["n": .number(2)])]))
                #expect(answers[2]["data"] == .array([.object(["n": .number(3)])]))
                for refused in answers[3...] {
                    #expect(refused["success"] == .bool(false))
                    #expect(refused["message"]?.string?.contains("3 statements are waiting") == true, "\(refused)")
                }
                // 2.5 s of sleep at a ping every 0.5 s: the client answered pings while the statement ran.
                #expect(transcript.pingsAnswered >= 2, "\(transcript.pingsAnswered) pings")
            }
        }
    }

    @Test("SQL is off by default: a message is answered with an error, nothing runs")
    func sqlOff() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            try await withGateway(testConfiguration(streams: [stream]), databaseURL: database.url, redis: redis.configuration) { gateway in
                let token = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
                let answers = try await RawWebSocket.run(
                    port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": token])
                ) { socket in
                    try socket.send("SELECT 1")
                    return try socket.transcript { $0.count == 1 }.json
                }
                #expect(answers.first?["success"] == .bool(false))
                #expect(answers.first?["message"]?.string?.contains("disabled") == true)
            }
        }
    }

    @Test("a connection is closed (4001, token_expired) when its token expires")
    func closedAtExpiry() async throws {
        let database = try await Shared.database()
        try await withTemporaryRedis { redis in
            try await withGateway(testConfiguration(streams: [stream]), databaseURL: database.url, redis: redis.configuration) { gateway in
                let token = try await makeToken([
                    "database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true),
                    "exp": .number(Date().timeIntervalSince1970 + 2),
                ])
                let transcript = try await RawWebSocket.run(
                    port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": token])
                ) {
                    try $0.transcript()
                }
                #expect(transcript.closeCode == 4001)
                #expect(transcript.json.last?["error"] == .string("token_expired"))
                #expect(gateway.metrics.tokensExpired.load(ordering: .relaxed) == 1)
            }
        }
    }
}
