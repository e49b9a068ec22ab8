import Foundation
import PGEventsBench
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Testing

/// A smoke run of each `pgevents bench` scenario at small sizes: correctness only (every event counted,
/// nothing lost or duplicated, the result's names, stages and fields, JSON that reads back), never timings.
@Suite("Bench scenarios: a smoke run of each", .serialized)
struct BenchScenarioTests {
    func options(_ configure: (inout ScenarioBench.Options) -> Void = { _ in }) -> ScenarioBench.Options {
        var options = ScenarioBench.Options(sqlDirectory: repositoryPath("sql/pgevents"))
        configure(&options)
        return options
    }

    /// Checks what every result must hold, and that the results read back from their JSON.
    func checkCommon(_ results: [BenchResult]) throws {
        for result in results {
            #expect(result.lost == 0, "\(result.scenario): \(result.lost) lost")
            #expect(result.duplicated == 0, "\(result.scenario): \(result.duplicated) duplicated")
            #expect(result.errors == 0, "\(result.scenario): \(result.errors) errors")
            #expect(result.events > 0 && result.eventsPerSecond > 0 && result.durationSeconds > 0, "\(result.scenario)")
            #expect(!result.postgresVersion.isEmpty && !result.redisVersion.isEmpty && result.machine.cores > 0)
            #expect(result.extra.values.allSatisfy { $0.isFinite })
        }
        let decoded = try BenchResult.decode(json: Data(BenchResult.json(results).utf8))
        #expect(decoded.map(\.scenario) == results.map(\.scenario))
        #expect(decoded.map(\.events) == results.map(\.events))
        #expect(decoded.map { Set($0.stages.keys) } == results.map { Set($0.stages.keys) })
        #expect(decoded.map(\.extra) == results.map(\.extra))
        #expect(decoded.map(\.settings) == results.map(\.settings))
        #expect(decoded.map(\.distribution) == results.map(\.distribution))
        #expect(!BenchResult.table(results).isEmpty)
    }

    static let pipelineStages: Set<String> = ["commit→notified", "notified→queued", "queued→consumed", "commit→queued", "commit→consumed"]

