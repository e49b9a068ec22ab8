import Foundation
import PGEventsHarness
import PGEventsPostgres
import PGEventsSystem
import Testing

/// `check --database-url`: an existing server stands in for the throwaway clusters.
@Suite("pgevents check --database-url")
struct CheckDatabaseURLTests {
    /// The server's databases, by name.
    private static func databases(_ admin: PostgresConnection) async throws -> [String] {
        try await admin.query("SELECT datname::text FROM pg_database ORDER BY 1").map { try $0.decode(String.self, at: 0) }
    }

    @Test("a role with only CREATEDB: scratch databases with unique names, dropped afterwards, also on failure; other databases untouched")
    func existingServer() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        try await withTemporaryPostgres { server in
            let admin = try await server.connect()
            try await admin.execute("CREATE ROLE ci_checker LOGIN CREATEDB PASSWORD 'ci-secret'")
            try await admin.execute("CREATE ROLE ci_reader LOGIN PASSWORD 'ci-secret'")
            try await admin.execute("CREATE DATABASE app_main OWNER ci_checker")
            let app = try await server.connect(database: "app_main")
            try await app.execute("CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'kept');")
            await app.close()
            let before = try await Self.databases(admin)
            let url = "postgresql://ci_checker:ci-secret@127.0.0.1:\(server.port)/app_main"

            let passing = try await runChild(
                executable, ["check", repositoryPath("IntegrationTests/CheckCorpus/goose-jobs/migrations"), "--database-url", url])
            #expect(passing.termination == .exited(0), "\(passing.output)")
            #expect(passing.output.contains("— PostgreSQL \(server.binaries.version)"), "\(passing.output)")
            #expect(
                passing.output.contains("✓ 2 migration file(s) apply (outside a transaction: 00002_jobs_fetch_index.sql)"),
                "\(passing.output)")
            #expect(passing.output.contains(#"public.jobs jobs_wake_workers INSERT → jobs_inserted: {"queue" : "default"}"#))
            #expect(try await Self.databases(admin) == before)

            // A failing migration and a failing check still drop every scratch database.
            let failing = try await runChild(
                executable, ["check", repositoryPath("IntegrationTests/CheckCorpus/failing-later-file"), "--database-url", url])
            #expect(failing.termination == .exited(1), "\(failing.output)")
            #expect(failing.output.contains("✓ trigger qc_notify is enabled"), "\(failing.output)")
            #expect(try await Self.databases(admin) == before)

            // Nothing in the other databases changed.
            let check = try await server.connect(database: "app_main")
            #expect(try await check.query("SELECT name FROM customers WHERE id = 1").scalar(String.self) == "kept")
            #expect(try await check.query("SELECT count(*) FROM pg_class WHERE relname = 'jobs'").scalar(Int.self) == 0)
            await check.close()

            // Without CREATEDB: bad input, naming what the role needs.
            let reader = "postgresql://ci_reader:ci-secret@127.0.0.1:\(server.port)/app_main"
            let refused = try await runChild(
                executable, ["check", repositoryPath("IntegrationTests/CheckCorpus/goose-jobs/migrations"), "--database-url", reader])
            #expect(refused.termination == .exited(2), "\(refused.output)")
            #expect(refused.output.contains("needs CREATEDB"), "\(refused.output)")
            #expect(!refused.output.contains("ci-secret"), "the password must not be printed: \(refused.output)")
            #expect(try await Self.databases(admin) == before)

            // An unreachable server, and --postgres-bin beside it, are bad input too.
            let unreachable = try await runChild(
                executable,
                [
                    "check", repositoryPath("IntegrationTests/CheckCorpus/goose-jobs/migrations"),
                    "--database-url", "postgresql://ci_checker:ci-secret@127.0.0.1:1/app_main",
                ])
            #expect(unreachable.termination == .exited(2), "\(unreachable.output)")
            #expect(unreachable.output.contains("cannot connect"), "\(unreachable.output)")
            let both = try await runChild(
                executable,
                [
                    "check", repositoryPath("IntegrationTests/CheckCorpus/goose-jobs/migrations"),
                    "--database-url", url, "--postgres-bin", server.binaries.directory,
                ])
            #expect(both.termination == .exited(2), "\(both.output)")
            await admin.close()
        }
    }
}
