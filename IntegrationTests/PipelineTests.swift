import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Testing

@testable import PGEvents

/// A database with the journal, blockchain-style `chain_events` (journaled on `chain_event`) and the `agents`
/// they refer to.
func pipelineDatabase() async throws -> TemporaryDatabase {
    let database = try await Shared.postgres().makeDatabase()
    let connection = try await database.connect()
    try await MigrationSet(directory: repositoryPath("sql/pgevents")).apply(to: connection)
    try await connection.execute(
        """
        CREATE TABLE agents (id integer PRIMARY KEY, name text NOT NULL, active boolean NOT NULL);
        CREATE TABLE chain_events (event_id text PRIMARY KEY, chain_id integer NOT NULL, agent_id text, event_type text NOT NULL);
        CREATE TRIGGER chain_events_journal AFTER INSERT ON chain_events
            FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('chain_event');
        INSERT INTO agents VALUES (1, 'alice', true), (2, 'bob', false);
        """)
    await connection.close()
    return database
}

let pipelineConfiguration = """
    consumer: rules
    channels:
      chain_event:
        decode: json
        fetch: {table: public.agents, key: id, from: event.row.agent_id}
        rule_mode: all_matches
        unmatched: drop
        rules:
          - name: feedback
            when: {all: [{field: event.row.event_type, eq: FeedbackGiven}, {field: row.active, eq: true}]}
            enqueue: {queue: "jobs:feedback", job: {event_id: "{{event.row.event_id}}", agent: "{{row.name}}", chain: "{{event.row.chain_id}}"}}
          - name: registry
            when: {field: event.row.event_type, in: [Registered, Updated]}
            enqueue: {queue: "jobs:registry", sink: stream, job: {event_id: "{{event.row.event_id}}", type: "{{event.row.event_type}}"}}
      raw_json:
        decode: json
        queue: raw
      parcels:
        decode: csv
        csv_columns: [op, schema, table, key, value]
        queue: parcels
    dead_letter_queue: dead
    batch_size: 50
    catch_up_interval: 0.5
    listener: {heartbeat_interval: 1, heartbeat_timeout: 10}
    retry: {initial: 0.05, maximum: 0.5}
    """

