import Foundation
import PGEventsHarness
import PGEventsPostgres
import Testing

/// A spec's publications checked on an existing server (`--database-url`): the slot needs `wal_level = logical` and
/// a role with REPLICATION; without either the catalog is still judged and the slot part is skipped, saying why.
@Suite("pgevents check: publications on an existing server")
struct CheckPublicationTests {
    @Test("with wal_level = logical and REPLICATION a real slot is read, and nothing is left behind; without REPLICATION it is skipped")
    func logicalServer() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        try await withTemporaryPostgres { server in
            let admin = try await server.connect()
            try await admin.execute("CREATE ROLE cdc_checker LOGIN CREATEDB REPLICATION PASSWORD 'cdc-secret'")
            try await admin.execute("CREATE ROLE plain_checker LOGIN CREATEDB PASSWORD 'cdc-secret'")
            let set = repositoryPath("IntegrationTests/CheckCorpus/publication-column-list")

            let streamed = try await runChild(
                executable, ["check", set, "--database-url", "postgresql://cdc_checker:cdc-secret@127.0.0.1:\(server.port)/postgres"])
            #expect(streamed.termination == .exited(1), "\(streamed.output)")
            #expect(
                streamed.output.contains("✗ changes carry exactly the columns id, email, plan: the slot sends id, email; not plan"),
                "\(streamed.output)")
            #expect(streamed.output.contains("✓ the slot gives one UPDATE change per row"), "\(streamed.output)")
            #expect(try await admin.query("SELECT count(*) FROM pg_replication_slots").scalar(Int.self) == 0)
            #expect(try await admin.query("SELECT count(*) FROM pg_database WHERE datname LIKE 'pgevents_check_%'").scalar(Int.self) == 0)

            let refused = try await runChild(
                executable, ["check", set, "--database-url", "postgresql://plain_checker:cdc-secret@127.0.0.1:\(server.port)/postgres"])
            #expect(refused.termination == .exited(1), "\(refused.output)")
            #expect(refused.output.contains("✗ public.accounts publishes exactly the columns id, email, plan"), "\(refused.output)")
            #expect(
                refused.output.contains(
                    "– changes come out of a slot as the spec says (skipped: cannot create a temporary logical slot on this server"),
                "\(refused.output)")
            await admin.close()
        }
    }

    @Test("with wal_level = replica the catalog is judged and the slot part is skipped, naming the setting")
    func replicaServer() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        try await withTemporaryPostgres(.init(settings: ["wal_level": "replica"])) { server in
            let admin = try await server.connect()
            try await admin.execute("CREATE ROLE cdc_checker LOGIN CREATEDB REPLICATION PASSWORD 'cdc-secret'")
            await admin.close()
            let run = try await runChild(
                executable,
                [
                    "check", repositoryPath("IntegrationTests/CheckCorpus/publication-insert-only"), "--database-url",
                    "postgresql://cdc_checker:cdc-secret@127.0.0.1:\(server.port)/postgres",
                ])
            #expect(run.termination == .exited(1), "\(run.output)")
            #expect(run.output.contains("✗ sequin_pub publishes INSERT, UPDATE, DELETE for public.jobs"), "\(run.output)")
            #expect(
                run.output.contains(
                    "– changes come out of a slot as the spec says (skipped: this server runs with wal_level = replica, and a logical slot needs wal_level = logical"
                ), "\(run.output)")
            #expect(!run.output.contains("the slot gives"), "\(run.output)")
        }
    }
}
