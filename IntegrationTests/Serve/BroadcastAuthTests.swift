import Foundation
import JWTKit
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

@testable import PGEventsServe

/// A database with the grants the tests check against: `parcels` readable by `serve_reader`, `salaries` by nobody
/// but its owner. Roles are cluster-wide, so each test names its own.
func makeGrantedDatabase(role: String) async throws -> TemporaryDatabase {
    let database = try await Shared.database()
    try await PostgresConnection.withConnection(database.configuration) { db in
        try await db.execute(
            """
            DROP ROLE IF EXISTS \(role);
            CREATE ROLE \(role) NOLOGIN;
            CREATE TABLE public.parcels (gid integer PRIMARY KEY, owner text);
            CREATE SCHEMA secret;
            CREATE TABLE secret.salaries (id integer PRIMARY KEY, amount integer);
            GRANT USAGE ON SCHEMA secret TO \(role);
            GRANT SELECT ON public.parcels TO \(role);
            """)
    }
    return database
}

@Suite("pgevents serve: GC2's checks on /broadcast", .serialized)
struct BroadcastAuthTests {
    let stream = ServeConfiguration.Stream(key: "changes", format: .raw, relation: .field("table"))

    @Test("every GC2 error case is answered with its JSON and the socket closed (1008); tampered and expired tokens are invalid")
    func errorCases() async throws {
        let database = try await makeGrantedDatabase(role: "serve_err_reader")
        try await withTemporaryRedis { redis in
            try await withGateway(testConfiguration(streams: [stream]), databaseURL: database.url, redis: redis.configuration) { gateway in
                let sub = try await makeToken([
                    "database": .string(database.name), "uid": .string("serve_err_reader"), "superUser": .bool(false),
                ])
                let parts = sub.split(separator: ".").map(String.init)
                // The payload re-encoded with superUser true, the signature kept: a forgery.
                let forged = try #require(
                    JSONValue.parse(String(decoding: TokenVerifier.base64URLDecoded(Substring(parts[1]))!, as: UTF8.self)))
                guard case .object(var claims) = forged else {
                    Issue.record("not an object")
                    return
                }
                claims["superUser"] = .bool(true)
                let tampered =
                    parts[0] + "."
                    + Data(JSONValue.object(claims).text.utf8).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(
                        of: "=", with: "") + "." + parts[2]
                let expired = try await makeToken([
                    "database": .string(database.name), "uid": .string("x"), "superUser": .bool(true),
                    "exp": .number(Date().timeIntervalSince1970 - 10),
                ])
                let otherKey = JWTKeyCollection()
                await otherKey.add(hmac: HMACKey(from: String(repeating: "k", count: 40)), digestAlgorithm: .sha256)
                let wrongKey = try await makeToken(
                    ["database": .string(database.name), "uid": .string("x"), "superUser": .bool(true)], keys: otherKey)
                let notYet = try await makeToken([
                    "database": .string(database.name), "uid": .string("x"), "superUser": .bool(true),
                    "nbf": .number(Date().timeIntervalSince1970 + 600),
                ])

                let cases: [(query: [String: String], code: String, message: String)] = [
                    ([:], "missing_token", "Missing token"),
                    (["token": ""], "missing_token", "Missing token"),
                    (["token": "not-a-jwt"], "invalid_token", "not a JWT"),
                    (["token": tampered, "rel": "public.parcels"], "invalid_token", "signature does not verify"),
                    (["token": wrongKey], "invalid_token", "signature does not verify"),
                    (["token": expired], "invalid_token", "expired"),
                    (["token": notYet], "invalid_token", "not valid before"),
                    (["token": sub], "missing_rel", "Sub-users must specify a rel parameter"),
                    (["token": sub, "rel": " , "], "missing_rel", "Sub-users must specify a rel parameter"),
                    (
                        ["token": sub, "rel": "public.parcels,secret.salaries"], "not_allowed",
                        "Not allowed to access this resource: secret.salaries"
                    ),
                    (
                        ["token": sub, "rel": "public.nothing_here"], "not_allowed",
                        "Not allowed to access this resource: public.nothing_here"
                    ),
                    (
                        ["token": sub, "rel": "public.parcels; DROP TABLE public.parcels"], "not_allowed",
                        "Not allowed to access this resource: public.parcels; DROP TABLE public.parcels"
                    ),
                ]
                for (query, code, message) in cases {
                    let transcript = try await RawWebSocket.run(port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", query))
                    { try $0.transcript() }
                    #expect(transcript.messages.count == 1, "\(code): \(transcript.messages)")
                    let error = try #require(transcript.json.first, "\(code)")
                    #expect(error["type"] == .string("error"))
                    #expect(error["error"] == .string(code), "\(query): \(transcript.messages)")
                    #expect(error["message"]?.string?.contains(message) == true, "\(code): \(transcript.messages)")
                    #expect(transcript.closeCode == 1008, "\(code)")
                }
                #expect(gateway.metrics.authFailures.load(ordering: .relaxed) == cases.count)
                // The table is still there: the rel text never reached SQL as SQL.
                let count = try await PostgresConnection.withConnection(database.configuration) { db in
                    try await db.query("SELECT count(*) FROM public.parcels").scalar(Int.self)
                }
                #expect(count == 0)
            }
        }
    }

    @Test("a sub-user gets the events of the relations PostgreSQL lets its role read and it asked for; a superuser without rel gets all")
    func subUserGrants() async throws {
        let database = try await makeGrantedDatabase(role: "serve_grant_reader")
        try await withTemporaryRedis { redis in
            try await withGateway(testConfiguration(streams: [stream]), databaseURL: database.url, redis: redis.configuration) { gateway in
                let writer = try await redis.connect()
                let sub = try await makeToken([
                    "database": .string(database.name), "uid": .string("serve_grant_reader"), "superUser": .bool(false),
                ])
                let admin = try await makeToken(["database": .string(database.name), "uid": .string("owner"), "superUser": .bool(true)])
                async let subMessages = webSocket(gateway.url("/broadcast", ["token": sub, "rel": "PUBLIC.\"parcels\""])) { messages in
                    messages.contains { $0.contains("\"last\"") }
                }
                async let adminMessages = webSocket(gateway.url("/broadcast", ["token": admin])) { messages in
                    messages.contains { $0.contains("\"last\"") }
                }
                // Both are subscribed (so both get everything written from now on).
                try await gateway.waitFor("2 clients") { $0.connections.load(ordering: .relaxed) == 2 }
                try await addJob(writer, stream: "changes", payload: #"{"table":"secret.salaries","id":1}"#)
                try await addJob(writer, stream: "changes", payload: #"{"table":"public.parcels","gid":2}"#)
                try await addJob(writer, stream: "changes", payload: #"{"note":"no relation"}"#)
                try await addJob(writer, stream: "changes", payload: #"{"table":"public.parcels","gid":3,"last":true}"#)
                let subSeen = try await subMessages.json.compactMap { $0["payload"] }
                let adminSeen = try await adminMessages.json.compactMap { $0["payload"] }
                #expect(subSeen.map { $0["table"]?.string } == ["public.parcels", "public.parcels"])
                #expect(adminSeen.count == 4)
                await writer.close()
            }
        }
    }
}
