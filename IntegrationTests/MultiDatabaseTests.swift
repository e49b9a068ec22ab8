import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

/// Installs the journal and an `events` table whose trigger journals every change into `database` of `server`.
private func installJournal(_ server: TemporaryPostgres, database: String) async throws {
    try await PostgresConnection.withConnection(server.configuration(database: database)) { connection in
        try await MigrationSet(directory: repositoryPath("sql/pgevents")).apply(to: connection)
        try await connection.execute(
            """
            CREATE TABLE events (id bigserial PRIMARY KEY, body text NOT NULL);
            CREATE TRIGGER events_journal AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION pgevents.journal_trigger('new_event');
            """)
    }
}

private func insert(_ server: TemporaryPostgres, database: String, body: String) async throws {
    try await PostgresConnection.withConnection(server.configuration(database: database)) { connection in
        try await connection.query("INSERT INTO events (body) VALUES ($1)", [body])
    }
}

/// Every job on `jobs` as `database/body`, oldest first.
private func jobs(_ redis: RedisConnection) async throws -> [String] {
    let reply = try await redis.command("LRANGE", "jobs", 0, -1)
    return try (reply.array ?? []).reversed().map { item in
        let object = try JSONSerialization.jsonObject(with: Data(item.bytes ?? [])) as? [String: Any]
        return "\(object?["db"] as? String ?? "?")/\(object?["body"] as? String ?? "?")"
    }
}

/// Waits (at most 60 s) until the jobs include `expected`; returns them all.
private func waitForJob(_ expected: String, on redis: RedisConnection) async throws -> [String] {
    let deadline = ContinuousClock.now + .seconds(60)
    while true {
        let all = try await jobs(redis)
        if all.contains(expected) || ContinuousClock.now > deadline { return all }
        try await Task.sleep(for: .milliseconds(50))
    }
}

private func configuration(databases: String) throws -> ProcessorConfiguration {
    try ProcessorConfiguration(
        yaml: """
            consumer: multi
            databases: \(databases)
            catch_up_interval: 0.2
            retry: {initial: 0.05, maximum: 0.2}
            channels:
              new_event:
                decode: json
                rules:
                  - name: every row
                    when: {field: event.op, eq: INSERT}
                    enqueue: {queue: jobs, job: {db: "{{meta.database}}", body: "{{event.row.body}}"}}
            """, file: "multi.yml")
}

@Suite("One process, several databases (databases: in processor.yml)")
struct MultiDatabaseTests {
    @Test(
        "named databases: each delivered with its own cursor and meta.database; one that refuses connections is retried while the other delivers"
    )
    func named() async throws {
        try await withTemporaryPostgres { server in
            try await withTemporaryRedis { redis in
                for name in ["app_a", "app_b"] {
                    try await server.execute("CREATE DATABASE \(name)")
                    try await installJournal(server, database: name)
                }
                try await server.execute("ALTER DATABASE app_b ALLOW_CONNECTIONS false")
                let processor = try MultiDatabaseProcessor(
                    configuration: try configuration(databases: "[app_a, app_b]"), postgres: server.configuration(database: "postgres"),
                    redis: redis.configuration, logger: Logger(label: "test"))
                let running = Task { try await processor.run() }
                let reader = try await redis.connect()
                try await insert(server, database: "app_a", body: "a1")
                #expect(try await waitForJob("app_a/a1", on: reader) == ["app_a/a1"])
                // app_b comes back: its processor, started again with backoff, delivers what it journals.
                try await server.execute("ALTER DATABASE app_b ALLOW_CONNECTIONS true")
                try await insert(server, database: "app_b", body: "b1")
                #expect(try await waitForJob("app_b/b1", on: reader) == ["app_a/a1", "app_b/b1"])
                try await insert(server, database: "app_a", body: "a2")
                #expect(try await waitForJob("app_a/a2", on: reader) == ["app_a/a1", "app_b/b1", "app_a/a2"])
                running.cancel()
                _ = await running.result
                // Each database's cursor: a second run delivers nothing again.
                let again = Task { try await processor.run() }
                try await insert(server, database: "app_b", body: "b2")
                #expect(try await waitForJob("app_b/b2", on: reader) == ["app_a/a1", "app_b/b1", "app_a/a2", "app_b/b2"])
                again.cancel()
                _ = await again.result
                await reader.close()
            }
        }
    }

    @Test(
        "discovered databases: include and exclude patterns; a database created later is served within the refresh, a dropped one stops"
    )
    func discovered() async throws {
        try await withTemporaryPostgres { server in
            try await withTemporaryRedis { redis in
                try await server.execute("CREATE DATABASE journal_template")
                try await installJournal(server, database: "journal_template")
                for name in ["app_a", "app_eu_test", "other"] {
                    try await server.execute("CREATE DATABASE \(name) TEMPLATE journal_template")
                }
                let processor = try MultiDatabaseProcessor(
                    configuration: try configuration(databases: "{include: \"app_*\", exclude: \"*_test\", refresh: 1}"),
                    postgres: server.configuration(database: "postgres"), redis: redis.configuration, logger: Logger(label: "test"))
                #expect(try await processor.currentDatabases() == ["app_a"])
                let running = Task { try await processor.run() }
                let reader = try await redis.connect()
                try await insert(server, database: "app_eu_test", body: "excluded")
                try await insert(server, database: "other", body: "not included")
                try await insert(server, database: "app_a", body: "a1")
                #expect(try await waitForJob("app_a/a1", on: reader) == ["app_a/a1"])
                try await server.execute("CREATE DATABASE app_new TEMPLATE journal_template")
                try await insert(server, database: "app_new", body: "n1")
                #expect(try await waitForJob("app_new/n1", on: reader) == ["app_a/a1", "app_new/n1"])
                // A dropped database stops being served at the next refresh; the others go on.
                try await server.execute("DROP DATABASE app_a WITH (FORCE)")
                try await withTimeout(60) {
                    while processor.statuses.snapshots.contains(where: { $0.database == "app_a" }) {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                #expect(processor.statuses.snapshots.map(\.database) == ["app_new"])
                try await insert(server, database: "app_new", body: "n2")
                #expect(try await waitForJob("app_new/n2", on: reader) == ["app_a/a1", "app_new/n1", "app_new/n2"])
                running.cancel()
                _ = await running.result
                await reader.close()
            }
        }
    }

    @Test("--check-config with databases: each database is checked under its name; one without the journal fails, named")
    func checkConfig() async throws {
        try await withTemporaryPostgres { server in
            try await withTemporaryRedis { redis in
                try await server.execute("CREATE DATABASE app_a")
                try await installJournal(server, database: "app_a")
                try await server.execute("CREATE DATABASE app_b")  // no journal
                let findings = await ConfigurationCheck.run(
                    try configuration(databases: "{include: \"app_*\"}"), postgres: server.configuration(database: "postgres"),
                    redis: redis.configuration, logger: Logger(label: "test"))
                let verdicts = findings.map { "\($0.passed ? "ok" : "FAIL") \($0.subject)" }
                #expect(
                    verdicts == [
                        "ok file", "ok databases", "ok app_a: postgres", "ok app_a: sessions", "ok app_a: source", "ok app_a: pipeline",
                        "ok app_b: postgres", "ok app_b: sessions", "FAIL app_b: source", "ok app_b: pipeline", "ok redis",
                        "ok redis eviction",
                    ])
                #expect(findings.first { $0.subject == "databases" }?.message == "app_a, app_b")
                #expect(findings.first { $0.subject == "app_b: source" }?.message.contains("sql/pgevents") == true)
            }
        }
    }
}
