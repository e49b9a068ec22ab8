import Foundation
import PGEventsCheck
import PGEventsHarness
import Testing

/// The rows `check` generates must be rows the schema accepts, or the triggers are never exercised.
@Suite("pgevents check: generated rows the schema accepts")
struct CheckGeneratorTests {
    /// A notifying trigger on `table`, for the tables below.
    private static func notifying(_ table: String) -> String {
        """
        CREATE FUNCTION notify_\(table)() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('\(table)', json_build_object('op', TG_OP, 'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text); RETURN NULL; END $$;
        CREATE TRIGGER \(table)_notify AFTER INSERT OR UPDATE OR DELETE ON \(table) FOR EACH ROW EXECUTE FUNCTION notify_\(table)();
        """
    }

    @Test(
        "a regex CHECK's pattern is not used as the value; a smallint is not given a number it cannot hold; UNIQUE timestamps differ; a CHECK across optional columns is met with NULLs"
    )
    func generatedRowsAreAccepted() async throws {
        let report = try await runCheck([
            "001.sql": """
            CREATE TABLE slugs (
                id serial PRIMARY KEY,
                slug text NOT NULL CHECK (slug ~ '^[a-z0-9]+$') UNIQUE,
                code varchar(10) NOT NULL CHECK (code LIKE 'C%' OR code ~* '^[a-z0-9]+$')
            );
            \(Self.notifying("slugs"))

            CREATE TABLE readings (
                id serial PRIMARY KEY,
                level smallint NOT NULL,
                taken_at timestamptz NOT NULL UNIQUE,
                day date NOT NULL UNIQUE
            );
            \(Self.notifying("readings"))

            -- The job-queue shape: finished_at is set exactly when the job is finished.
            CREATE TABLE queue_jobs (
                id bigserial PRIMARY KEY,
                state text NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'running', 'completed')),
                attempted_by text,
                finished_at timestamptz,
                CONSTRAINT finished_or_not CHECK ((state = 'completed' AND finished_at IS NOT NULL) OR (state <> 'completed' AND finished_at IS NULL))
            );
            \(Self.notifying("queue_jobs"))
            """
        ])
        for table in ["public.slugs", "public.readings", "public.queue_jobs"] {
            let skipped = report.results.filter { $0.group == table && $0.status == .skipped }
            #expect(skipped.isEmpty, "\(table): \(skipped.map(\.message))\n\(report.dump)")
            for operation in ["INSERT", "UPDATE", "DELETE"] {
                #expect(
                    report.observed.contains { $0.table == table && $0.operation == operation },
                    "\(table) \(operation) never notified:\n\(report.dump)")
            }
            #expect(
                report.results.contains {
                    $0.group == table && $0.name.hasPrefix("two rows in one transaction notify twice") && $0.status == .passed
                }, "\(report.dump)")
        }
        #expect(report.passed, "\(report.dump)")
    }
}

@Suite("pgevents check: which operations fired each trigger")
struct CheckCoverageTests {
    @Test(
        "per trigger, the operations that fired it; one that never fired is skipped with the reason, not passed; UPDATE OF columns are the ones updated"
    )
    func coverage() async throws {
        let report = try await runCheck([
            "001.sql": """
            CREATE TABLE tasks (id serial PRIMARY KEY, title text NOT NULL, priority int NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false);
            CREATE FUNCTION task_event() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify(TG_ARGV[0], json_build_object('id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text); RETURN NULL; END $$;
            -- Fires for every row.
            CREATE TRIGGER tasks_created AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION task_event('task_created');
            -- Only when priority changes: the generated UPDATE must change priority, not the first column.
            CREATE TRIGGER tasks_reprioritised AFTER UPDATE OF priority ON tasks FOR EACH ROW EXECUTE FUNCTION task_event('task_priority');
            -- Never, for the rows check writes: done stays false.
            CREATE TRIGGER tasks_done AFTER UPDATE ON tasks FOR EACH ROW WHEN (NEW.done AND NOT OLD.done) EXECUTE FUNCTION task_event('task_done');
            -- A condition inside the function that no generated row meets.
            CREATE FUNCTION task_archived() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF OLD.title = 'archive me' THEN PERFORM pg_notify('task_archived', OLD.id::text); END IF; RETURN NULL; END $$;
            CREATE TRIGGER tasks_archived AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION task_archived();
            """
        ])
        func status(_ name: String) -> CheckStatus? { report.results.first { $0.name == name }?.status }
        #expect(status("trigger tasks_created fired on INSERT") == .passed, "\(report.dump)")
        #expect(status("trigger tasks_reprioritised fired on UPDATE") == .passed, "\(report.dump)")
        let done = try #require(report.results.first { $0.name == "trigger tasks_done fired on UPDATE" }, "\(report.dump)")
        #expect(done.status == .skipped)
        #expect(done.message.contains("its WHEN ((new.done AND (NOT old.done))) was false for every generated row"), "\(done.message)")
        let archived = try #require(report.results.first { $0.name == "trigger tasks_archived fired on DELETE" }, "\(report.dump)")
        #expect(archived.status == .skipped)
        #expect(archived.message.contains("did not notify for any generated row"), "\(archived.message)")
        #expect(!report.results.contains { $0.name.contains("tasks_done") && $0.status == .passed && $0.name.contains("fired") })
    }
}
