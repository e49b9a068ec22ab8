import Foundation
import Testing

@testable import PGEventsServe

@Suite("Token claims to an identity")
struct ClaimMappingTests {
    let now = Date(timeIntervalSince1970: 1_000_000)
    let gc2 = ServeConfiguration.Claims()

    func claims(_ extra: [String: JSONValue]) -> [String: JSONValue] {
        var base: [String: JSONValue] = ["exp": .number(1_000_100), "database": .string("gisdb"), "uid": .string("alice")]
        base.merge(extra) { _, new in new }
        return base.filter { $0.value != .null || extra[$0.key] == nil }
    }

    @Test("GC2's claims: database, uid, superUser")
    func gc2Claims() throws {
        let identity = try TokenIdentity.from(claims: claims(["superUser": .bool(true)]), names: gc2, now: now)
        #expect(
            identity
                == TokenIdentity(
                    database: "gisdb", user: "alice", role: "alice", superuser: true, expiresAt: Date(timeIntervalSince1970: 1_000_100)))
        let sub = try TokenIdentity.from(claims: claims([:]), names: gc2, now: now)
        #expect(sub.superuser == false)  // absent: a sub-user
        #expect(try TokenIdentity.from(claims: claims(["superUser": .string("true")]), names: gc2, now: now).superuser)
        #expect(try TokenIdentity.from(claims: claims(["superUser": .number(0)]), names: gc2, now: now).superuser == false)
    }

    @Test("configured names, and a role claim apart from the user")
    func configuredNames() throws {
        let names = ServeConfiguration.Claims(database: "db", user: "sub", superuser: "admin", role: "pg_role")
        let identity = try TokenIdentity.from(
            claims: [
                "exp": .number(1_000_100), "db": .string("x"), "sub": .number(42), "pg_role": .string("reader"), "admin": .bool(false),
            ],
            names: names, now: now)
        #expect(
            identity
                == TokenIdentity(
                    database: "x", user: "42", role: "reader", superuser: false, expiresAt: Date(timeIntervalSince1970: 1_000_100)))
    }

    @Test(
        "expired, not yet valid, without exp, or missing claims: refused with the reason",
        arguments: [
            (["exp": JSONValue.number(1_000_000)], "expired"),
            (["exp": .number(999_000)], "expired"),
            (["exp": .string("soon")], "exp claim is not a number"),
            (["nbf": .number(1_000_050)], "not valid before"),
            (["database": .null], "no database claim"),
            (["uid": .string("")], "uid claim (the user) is not a non-empty string"),
            (["uid": .array([])], "not a non-empty string"),
            (["superUser": .string("yes")], "superUser claim is not true or false"),
        ])
    func refused(extra: [String: JSONValue], expected: String) {
        var claims = claims(extra)
        if extra["database"] == .null { claims["database"] = nil }
        #expect {
            try TokenIdentity.from(claims: claims, names: gc2, now: now)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test("no exp at all is refused; leeway allows clock skew on exp and nbf")
    func expiryRules() throws {
        #expect(throws: TokenError.self) {
            try TokenIdentity.from(claims: ["database": .string("d"), "uid": .string("u")], names: gc2, now: now)
        }
        let skewed = claims(["exp": .number(999_999), "nbf": .number(1_000_001)])
        #expect(throws: TokenError.self) { try TokenIdentity.from(claims: skewed, names: gc2, now: now) }
        #expect(try TokenIdentity.from(claims: skewed, names: gc2, now: now, leeway: 2).database == "gisdb")
    }
}

@Suite("Which entries a client receives, and how they read")
struct RelationFilterTests {
    let gc2Stream = ServeConfiguration.Stream(key: "gc2:changes", database: "gisdb", format: .gc2, relation: .field("table"))

    func batch(_ items: [String]) -> StreamEntry {
        StreamEntry(
            stream: "gc2:changes", id: StreamID("5-0")!,
            fields: [
                "channel": "gc2_changes", "count": "\(items.count)",
                "payload": #"{"channel":"gc2_changes","count":\#(items.count),"items":[\#(items.joined(separator: ","))]}"#,
            ])
    }

