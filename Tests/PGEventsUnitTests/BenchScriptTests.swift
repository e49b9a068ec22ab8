import Testing

@testable import PGEventsBench

@Suite("Bench scripts (pgbench-style)")
struct BenchScriptTests {
    struct Fixed: RandomNumberGenerator {
        var value: UInt64
        mutating func next() -> UInt64 { value }
    }

    @Test("variables are drawn per transaction; quotes, comments and casts are left alone")
    func render() throws {
        let script = try BenchScript(
            text: """
                \\set n 7
                \\set r random(5, 5)
                INSERT INTO t (a, b, c) VALUES (:n, :r::int, ':n') -- :n in a comment
                ; SELECT ":n", :client_id
                """, source: "s.sql")
        var generator = Fixed(value: 0)
        #expect(
            script.render(client: 3, using: &generator) == """


                INSERT INTO t (a, b, c) VALUES (7, 5::int, ':n') -- :n in a comment
                ; SELECT ":n", 3
                """)
    }

    @Test("mistakes name the source and line")
    func problems() {
        func problem(_ text: String) -> BenchScript.Problem? {
            do {
                _ = try BenchScript(text: text, source: "s.sql")
                return nil
            } catch { return error }
        }
        #expect(
            problem("SELECT 1;\n\\sleep 10 ms")
                == .init(
                    source: "s.sql", line: 2,
                    message: "\\sleep is not supported by pgevents bench (it reads \\set NAME INTEGER and \\set NAME random(LO, HI))"))
        #expect(problem("\n\nINSERT INTO t VALUES (:missing)")?.line == 3)
        #expect(problem("\\set x random(9, 1)\nSELECT :x")?.message.contains("lower bound") == true)
        #expect(problem("\\set x 1 + 2\nSELECT :x")?.line == 1)
        #expect(problem("-- nothing\n;") != nil)
        #expect(problem("\\set client_id 1\nSELECT 1")?.message.contains("writer's number") == true)
    }
}
