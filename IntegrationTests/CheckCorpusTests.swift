import Foundation
import PGEventsHarness
import PGEventsSystem
import Testing

/// One migration set of `IntegrationTests/CheckCorpus/`, the arguments `check` gets, and the verdict its
/// EXPECTED.md states: the exit status and lines the output must hold, per PostgreSQL major version.
struct CorpusCase: Sendable, CustomTestStringConvertible {
    /// The directory (or spec) under CheckCorpus/.
    var path: String
    var arguments: [String] = []
    /// The exit status on a server of this major version.
    var exit: @Sendable (_ major: Int, _ binDirectory: String) -> Int32 = { _, _ in 0 }
    /// Lines (or parts of lines) the output must hold, by the exit status it ended with.
    var lines: @Sendable (_ exit: Int32) -> [String]
    /// What must not appear whatever the version.
    var absent: [String] = []

    var testDescription: String { ([path] + arguments).joined(separator: " ") }

    /// Whether the server of `binDirectory` has the extension's control file (Debian's layout, or the bundled one's).
    static func has(extension name: String, major: Int, binDirectory: String) -> Bool {
        let bundled = URL(fileURLWithPath: binDirectory).deletingLastPathComponent().appendingPathComponent("share/extension/\(name).control").path
        return FileManager.default.fileExists(atPath: "/usr/share/postgresql/\(major)/extension/\(name).control") && binDirectory.hasPrefix("/usr/lib/postgresql/")
            || FileManager.default.fileExists(atPath: bundled)
    }

    static let all: [CorpusCase] = [
        CorpusCase(path: "function-only-notify", lines: { _ in [
            "✓ no notifying trigger (nothing to exercise); functions that notify without a trigger: public.enqueue_job(target_queue text, job_args jsonb) notifies on 'jobs_' || target_queue; public.resign_leader(leader_name text) notifies on 'leadership'",
            "PASSED",
        ] }, absent: ["✗"]),
        CorpusCase(path: "statement-level-wakeup", lines: { _ in [
            "✓ trigger notify_readers is enabled",
            "! two rows in one transaction notify twice on mq_emails_insert: notify_readers is a FOR EACH STATEMENT trigger",
            "mq.q_emails notify_readers INSERT → mq_emails_insert: (empty)", "PASSED",
        ] }, absent: ["✗", "NEW's key", "primary key"]),
        CorpusCase(path: "constant-queue-payload", lines: { _ in [
            "! two rows in one transaction notify twice on jobs_insert: two INSERTs committed together gave 1 notification(s) on jobs_insert, not 2: PostgreSQL delivers identical payloads of one transaction once",
            #"public.background_jobs background_jobs_inserted INSERT → jobs_insert: {"queue" : "default"}"#, "PASSED",
        ] }, absent: ["✗"]),
        CorpusCase(path: "queue-payload-spec-per-row", exit: { _, _ in 1 }, lines: { _ in [
            "✗ two rows in one transaction notify twice on jobs_insert: two INSERTs committed together gave 1 notification(s) on jobs_insert, not 2: PostgreSQL delivers identical payloads of one transaction once; the spec says one notification per row",
            "fix: put the row's key (its primary key) in the payload, or write once_per: transaction in tables.public.background_jobs if it is a wake-up signal",
            "FAILED",
        ] }),
        CorpusCase(path: "queue-payload-spec-wakeup", lines: { _ in [
            "✓ two rows in one transaction notify at least once on jobs_insert", "✓ INSERT notifies on jobs_insert once per row", "PASSED",
        ] }, absent: ["✗", "!"]),
    ]
}

/// The server installations to run the corpus on: Debian's 15, and 18 where ci/setup installed it.
private let corpusServers: [(major: Int, directory: String)] = {
    var found: [(Int, String)] = []
    for major in [15, 18] {
        if let binaries = PostgresBinaries.all().first(where: { $0.majorVersion == major }) { found.append((major, binaries.directory)) }
    }
    return found
}()

@Suite("pgevents check on the corpus of real-world migration patterns")
struct CheckCorpusTests {
    @Test("each set gets the verdict its EXPECTED.md states, on PostgreSQL 15 and 18", arguments: CorpusCase.all)
    func verdict(_ corpus: CorpusCase) throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        #expect(corpusServers.contains { $0.major == 15 }, "PostgreSQL 15 is not installed")
        let directory = repositoryPath("IntegrationTests/CheckCorpus/\(corpus.path)")
        for (major, bin) in corpusServers {
            let run = try ChildProcess.run(executable, ["check", directory, "--postgres-bin", bin] + corpus.arguments)
            let expected = corpus.exit(major, bin)
            #expect(run.termination == .exited(expected), "PostgreSQL \(major): \(run.output)")
            for line in corpus.lines(expected) {
                #expect(run.output.contains(line), "PostgreSQL \(major): missing «\(line)» in:\n\(run.output)")
            }
            for text in corpus.absent {
                #expect(!run.output.contains(text), "PostgreSQL \(major): unexpected «\(text)» in:\n\(run.output)")
            }
        }
    }

    @Test("every set in CheckCorpus/ is exercised by a case, and has its EXPECTED.md")
    func everySetIsTested() throws {
        let root = repositoryPath("IntegrationTests/CheckCorpus")
        let sets = try FileManager.default.contentsOfDirectory(atPath: root).filter { !$0.hasPrefix(".") }.sorted()
        let tested = Set(CorpusCase.all.map { String($0.path.split(separator: "/")[0]) })
        #expect(Set(sets) == tested)
        for set in sets {
            #expect(FileManager.default.fileExists(atPath: "\(root)/\(set)/EXPECTED.md"), "\(set) has no EXPECTED.md")
        }
    }
}
