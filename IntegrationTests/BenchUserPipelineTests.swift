import Foundation
import PGEvents
import PGEventsBench
import PGEventsHarness
import PGEventsSystem
import Testing

/// `pgevents bench` on a user's own pipeline (IntegrationTests/BenchPipeline/shop-orders: Flyway migrations with a
/// placeholder, a pgbench-style script, a processor.yml with a fetch, rules, a list and a stream): it ran, and
/// what it delivered is what the script committed. Never a timing.
@Suite("Bench on the user's pipeline", .serialized)
struct BenchUserPipelineTests {
    static let directory = repositoryPath("IntegrationTests/BenchPipeline/shop-orders")

    func options(writers: [Int], duration: Double, rate: Double = 1_000) throws -> ScenarioBench.Options {
        var options = ScenarioBench.Options(sqlDirectory: repositoryPath("sql/pgevents"))
        options.userPipeline = ScenarioBench.UserPipeline(
            migrations: try MigrationSet(directory: Self.directory + "/migrations", placeholders: Placeholders(["channel": "shop_orders"])),
            script: try BenchScript(contentsOf: Self.directory + "/checkout.sql"),
            processor: try ProcessorConfiguration(contentsOf: Self.directory + "/processor.yml"),
            processorPath: Self.directory + "/processor.yml")
        options.writers = writers
        options.duration = duration
        options.rate = rate
        return options
    }

    @Test("writers (2 writers, 0.5 s): the script commits, and its trigger notifies on the configuration's channel")
    func writers() async throws {
        let results = try await ScenarioBench(options: options(writers: [2], duration: 0.5)).run(.writers)
        let result = try #require(results.first)
        #expect(results.map(\.scenario) == ["writers/user/2"])
        #expect(result.events > 0, "no transaction committed")
        // One transaction journals two rows (INSERT, UPDATE) and sends one wake-up on shop_orders.
        #expect(result.extra["notifications"] == Double(result.events), "\(result.extra)")
        #expect(result.settings["layout"] == "flyway" && result.settings["script"]?.hasSuffix("checkout.sql") == true)
    }

    @Test("latency (200/s for 1 s): every journal row delivered once through the user's rules, one job each")
    func latency() async throws {
        let results = try await ScenarioBench(options: options(writers: [2], duration: 1, rate: 200)).run(.latency)
        let result = try #require(results.first)
        #expect(result.scenario == "latency/user")
        #expect(result.extra["transactions"] == 200)
        // 50 seeded orders, then an INSERT and an UPDATE per transaction.
        let rows = try #require(result.extra["journal_rows"])
        #expect(Int(rows) == 50 + 2 * 200 && result.extra["journal_rows_before"] == 50 && result.extra["events_per_transaction"] == 2)
        #expect(result.events == 450 && result.lost == 0 && result.duplicated == 0 && result.errors == 0)
        #expect(result.extra["jobs"] == 450, "every event makes one job (orders:new or orders:status): \(result.extra)")
        #expect(result.stages["appended→queued"] != nil && result.stages["scheduled→committed"] != nil)
        let decoded = try BenchResult.decode(json: Data(BenchResult.json(results).utf8))
        #expect(decoded.first?.settings["pipeline"] == "user")
    }

    @Test("refused where it does not apply: burst, and latency on a given Redis")
    func refused() async throws {
        await #expect(throws: HarnessError.self) { try await ScenarioBench(options: options(writers: [1], duration: 0.1)).run(.burst) }
        var given = try options(writers: [1], duration: 0.1)
        given.redisURL = "redis://127.0.0.1:1"
        await #expect(throws: HarnessError.self) { try await ScenarioBench(options: given).run(.latency) }
    }

    @Test("a migration that does not apply is named with its file and line")
    func failingMigration() async throws {
        var options = try options(writers: [1], duration: 0.1)
        // Without --define channel=…, Flyway's placeholder is refused before anything runs.
        #expect(throws: (any Error).self) { try MigrationSet(directory: Self.directory + "/migrations") }
        options.userPipeline?.script = try BenchScript(statement: "INSERT INTO shop.nothing VALUES (1)")
        let error = await #expect(throws: HarnessError.self) { try await ScenarioBench(options: options).run(.writers) }
        #expect(error?.description.contains("relation \"shop.nothing\" does not exist") == true, "\(String(describing: error))")
    }

    @Test("the command: the options reach the scenario, the JSON holds the result; mistakes are named before anything starts")
    func command() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let json = temporaryDirectory + "/pgevents-bench-user-\(getpid()).json"
        defer { unlink(json) }
        let common = [
            "--migrations", Self.directory + "/migrations", "--define", "channel=shop_orders", "--processor-config",
            Self.directory + "/processor.yml",
            "--sql", repositoryPath("sql/pgevents"),
        ]
        let run = try await runChild(
            executable,
            ["bench", "writers"] + common + [
                "--script", Self.directory + "/checkout.sql", "--writers", "1", "--duration", "0.3", "--json", json,
            ])
        #expect(run.termination == .exited(0), "\(run.output)")
        let result = try #require(try BenchResult.decode(json: Data(contentsOf: URL(fileURLWithPath: json))).first, "\(run.output)")
        #expect(
            result.scenario == "writers/user/1" && result.events > 0
                && result.settings["processor_config"]?.hasSuffix("processor.yml") == true)

        let undefined = try await runChild(
            executable, ["bench", "writers"] + common + ["--statement", "UPDATE shop.orders SET status = 'paid' WHERE id = :order"])
        #expect(
            undefined.termination == .exited(64) && undefined.output.contains("--statement:1: :order is not defined"), "\(undefined.output)"
        )
        let noProcessor = try await runChild(
            executable, ["bench", "latency", "--migrations", Self.directory + "/migrations", "--statement", "SELECT 1"])
        #expect(
            noProcessor.termination == .exited(64) && noProcessor.output.contains("--migrations needs --processor-config"),
            "\(noProcessor.output)")
        let burst = try await runChild(executable, ["bench", "burst"] + common + ["--statement", "SELECT 1"])
        #expect(burst.termination == .exited(2) && burst.output.contains("runs on the bench's own table only"), "\(burst.output)")
    }
}
