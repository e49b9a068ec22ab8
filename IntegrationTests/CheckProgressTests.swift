import PGEventsCheck
import PGEventsHarness
import Synchronization
import Testing

/// What `pgevents check` draws its progress bar from: each server, the migrations, each table exercised, the end.
@Suite("Check progress")
struct CheckProgressTests {
    @Test("progress rises from 0 to 1 and names each table as it is exercised")
    func steps() async throws {
        let seen = Mutex<[CheckRunner.Progress]>([])
        var runner = CheckRunner(
            options: .init(spec: nil, migrations: repositoryPath("IntegrationTests/CheckCorpus/dbmate-chat/db/migrations")))
        runner.progress = { progress in seen.withLock { $0.append(progress) } }
        let report = try await runner.run()
        #expect(report.passed)
        let steps = seen.withLock { $0 }
        let fractions = steps.map(\.fraction)
        #expect(fractions.first == 0 && fractions.last == 1, "\(steps)")
        #expect(zip(fractions, fractions.dropFirst()).allSatisfy { $0 <= $1 }, "not rising: \(fractions)")
        #expect(steps.contains { $0.message.contains("applying 2 migration file(s)") }, "\(steps)")
        #expect(steps.contains { $0.message.contains("1 of 1 table(s) exercised (public.messages)") }, "\(steps)")
    }
}
