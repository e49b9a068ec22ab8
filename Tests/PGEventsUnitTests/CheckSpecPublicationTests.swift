import Testing

@testable import PGEventsCheck
@testable import PGEventsHarness

@Suite("check spec files: a table's publication")
struct CheckSpecPublicationTests {
    private func table(_ yaml: String, _ name: String = "t") throws -> TableSpec? {
        try CheckSpec(yaml: yaml, file: "pgevents.yml", baseDirectory: "/p").tables[QualifiedName(schema: "public", name: name)]
    }

    @Test("every key is read")
    func full() throws {
        let spec = try #require(
            try table(
                """
                tables:
                  public.orders:
                    notify: {insert: orders}
                    publication:
                      name: cdc
                      operations: [insert, update, truncate]
                      old: full
                      columns: [id, status, total]
                      where: "  status <> 'draft'  "
                """, "orders"))
        #expect(spec.notify == [.insert: "orders"])
        #expect(
            spec.publication
                == PublicationSpec(
                    name: "cdc", operations: [.insert, .update, .truncate], old: .full, columns: ["id", "status", "total"],
                    rowFilter: "status <> 'draft'"))
    }

    @Test("a name alone takes the defaults: every operation, old: key, columns and row filter not checked")
    func shorthand() throws {
        let expected = PublicationSpec(name: "warehouse", operations: [.insert, .update, .delete, .truncate], old: .key)
        #expect(try table("tables:\n  t:\n    publication: warehouse")?.publication == expected)
        #expect(try table("tables:\n  t:\n    publication: {name: warehouse}")?.publication == expected)
        #expect(try table("tables:\n  t:\n    notify: {}\n    publication: ~")?.publication == nil)
    }

    @Test("notify may be left out when a publication is given: no trigger may then notify")
    func notifyOptional() throws {
        let spec = try #require(try table("tables:\n  t:\n    values: {severity: 4}\n    publication: audit"))
        #expect(spec.notify.isEmpty)
        #expect(spec.values == ["severity": "4"])
        #expect(spec.publication?.name == "audit")
    }

    @Test(
        "every error names the file, line, column and key",
        arguments: [
            (
                "tables:\n  t:\n    publication: {name: p, operation: [insert]}",
                "pgevents.yml:3:28: tables.t.publication: unknown key 'operation' (expected one of: columns, name, old, operations, where)"
            ),
            (
                "tables:\n  t:\n    publication: {old: full}",
                "pgevents.yml:3:18: tables.t.publication: 'name' is missing: the publication the table's changes go through"
            ),
            ("tables:\n  t:\n    publication: [p]", "pgevents.yml:3:18: tables.t.publication: expected a mapping, found a list"),
            (
                "tables:\n  t:\n    publication: ''",
                "pgevents.yml:3:18: tables.t.publication: a publication name must have 1 to 63 bytes, '' has 0"
            ),
            (
                "tables:\n  t:\n    publication: {name: \(CheckSpecTests.long)}",
                "pgevents.yml:3:25: tables.t.publication.name: a publication name must have 1 to 63 bytes"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, operations: [insert, upsert]}",
                "pgevents.yml:3:49: tables.t.publication.operations[1]: unknown operation 'upsert' (expected insert, update, delete or truncate)"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, operations: [insert, insert]}",
                "pgevents.yml:3:49: tables.t.publication.operations[1]: insert is listed twice"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, operations: []}",
                "pgevents.yml:3:40: tables.t.publication.operations: name at least one operation"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, operations: insert}",
                "pgevents.yml:3:40: tables.t.publication.operations: expected a list, found a scalar"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, old: all}",
                "pgevents.yml:3:33: tables.t.publication.old: unknown value 'all' (expected key: the replica identity's key columns, full: every column (REPLICA IDENTITY FULL), or none)"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, operations: [insert], old: full}",
                "pgevents.yml:3:55: tables.t.publication.old: old values come only with update and delete, which operations does not list (write old: none)"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, columns: []}",
                "pgevents.yml:3:37: tables.t.publication.columns: name at least one column (or leave 'columns' out)"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, columns: [id, id]}",
                "pgevents.yml:3:42: tables.t.publication.columns[1]: id is listed twice"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, columns: [id, '']}",
                "pgevents.yml:3:42: tables.t.publication.columns[1]: a column name must have 1 to 63 bytes, '' has 0"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, where: '  '}",
                "pgevents.yml:3:35: tables.t.publication.where: the row filter is empty (leave 'where' out to not check it)"
            ),
            (
                "tables:\n  t:\n    publication: {name: p, where: [a]}",
                "pgevents.yml:3:35: tables.t.publication.where: expected a string, found a list"
            ),
            // Without a publication, notify is still required.
            ("tables:\n  t:\n    values: {a: 1}", "pgevents.yml:3:5: tables.t: 'notify' is missing"),
        ])
    func errors(yaml: String, expected: String) {
        let error = #expect(throws: HarnessError.self) { try CheckSpec(yaml: yaml, file: "pgevents.yml", baseDirectory: "/p") }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.hasPrefix(expected) == true, "\(error?.message ?? "no error")")
    }
}