    @Test("a GC2 batch becomes GC2's message: keys per operation, rows in full_data")
    func gc2Shape() throws {
        let event = GatewayEvent(
            entry: batch([
                #"{"op":"INSERT","table":"public.parcels","key":1,"key_column":"gid","row":{"gid":1,"owner":"a"}}"#,
                #"{"op":"DELETE","table":"public.parcels","key":"2","key_column":"gid","row":null}"#,
            ]), stream: gc2Stream)
        let text = try #require(event.message(database: "gisdb", relations: nil))
        let message = try #require(JSONValue.parse(text))
        #expect(message["type"] == .string("batch"))
        #expect(message["id"] == .string("5-0"))
        #expect(message["db"] == .string("gisdb"))
        let parcels = try #require(message["batch"]?["gisdb"]?["public.parcels"])
        #expect(parcels["INSERT"] == .array([.array([.string("gid"), .string("1")])]))
        #expect(parcels["DELETE"] == .array([.array([.string("gid"), .string("2")])]))
        #expect(parcels["full_data"] == .array([.object(["gid": .number(1), "owner": .string("a")])]))
    }

    @Test("a client sees only the items of relations it may read; nothing at all when none is; another database sees nothing")
    func filtering() throws {
        let event = GatewayEvent(
            entry: batch([
                #"{"op":"INSERT","table":"public.parcels","key":1,"row":{"gid":1}}"#,
                #"{"op":"INSERT","table":"secret.salaries","key":7,"row":{"id":7}}"#,
                #"{"op":"INSERT","key":8}"#,
            ]), stream: gc2Stream)
        let partialText = try #require(event.message(database: "gisdb", relations: ["public.parcels"]))
        let partial = try #require(JSONValue.parse(partialText))
        #expect(partial["batch"]?["gisdb"]?["public.parcels"] != nil)
        #expect(partial["batch"]?["gisdb"]?["secret.salaries"] == nil)
        #expect(partial["batch"]?["gisdb"]?["unknown"] == nil)  // an item of no known relation: never to a filtered client
        #expect(event.message(database: "gisdb", relations: ["public.other"]) == nil)
        #expect(event.message(database: "otherdb", relations: nil) == nil)
        let allText = try #require(event.message(database: "gisdb", relations: nil))
        let all = try #require(JSONValue.parse(allText))
        #expect(all["batch"]?["gisdb"]?["secret.salaries"] != nil)

        let filter = ClientFilter(database: "gisdb", relations: ["public.other"], channels: nil)
        #expect(!filter.wants(event))
        #expect(ClientFilter(database: "gisdb", relations: ["secret.salaries"], channels: nil).wants(event))
        #expect(!ClientFilter(database: "gisdb", relations: nil, channels: ["other_channel"]).wants(event))
        #expect(ClientFilter(database: "gisdb", relations: nil, channels: ["gc2_changes"]).wants(event))
    }

    @Test("raw single jobs keep their payload; the relation can come from two fields")
    func rawSingle() throws {
        let stream = ServeConfiguration.Stream(key: "orders", relation: .fields(schema: "schema", table: "table"))
        let event = GatewayEvent(
            entry: StreamEntry(
                stream: "orders", id: StreamID("9-1")!,
                fields: [
                    "seq": "12", "channel": "orders", "payload": #"{"schema":"shop","table":"orders","id":3}"#, "created_at": "x",
                ]), stream: stream)
        #expect(event.items.map(\.relation) == ["shop.orders"])
        let text = try #require(event.message(database: "any", relations: ["shop.orders"]))
        let message = try #require(JSONValue.parse(text))
        #expect(message["type"] == .string("event"))
        #expect(message["payload"]?["id"] == .number(3))
        #expect(message["stream"] == .string("orders"))
        // A payload that is not JSON is sent as a string, and has no relation.
        let plain = GatewayEvent(
            entry: StreamEntry(stream: "orders", id: StreamID("9-2")!, fields: ["seq": "1", "payload": "hello"]), stream: stream)
        #expect(plain.items.map(\.relation) == [nil])
        let plainText = try #require(plain.message(database: "d", relations: nil))
        #expect(JSONValue.parse(plainText)?["payload"] == .string("hello"))
        #expect(plain.message(database: "d", relations: ["shop.orders"]) == nil)
    }
}
