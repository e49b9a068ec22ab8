import Testing

@testable import PGEventsCheck
@testable import PGEventsHarness

@Suite("check: a publication's verdicts from the catalog and the slot")
struct PublicationJudgeTests {
    let table = QualifiedName(schema: "public", name: "t")

    private func facts(
        exists: Bool = true, published: Set<PublishedOperation> = Set(PublishedOperation.allCases), columns: [String] = ["id", "a", "b"],
        columnList: [String]? = nil, identity: Character = "d", identityColumns: [String] = ["id"]
    ) -> PublicationFacts {
        PublicationFacts(
            walLevel: "logical", majorVersion: 15, publications: exists ? ["cdc"] : ["other"], exists: exists, published: published,
            membership: "directly", publishedColumns: columnList ?? columns, hasColumnList: columnList != nil, identity: identity,
            identityColumns: identityColumns, columns: columns)
    }

    private func judge(_ spec: PublicationSpec, _ facts: PublicationFacts, operations: [ExercisedOperation]? = nil) -> [CheckResult] {
        var judge = PublicationJudge(
            table: table, spec: spec, facts: facts, operations: operations, truncated: nil, noSlot: nil, version: "15.18")
        judge.judge()
        return judge.results
    }

    private func failed(_ results: [CheckResult], _ name: String) -> CheckResult? {
        results.first { $0.status == .failed && $0.name.hasPrefix(name) }
    }

    @Test("a missing publication is the only verdict, with the CREATE PUBLICATION that fixes it")
    func missingPublication() throws {
        let results = judge(PublicationSpec(name: "cdc", operations: [.insert], old: .none), facts(exists: false))
        #expect(results.count == 1)
        let result = try #require(failed(results, "public.t is in publication cdc"))
        #expect(result.message.contains("publications: other"))
        #expect(result.fix == "CREATE PUBLICATION cdc FOR TABLE public.t WITH (publish = 'insert'); in a migration")
    }

    @Test("operations must match exactly: a missing one and an extra one are both named")
    func operations() throws {
        let results = judge(
            PublicationSpec(name: "cdc", operations: [.insert, .update, .delete]), facts(published: [.insert, .delete, .truncate]))
        let result = try #require(failed(results, "cdc publishes INSERT, UPDATE, DELETE for public.t"))
        #expect(result.message.contains("UPDATE is not published"))
        #expect(result.message.contains("TRUNCATE is published, which the spec does not list"))
        #expect(result.fix?.hasPrefix("ALTER PUBLICATION cdc SET (publish = 'insert, update, delete');") == true)
    }

    @Test("a published table without a primary key under REPLICA IDENTITY DEFAULT has no replica identity")
    func noIdentity() throws {
        let results = judge(PublicationSpec(name: "cdc", old: .none), facts(identityColumns: []))
        let result = try #require(failed(results, "UPDATE, DELETE of public.t can be published"))
        #expect(result.message.contains("REPLICA IDENTITY DEFAULT and no primary key"))
        #expect(result.fix?.contains("ALTER TABLE public.t REPLICA IDENTITY FULL;") == true)
    }

    @Test("old: full needs REPLICA IDENTITY FULL; old: key is content with the primary key")
    func oldValues() throws {
        let full = try #require(failed(judge(PublicationSpec(name: "cdc", old: .full), facts()), "old values give every column"))
        #expect(full.fix == "ALTER TABLE public.t REPLICA IDENTITY FULL;")
        #expect(
            failed(judge(PublicationSpec(name: "cdc", old: .full), facts(identity: "f", identityColumns: ["id", "a", "b"])), "old") == nil)
        let key = judge(PublicationSpec(name: "cdc", old: .key), facts())
        #expect(key.contains { $0.status == .passed && $0.name == "old values give the key of the changed row (old: key)" })
    }

    @Test("a column list must hold the spec's columns and cover the replica identity")
    func columnList() throws {
        let results = judge(
            PublicationSpec(name: "cdc", columns: ["id", "a", "b"]), facts(columnList: ["a", "b"], identityColumns: ["id"]))
        let columns = try #require(failed(results, "public.t publishes exactly the columns id, a, b"))
        #expect(columns.message.contains("its column list (a, b) leaves out id, which the spec needs"))
        #expect(columns.fix?.contains("ALTER PUBLICATION cdc ADD TABLE public.t (id, a, b)") == true)
        #expect(failed(results, "the column list of public.t covers its replica identity") != nil)
    }

    @Test("the slot: an UPDATE without old values fails old: full; an undeclared DELETE that gave a change fails")
    func slot() throws {
        func change(_ operation: PublishedOperation, old: [String: String?]?) -> PublishedChange {
            PublishedChange(
                operation: operation, columns: ["id", "a", "b"], keyColumns: ["id"], new: ["id": "1", "a": "x", "b": nil], old: old,
                oldIsKey: old != nil)
        }
        var insert = ExercisedOperation(kind: .insert, variant: "base", row: nil, notifications: [], error: nil)
        insert.changes = [change(.insert, old: nil)]
        var update = ExercisedOperation(kind: .update, variant: "base", row: nil, notifications: [], error: nil)
        update.changes = [change(.update, old: nil)]
        var delete = ExercisedOperation(kind: .delete, variant: "base", row: nil, notifications: [], error: nil)
        delete.changes = [change(.delete, old: ["id": "1"])]
        let results = judge(
            PublicationSpec(name: "cdc", operations: [.insert, .update], old: .full),
            facts(published: [.insert, .update], identity: "f", identityColumns: ["id", "a", "b"]), operations: [insert, update, delete])
        #expect(results.contains { $0.status == .passed && $0.name == "the slot gives one INSERT change per row" })
        let old = try #require(failed(results, "UPDATE and DELETE changes carry the old values of old: full"))
        #expect(old.message.contains("the UPDATE of the row with ordinary values: no old values at all"))
        let undeclared = try #require(failed(results, "the slot gives no DELETE change"))
        #expect(undeclared.message.contains("gave 1 DELETE change(s): the spec does not list delete"))
    }

    @Test("bytea's hex form is decoded")
    func hex() {
        #expect(PublicationSlot.bytes(hex: "42ff00Aa") == [0x42, 0xFF, 0x00, 0xAA])
        #expect(PublicationSlot.bytes(hex: "") == [])
    }
}
