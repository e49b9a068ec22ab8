import Foundation
import PGEvents
import Testing

@Suite("The journal SQL compiled into PGEvents")
struct JournalSchemaTests {
    @Test("is sql/pgevents/ file for file (run ci/generate-schema after changing it)")
    func matchesFiles() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("sql/pgevents")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(JournalSchema.files.map(\.name) == names)
        for (name, sql) in JournalSchema.files {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            let normalized = text.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.allSatisfy(\.isWhitespace) ? "" : String($0) }.joined(separator: "\n")
            #expect(sql + "\n" == normalized, "\(name) differs from its compiled copy: run ci/generate-schema")
        }
    }
}