@Suite("The processor's pipeline: decode, fetch, rules, streams, dead letters")
struct PipelineTests {
    @Test(
        "rules on event and fetched row fields make jobs for lists and streams; undecodable payloads become dead letters; the processor goes on"
    )
    func rulesAndDeadLetters() async throws {
        let database = try await pipelineDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let processor = EventProcessor(
                configuration: try ProcessorConfiguration(yaml: pipelineConfiguration), postgres: database.configuration,
                redis: redis.configuration, logger: Logger(label: "test"))
            let reader = try await redis.connect()
            try await withRunningProcessor(processor) {
                try await writer.execute(
                    """
                    INSERT INTO chain_events VALUES
                        ('e1', 1, '1', 'FeedbackGiven'),      -- active agent: a feedback job
                        ('e2', 1, '2', 'FeedbackGiven'),      -- inactive agent: nothing
                        ('e3', 137, '1', 'Registered'),       -- a registry stream entry
                        ('e4', 1, '1; DROP TABLE agents; --', 'FeedbackGiven'),  -- a key that is no integer: a dead letter (22P02)
                        ('e5', 1, NULL, 'Transfer');          -- no rule: dropped
                    SELECT pgevents.emit('raw_json', '{"ok": true}');
                    SELECT pgevents.emit('raw_json', '{"truncated": ');
                    SELECT pgevents.emit('raw_json', E'\\x01\\x02 binary \\u00ff garbage');
                    SELECT pgevents.emit('parcels', 'INSERT,public,parcels,gid');
                    SELECT pgevents.emit('parcels', 'UPDATE,public,parcels,gid,"4, with a comma"');
                    """)
                try await waitForJobs(reader, count: 4, queue: "dead")
                try await waitForJobs(reader, count: 1, queue: "parcels")
                try await waitForJobs(reader, count: 1, queue: "raw")
                try await waitForJobs(reader, count: 1, queue: "jobs:feedback")
                // After the dead letters, the processor still delivers.
                try await writer.execute("INSERT INTO chain_events VALUES ('e6', 1, '1', 'Updated')")
                try await withTimeout(20) {
                    while try await reader.command("XLEN", "jobs:registry").integer ?? 0 < 2 {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            let feedback = try await reader.command("LRANGE", "jobs:feedback", 0, -1).array?.compactMap(\.string) ?? []
            #expect(feedback == [#"{"event_id":"e1","agent":"alice","chain":1}"#])
            let registry = try await reader.command("XRANGE", "jobs:registry", "-", "+").array ?? []
            let payloads = registry.compactMap { entry -> String? in
                guard let fields = entry.array?.last?.array?.compactMap(\.string), let index = fields.firstIndex(of: "payload") else {
                    return nil
                }
                return fields[index + 1]
            }
            #expect(payloads == [#"{"event_id":"e3","type":"Registered"}"#, #"{"event_id":"e6","type":"Updated"}"#])
            #expect(
                try await reader.command("LRANGE", "parcels", 0, -1).array?.compactMap(\.string) == [
                    #"UPDATE,public,parcels,gid,"4, with a comma""#
                ])
            let dead = try (await reader.command("LRANGE", "dead", 0, -1).array ?? []).reversed().map { item in
                try JSONSerialization.jsonObject(with: Data(item.bytes ?? [])) as? [String: Any] ?? [:]
            }
            #expect(dead.count == 4)
            #expect(dead.map { $0["channel"] as? String } == ["chain_event", "raw_json", "raw_json", "parcels"])
            #expect(dead[0]["sqlstate"] as? String == "22P02", "\(dead[0])")
            #expect((dead[0]["reason"] as? String)?.contains("not a value of integer") == true, "\(dead[0])")
            #expect((dead[1]["reason"] as? String)?.contains("not valid JSON") == true, "\(dead[1])")
            #expect((dead[3]["reason"] as? String)?.contains("4 fields") == true, "\(dead[3])")
            #expect(dead[2]["payload"] as? String == "\u{01}\u{02} binary \u{ff} garbage")
            // The injection attempt stayed a value: the table is still there.
            let check = try await database.connect()
            #expect(try await check.query("SELECT count(*) FROM agents").scalar(Int.self) == 2)
            await check.close()
            await reader.close()
        }
        await writer.close()
    }

    @Test("fetch keys reach PostgreSQL as they are: quotes, backslashes, commas, braces, a quote before a combining mark, empty, long")
    func fetchKeysAsTextArray() async throws {
        let keys = [
            "a", "b\"c", "d\\e", "x,y}", "{z", "\"\u{301}", "", "NULL", String(repeating: "é\"", count: 500), "1; DROP TABLE agents; --",
        ]
        let database = try await Shared.postgres().makeDatabase()
        let connection = try await database.connect()
        let result = try await connection.query(
            "SELECT k FROM unnest($1::text[]) WITH ORDINALITY AS p(k, i) ORDER BY i", [EventPipeline.textArrayLiteral(keys)])
        #expect(try result.map { try $0.decode(String.self, at: 0) } == keys)
        await connection.close()
    }

    @Test("a fetch from a table or column that does not exist stops the processor with a message naming it")
    func fetchTableChecked() async throws {
        let database = try await pipelineDatabase()
        try await withTemporaryRedis { redis in
            let yaml = pipelineConfiguration.replacingOccurrences(of: "table: public.agents, key: id", with: "table: public.agent, key: id")
            let processor = EventProcessor(
                configuration: try ProcessorConfiguration(yaml: yaml), postgres: database.configuration,
                redis: redis.configuration, logger: Logger(label: "test"))
            let error = await #expect(throws: ProcessorError.self) { try await withTimeout(20) { try await processor.run() } }
            #expect(error?.message == "channels.chain_event.fetch: there is no table public.agent in this database")
        }
    }

    @Test("pgevents process --metrics writes Prometheus text on SIGUSR1 and at shutdown, with the dead letters and deliveries counted")
    func metricsFile() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await pipelineDatabase()
        try await withTemporaryRedis { redis in
            let directory = try migrationDirectory(["processor.yml": pipelineConfiguration])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let metrics = directory + "/metrics.prom"
            // The URLs carry passwords: in the environment, never on the command line.
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = database.url
            environment["REDIS_URL"] = redis.url
            let child = try ChildProcess.spawn(
                executable, ["process", "--config", directory + "/processor.yml", "--metrics", metrics],
                outputPath: directory + "/process.log", environment: environment)
            let writer = try await database.connect()
            try await writer.execute(
                """
                INSERT INTO chain_events VALUES ('m1', 1, '1', 'FeedbackGiven');
                SELECT pgevents.emit('raw_json', 'not json');
                """)
            let reader = try await redis.connect()
            try await waitForJobs(reader, count: 1, queue: "jobs:feedback")
            try await waitForJobs(reader, count: 1, queue: "dead")
            child.kill(SIGUSR1)
            try await withTimeout(10) {
                while !FileManager.default.fileExists(atPath: metrics) { try await Task.sleep(for: .milliseconds(20)) }
            }
            let snapshot = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(snapshot.contains("pgevents_dead_letters_total{consumer=\"rules\",reason=\"decode\"} 1"), "\(snapshot)")
            #expect(snapshot.contains("pgevents_parse_errors_total{channel=\"raw_json\"} 1"))
            #expect(snapshot.contains("# TYPE pgevents_commit_to_queued_seconds histogram"))
            try FileManager.default.removeItem(atPath: metrics)
            child.kill(SIGTERM)
            #expect(await child.waitOffPool() == .exited(0), "\(tailOfFile(directory + "/process.log", maxLines: 20))")
            #expect(FileManager.default.fileExists(atPath: metrics), "written again at shutdown")
            await reader.close()
            await writer.close()
        }
    }
}
