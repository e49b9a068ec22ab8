import Testing

@testable import PGEventsPostgres

@Suite("Typed rows and errors")
struct PostgresResultTests {
    let result = PostgresResult(
        columns: [
            PostgresColumn(name: "id", typeOID: 20), PostgresColumn(name: "name", typeOID: 25), PostgresColumn(name: "ok", typeOID: 16),
            PostgresColumn(name: "x", typeOID: 701),
        ],
        values: ["1", "alpha", "t", "1.5", "2", nil, "f", "-Infinity"],
        commandTag: "SELECT 2", affectedRows: 2)

    @Test("rows decode to Swift types by name and position")
    func decoding() throws {
        #expect(result.count == 2)
        #expect(try result[0].decode(Int.self, column: "id") == 1)
        #expect(try result[0].decode(String.self, at: 1) == "alpha")
        #expect(try result[0].decode(Bool.self, column: "ok"))
        #expect(try result[1].decode(Bool.self, column: "ok") == false)
        #expect(try result[1].decode(Double.self, column: "x") == -.infinity)
        #expect(try result[1].decode(String?.self, column: "name") == nil)
        #expect(try result[0].decode(Int64?.self, column: "id") == 1)
        #expect(result[1]["name"] == nil)
        #expect(result[0]["name"] == "alpha")
    }

    @Test("decoding errors name the column, the row and the value")
    func decodingErrors() {
        let null = #expect(throws: PostgresError.self) { try result[1].decode(String.self, column: "name") }
        #expect(null?.message == "column 'name' (row 1, type OID 25): cannot decode NULL as String")
        let wrong = #expect(throws: PostgresError.self) { try result[0].decode(Int.self, column: "name") }
        #expect(wrong?.message == "column 'name' (row 0, type OID 25): cannot decode 'alpha' as Int")
        let missing = #expect(throws: PostgresError.self) { try result[0].decode(Int.self, column: "nope") }
        #expect(missing?.message.contains("id, name, ok, x") == true)
        let outOfRange = #expect(throws: PostgresError.self) { try result[0].decode(Int.self, at: 9) }
        #expect(outOfRange?.code == .decoding)
        #expect(throws: PostgresError.self) { try result.scalar(Int.self) }
    }

    @Test("parameters encode to PostgreSQL's text format")
    func encoding() {
        #expect(42.postgresText == "42")
        #expect(true.postgresText == "true")
        #expect(Double.nan.postgresText == "NaN")
        #expect((-Double.infinity).postgresText == "-Infinity")
        #expect([UInt8]([0x00, 0xab, 0xff]).postgresText == #"\x00abff"#)
    }

    @Test("error descriptions show SQLSTATE, detail, hint and an excerpt of long statements")
    func errorDescription() {
        let statement = String(repeating: "SELECT 1; ", count: 50) + "SELEC oops"
        let error = PostgresError(
            code: .server, message: "syntax error at or near \"SELEC\"", sqlState: "42601", severity: "ERROR",
            detail: "d", hint: "h", position: 501, statement: statement)
        let text = error.description
        #expect(text.hasPrefix("ERROR 42601: syntax error"))
        #expect(text.contains("\nDETAIL: d\nHINT: h"))
        #expect(text.contains("SELEC oops"))
        #expect(text.contains("…"))
        #expect(text.count < 400)
        #expect(PostgresError(code: .connectionLost, message: "gone").description == "connectionLost: gone")
    }
}
