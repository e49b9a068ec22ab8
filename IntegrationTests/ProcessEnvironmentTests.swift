import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Testing

@Suite("pgevents process configured like other services: the environment, libpq's variables, JSON logs")
struct ProcessEnvironmentTests {
    @Test(
        "PGEVENTS_CONFIG and PGEVENTS_LOG_FORMAT=json, no DATABASE_URL (PGHOST, PGPORT, PGUSER, PGDATABASE instead): jobs arrive, every log line is a JSON object, no secret in them"
    )
    func environmentAndJSONLogs() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await journalDatabase()
        try await withTemporaryRedis { redis in
            let directory = try migrationDirectory([
                "processor.yml": """
                consumer: environment
                channels: {new_event: {queue: jobs}}
                catch_up_interval: 0.5
                """
            ])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let settings = database.configuration
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") && $0.key != "DATABASE_URL" }
            environment["PGHOST"] = settings["host"]
            environment["PGPORT"] = settings["port"]
            environment["PGUSER"] = settings["user"]
            environment["PGDATABASE"] = settings["dbname"]
            environment["REDIS_URL"] = redis.url
            environment["PGEVENTS_CONFIG"] = directory + "/processor.yml"
            environment["PGEVENTS_LOG_FORMAT"] = "json"
            environment["PGEVENTS_LOG_LEVEL"] = "debug"
            let log = directory + "/process.log"
            let child = try ChildProcess.spawn(executable, ["process"], outputPath: log, environment: environment)
            let reader = try await redis.connect()
            try await PostgresConnection.withConnection(database.configuration) { writer in
                try await writer.query("INSERT INTO events (body) VALUES ('from the environment')")
            }
            do {
                try await waitForJobs(reader, count: 1)
            } catch {
                Issue.record("no job; log:\n\(tailOfFile(log, maxLines: 30))")
                child.kill(SIGKILL)
                _ = await child.waitOffPool()
                throw error
            }
            child.kill(SIGTERM)
            #expect(await child.waitOffPool() == .exited(0), "\(tailOfFile(log))")
            await reader.close()
            let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            #expect(lines.count >= 3)
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(
                    object?["time"] is String && object?["level"] is String && object?["label"] is String && object?["message"] is String,
                    "not a JSON log line: \(line)")
            }
            #expect(lines.contains { $0.contains(#""message":"leader""#) && $0.contains(#""consumer":"environment""#) }, "\(lines)")
            let password = try #require(redis.configuration.password)
            #expect(!lines.contains { $0.contains(password) }, "the Redis password is in the log")
        }
    }

    @Test("a bad PGEVENTS_LOG_FORMAT or PGEVENTS_LOG_LEVEL, or no configuration at all, is refused with the variable's name")
    func badEnvironment() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let directory = try migrationDirectory([:])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (variables, expected) in [
            (["PGEVENTS_CONFIG": "x.yml", "PGEVENTS_LOG_FORMAT": "xml"], "PGEVENTS_LOG_FORMAT must be text or json, not 'xml'"),
            (["PGEVENTS_CONFIG": "x.yml", "PGEVENTS_LOG_LEVEL": "loud"], "PGEVENTS_LOG_LEVEL must be one of"),
            ([:], "no configuration file: give --config or set PGEVENTS_CONFIG"),
        ] {
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PGEVENTS_") }
            environment.merge(variables) { $1 }
            let log = directory + "/out.log"
            let child = try ChildProcess.spawn(executable, ["process"], outputPath: log, environment: environment)
            #expect(await child.waitOffPool() != .exited(0))
            #expect(tailOfFile(log).contains(expected), "\(variables): \(tailOfFile(log))")
        }
    }

    @Test(
        "--check-config: a good file and its servers pass; a missing fetch table, a missing slot and an evicting Redis fail, named, and nothing is changed"
    )
    func checkConfig() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await journalDatabase()
        try await withTemporaryRedis { redis in
            let directory = try migrationDirectory([
                "good.yml": "consumer: checked\nchannels: {new_event: {queue: jobs}}\n",
                "bad.yml":
                    "consumer: checked\nchannels:\n  new_event: {queue: jobs, decode: json, fetch: {table: public.nowhere, key: id, from: event.row.id}}\n",
                "wal.yml": "source: wal\nconsumer: checked\nchannels: {public.events: {queue: jobs}}\n",
            ])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = database.url
            environment["REDIS_URL"] = redis.url
            func check(_ file: String) async throws -> (ChildProcess.Termination, String) {
                let log = directory + "/\(file).out"
                let child = try ChildProcess.spawn(
                    executable, ["process", "--config", directory + "/" + file, "--check-config"], outputPath: log, environment: environment
                )
                let termination = await child.waitOffPool()
                return (termination, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
            }
            let (good, goodOutput) = try await check("good.yml")
            #expect(good == .exited(0), "\(goodOutput)")
            for subject in ["file", "postgres", "sessions", "source", "pipeline", "redis", "redis eviction"] {
                #expect(goodOutput.contains("ok   \(subject):"), "\(subject) missing in:\n\(goodOutput)")
            }
            let (bad, badOutput) = try await check("bad.yml")
            #expect(bad == .exited(1) && badOutput.contains("FAIL pipeline:") && badOutput.contains("nowhere"), "\(badOutput)")
            let (wal, walOutput) = try await check("wal.yml")
            #expect(wal == .exited(1) && walOutput.contains("FAIL source:") && walOutput.contains("pgevents wal setup"), "\(walOutput)")
            let reader = try await redis.connect()
            _ = try await reader.command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
            await reader.close()
            let (evicting, evictingOutput) = try await check("good.yml")
            #expect(
                evicting == .exited(1) && evictingOutput.contains("FAIL redis eviction:") && evictingOutput.contains("allkeys-lru"),
                "\(evictingOutput)")
            let consumers = try await PostgresConnection.withConnection(database.configuration) { connection in
                try await connection.query("SELECT count(*) FROM pgevents.consumers WHERE name = 'checked'").scalar(Int.self)
            }
            #expect(consumers == 0, "--check-config registered a consumer")
        }
    }
}