    @Test("load-1000 (200 events): every commit consumed once, every stage measured")
    func load() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.events = 200
                $0.writers = [2]
            }
        ).run(.load1000)
        try checkCommon(results)
        let result = try #require(results.first)
        #expect(results.map(\.scenario) == ["load-1000"])
        #expect(result.events == 200)
        #expect(Set(result.stages.keys) == Self.pipelineStages)
        #expect(result.stages.values.allSatisfy { $0.p50 <= $0.p99 && $0.p99 <= $0.max })
        #expect(result.latencyMicroseconds != nil && (result.distribution?.count ?? 0) >= 50)
        #expect(result.extra["consumed_after_last_commit_s"] != nil && result.extra["drain_s"] != nil)
    }

    @Test("throughput (1 s, 2 writers): drained, with the memory figures")
    func throughput() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.duration = 1
                $0.writers = [2]
            }
        ).run(.throughput)
        try checkCommon(results)
        let result = try #require(results.first)
        #expect(result.scenario == "throughput")
        for key in ["commits_per_s", "notifications_per_s", "backlog_at_end", "drain_s", "rss_start_mb", "rss_end_mb", "rss_max_mb"] {
            #expect(result.extra[key] != nil, "extra[\(key)] is missing")
        }
        #expect(result.settings["writers"] == "2")
    }

    @Test("burst (5,000 events, with the raw LISTEN loop): drained, CPU per event and the raw rate reported")
    func burst() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.burstSize = 5_000
                $0.compareRaw = true
            }
        ).run(.burst)
        try checkCommon(results)
        let result = try #require(results.first)
        #expect(result.scenario == "burst" && result.events == 5_000)
        for key in ["cpu_us_per_event", "drain_s", "raw_events_per_s", "fraction_of_raw"] {
            #expect(result.extra[key] != nil, "extra[\(key)] is missing")
        }
    }

    @Test("burst through rules and through batching (2,005 events): nothing lost; batches hold 10 jobs, the last one 5")
    func burstPipelines() async throws {
        let rules = try await ScenarioBench(
            options: options {
                $0.burstSize = 2_005
                $0.pipeline = .rules
            }
        ).run(.burst)
        try checkCommon(rules)
        #expect(rules.first?.scenario == "burst/rules" && rules.first?.extra["messages"] == 2_005)
        let batched = try await ScenarioBench(
            options: options {
                $0.burstSize = 2_005
                $0.pipeline = .batch
            }
        ).run(.burst)
        try checkCommon(batched)
        #expect(batched.first?.scenario == "burst/batch" && batched.first?.extra["messages"] == 201, "\(batched.first?.extra ?? [:])")
        #expect(batched.first?.settings["pipeline"] == "batch")
        // Batching times messages, not events: refused elsewhere.
        await #expect(throws: HarnessError.self) { try await ScenarioBench(options: options { $0.pipeline = .batch }).run(.latency) }
    }

    @Test("throughput through the rules (2 writers, 1 s): the processor's jobs are the template's, each row once")
    func throughputRules() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.writers = [2]
                $0.duration = 1
                $0.pipeline = .rules
            }
        ).run(.throughput)
        try checkCommon(results)
        #expect(results.first?.scenario == "throughput/rules")
    }

    @Test("latency (200/s for 1 s, with the raw LISTEN loop): every scheduled event consumed once, percentiles per stage")
    func latency() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.rate = 200
                $0.duration = 1
                $0.compareRaw = true
            }
        ).run(.latency)
        try checkCommon(results)
        let result = try #require(results.first)
        #expect(result.scenario == "latency" && result.events == 200)
        #expect(Set(result.stages.keys) == Self.pipelineStages)
        #expect(result.extra["raw_events_per_s"] != nil && result.extra["fraction_of_raw"] != nil)
    }

    @Test(
        "writers ([1, 2] for 0.5 s): one result per pattern and writer count; every notification arrives; the WAL patterns deliver every commit"
    )
    func writers() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.writers = [1, 2]
                $0.duration = 0.5
            }
        ).run(.writers)
        try checkCommon(results)
        #expect(
            results.map(\.scenario)
                == ["none", "row", "statement", "journal", "wal", "emit_wal"].flatMap { ["writers/\($0)/1", "writers/\($0)/2"] })
        for result in results where ["row", "statement", "journal"].contains(where: { result.scenario.hasPrefix("writers/\($0)/") }) {
            #expect(result.extra["notifications_missing"] == 0, "\(result.scenario): \(result.extra)")
        }
        for result in results where result.scenario.hasPrefix("writers/wal/") || result.scenario.hasPrefix("writers/emit_wal/") {
            #expect(result.extra["delivered"] == Double(result.events) && result.errors == 0, "\(result.scenario): \(result.extra)")
        }
    }

    @Test("burst --source wal (2,000 rows): drained from a replication slot, each once")
    func burstFromSlot() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.burstSize = 2_000
                $0.source = .wal
            }
        ).run(.burst)
        try checkCommon(results)
        let result = try #require(results.first)
        #expect(result.scenario == "burst/wal" && result.events == 2_000 && result.settings["source"] == "wal")
    }

    @Test("latency --source wal --pipeline rules (100 events): rows fetched from the published table, each once, no notify stage")
    func latencyFromSlot() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.rate = 200
                $0.duration = 0.5
                $0.writers = [2]
                $0.source = .wal
                $0.pipeline = .rules
            }
        ).run(.latency)
        try checkCommon(results)
        let result = try #require(results.first)
        #expect(result.scenario == "latency/wal/rules" && result.events == 100 && result.settings["source"] == "wal")
        // No trigger, no notification: the events come from the slot.
        #expect(result.stages["commit→notified"] == nil && result.stages["commit→queued"] != nil, "\(result.stages.keys)")
    }

    @Test("replication (100 rows): every publisher commit notified by the subscriber once")
    func replication() async throws {
        let results = try await ScenarioBench(
            options: options {
                $0.rate = 200
                $0.duration = 0.5
            }
        ).run(.replication)
        try checkCommon(results)
        let result = try #require(results.first)
        #expect(result.scenario == "replication" && result.events == 100)
        #expect(Set(result.stages.keys) == ["commit→notified"])
    }

    @Test("on given servers: a scratch database and prefixed Redis keys, both gone afterwards")
    func givenServers() async throws {
        try await withTemporaryPostgres { postgres in
            try await withTemporaryRedis { redis in
                let results = try await ScenarioBench(
                    options: options {
                        $0.events = 50
                        $0.writers = [1]
                        $0.databaseURL = postgres.url(database: "postgres")
                        $0.redisURL = redis.url
                    }
                ).run(.load1000)
                try checkCommon(results)
                #expect(results.first?.settings["servers"] == "given")
                let databases = try await postgres.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'pgevents_bench_%'").scalar(
                    Int.self)
                #expect(databases == 0)
                let connection = try await redis.connect()
                let keys = try await connection.command("KEYS", "pgevents-bench:*").array ?? []
                #expect(keys.isEmpty, "left behind: \(keys)")
                await connection.close()
            }
        }
    }

    @Test("soak without poison (3 s at 500/s, sampled every 0.5 s): every good event delivered once, the samples and series recorded")
    func soakWithoutPoison() async throws {
        let outcome = try await ScenarioBench(
            options: options {
                $0.duration = 3
                $0.soak.rate = 500
                $0.soak.sampleInterval = 0.5
                $0.soak.poisonEvery = 0
                $0.soak.stallTimeout = 20
            }
        ).runSoak()
        try checkCommon([outcome.result])
        let report = outcome.report
        #expect(report.runFailure == nil, "\(report.runFailure ?? "")")
        #expect(report.events.good > 0 && report.events.good == outcome.result.events)
        #expect(report.events.delivered == report.events.good && report.events.lost == 0 && report.events.duplicated == 0)
        #expect(report.events.poison == 0 && report.events.wrongType == 0 && report.events.unidentifiedDeadLetters == 0)
        // Only growth may fail a run this short (the journal is pruned once a minute, dedupe keys live a day).
        #expect(report.failures.allSatisfy { $0.contains("grew") }, "\(report.failures)")
        #expect(outcome.passed == report.failures.isEmpty)

        #expect(!report.samples.isEmpty)
        for (previous, sample) in zip(report.samples, report.samples.dropFirst()) {
            #expect(
                sample.elapsedSeconds > previous.elapsedSeconds && sample.committed >= previous.committed
                    && sample.delivered >= previous.delivered)
        }
        for sample in report.samples {
            #expect(sample.journalBytes > 0 && sample.redisUsedMemory > 0 && sample.residentMegabytes > 0 && sample.deadLettered == 0)
        }
        #expect(outcome.result.series == report.samples.map(\.seriesPoint))
        let decoded = try BenchResult.decode(json: Data(BenchResult.json([outcome.result]).utf8))
        #expect(decoded.first?.series == outcome.result.series)
        #expect(outcome.result.settings["poison_every"] == "0" && outcome.result.settings["rss"] != nil)
        #expect(outcome.table.contains("journal rows") && outcome.table.contains(outcome.passed ? "PASSED" : "FAILED:"))
        #expect(BenchHTML.render([outcome.result]).contains("Series: soak"))
    }

    @Test("soak with poison (3 s at 400/s, a poison and a WRONGTYPE event every 100): the run ends, and says why it failed")
    func soakWithPoison() async throws {
        let outcome = try await ScenarioBench(
            options: options {
                $0.duration = 3
                $0.soak.rate = 400
                $0.soak.sampleInterval = 1
                $0.soak.poisonEvery = 100
                $0.soak.stallTimeout = 10
            }
        ).runSoak()
        let report = outcome.report
        #expect(report.events.poison > 0 && report.events.wrongType > 0, "\(report.events)")
        #expect(report.events.good + report.events.poison + report.events.wrongType == outcome.result.events)
        #expect(outcome.result.settings["poison_every"] == "100")
        // What went wrong is the processor's (its error, or its stall with what it logged last), never the bench's.
        if let failure = report.runFailure { #expect(failure.hasPrefix("the processor"), "\(failure)") }
        #expect(outcome.table.contains(outcome.passed ? "PASSED" : "FAILED:"))
        #expect(outcome.result.note?.contains(outcome.passed ? "passed" : "FAILED") == true)

        #expect(report.runFailure == nil, "\(report.runFailure ?? "")")
        #expect(report.events.lost == 0 && report.events.duplicated == 0, "\(report.events)")
        #expect(report.events.poison > 0 && report.events.poisonDeadLettered == report.events.poison, "\(report.events)")
        #expect(report.events.wrongType > 0 && report.events.wrongTypeDeadLettered == report.events.wrongType, "\(report.events)")
        #expect(report.events.badDelivered == 0 && report.events.goodDeadLettered == 0)
    }

    @Test("soak refuses given servers and bad settings before starting anything")
    func soakValidation() async throws {
        let given = await #expect(throws: HarnessError.self) {
            try await ScenarioBench(options: options { $0.redisURL = "redis://127.0.0.1:1/0" }).runSoak()
        }
        #expect(given?.message.contains("throwaway servers only") == true)
        await #expect(throws: HarnessError.self) { try await ScenarioBench(options: options { $0.soak.poisonEvery = -1 }).runSoak() }
        await #expect(throws: HarnessError.self) { try await ScenarioBench(options: options { $0.soak.sampleInterval = 0 }).runSoak() }
        await #expect(throws: HarnessError.self) { try await ScenarioBench(options: options { $0.pipeline = .rules }).run(.soak) }
    }

    @Test(
        "pgevents bench fanout (the executable, 1 and 20 clients at 20 events/s for 1 s, and 20 with a slow one): every client gets every event once; the figures and the JSON; bad input refused before anything starts"
    )
    func fanoutCommand() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let directory = try migrationDirectory([:])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func run(_ arguments: [String]) async throws -> (ChildProcess.Termination, String) {
            let output = directory + "/out.txt"
            let child = try ChildProcess.spawn(
                executable, ["bench", "fanout", "--sql", repositoryPath("sql/pgevents")] + arguments, outputPath: output,
                environment: ProcessInfo.processInfo.environment)
            do {
                let termination = try await withTimeout(180) {
                    while true {
                        if let ended = child.poll() { return ended }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                return (termination, try String(contentsOfFile: output, encoding: .utf8))
            } catch {
                child.kill(SIGKILL)
                _ = await child.waitOffPool()
                throw error
            }
        }
        let json = directory + "/fanout.json"
        let (termination, text) = try await run([
            "--clients", "1,20", "--rates", "20", "--duration", "1", "--slow-cell", "20@20", "--json", json,
        ])
        #expect(termination == .exited(0), "\(text)")
        let results = try BenchResult.decode(json: Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(results.map(\.scenario) == ["fanout/1/20", "fanout/20/20", "fanout/20/20/slow"], "\(text)")
        try checkCommon(results)
        for result in results {
            #expect(result.events == 20, "\(result.scenario)")
            #expect(
                result.extra["deliveries"]
                    == Double(20 * (Int(result.settings["clients"] ?? "") ?? 0) - (result.scenario.hasSuffix("/slow") ? 20 : 0)))
            #expect(result.stages.keys.sorted() == ["commit→client"])
            #expect(result.extra["rss_kb_per_idle_client"] != nil && result.extra["gateway_rss_mb"].map { $0 > 0 } == true)
        }
        #expect(results.last?.extra["p99_ratio"] != nil && results.last?.extra["slow_client_messages"] != nil)

        let (refused, message) = try await run(["--clients", "0"])
        #expect(refused != .exited(0))
        #expect(message.contains("--clients must be counts in 1…50,000"), "\(message)")
    }

    @Test(
        "pgevents bench soak (the executable, 2 s, no poison): the table, the JSON with its series, the HTML; exit 1 exactly when a check failed"
    )
    func soakCommand() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let directory = try migrationDirectory([:])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let json = directory + "/soak.json"
        let html = directory + "/soak.html"
        let output = directory + "/out.txt"
        let child = try ChildProcess.spawn(
            executable,
            [
                "bench", "soak", "--duration", "2", "--rate", "300", "--sample-interval", "0.5", "--poison-every", "0",
                "--sql", repositoryPath("sql/pgevents"), "--json", json, "--html", html,
            ],
            outputPath: output, environment: ProcessInfo.processInfo.environment)
        let termination: ChildProcess.Termination
        do {
            termination = try await withTimeout(120) {
                while true {
                    if let ended = child.poll() { return ended }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        } catch {
            child.kill(SIGKILL)
            _ = await child.waitOffPool()
            throw error
        }
        let text = try String(contentsOfFile: output, encoding: .utf8)
        let result = try #require(try BenchResult.decode(json: Data(contentsOf: URL(fileURLWithPath: json))).first, "\(text)")
        #expect(result.scenario == "soak" && result.lost == 0 && result.duplicated == 0, "\(text)")
        #expect(!(result.series ?? []).isEmpty)
        let failures = try #require(result.extra["failures"])
        #expect(termination == .exited(failures == 0 ? 0 : 1), "\(text)")
        #expect(
            text.contains("t s  journal rows") && text.contains("RSS is the bench process's own")
                && text.contains(failures == 0 ? "PASSED" : "FAILED:"))
        #expect(try String(contentsOfFile: html, encoding: .utf8).contains("Series: soak"))
    }
}
