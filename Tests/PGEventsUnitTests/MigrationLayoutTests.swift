import Testing

@testable import PGEventsHarness

@Suite("Migration layouts: detection and order")
struct MigrationLayoutTests {
    private func detect(_ files: [String: String]) -> MigrationLayout {
        MigrationLayout.detect(names: Array(files.keys)) { files[$0] }
    }

    @Test("each tool's layout is recognised from its names or annotations; anything else is plain")
    func detection() {
        #expect(detect(["sqitch.plan": "%project=x\n", "deploy": ""]) == .sqitch)
        #expect(detect(["V1__init.sql": "", "R__views.sql": ""]) == .flyway)
        #expect(detect(["R__only_repeatable.sql": ""]) == .flyway)
        #expect(detect(["1_init.up.sql": "", "1_init.down.sql": ""]) == .golangMigrate)
        #expect(detect(["20240101_a.sql": "-- +goose Up\nSELECT 1;\n-- +goose Down\n"]) == .goose)
        #expect(detect(["20240101_a.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\n"]) == .dbmate)
        #expect(detect(["001_a.sql": "SELECT 1; -- migrate:up in a comment after code is not an annotation\n"]) == .plain)
        #expect(detect(["001_a.sql": "SELECT 1;", "README.md": "V1__x.sql"]) == .plain)
        // A V without a double underscore, or a version that is not numeric, is not Flyway's.
        #expect(detect(["V1_init.sql": "", "Vx__init.sql": ""]) == .plain)
    }

    @Test("plain: natural order, 2 before 10; only .sql files")
    func plainOrder() throws {
        let order = try MigrationLayout.plain.order(["10_x.sql", "2_x.sql", "1_a.sql", "notes.txt", "001_z.sql", "b.sql", "a.sql"])
        #expect(order == ["001_z.sql", "1_a.sql", "2_x.sql", "10_x.sql", "a.sql", "b.sql"])
        #expect(NaturalOrder.less("v2.sql", "v10.sql"))
        #expect(!NaturalOrder.less("v10.sql", "v2.sql"))
        #expect(NaturalOrder.less("99999999999999999999999_a.sql", "999999999999999999999999_a.sql"))
    }

    @Test("Flyway: versions numerically (V2 before V10, V1.1 between V1 and V2), repeatables after, undo files never")
    func flywayOrder() throws {
        let names = [
            "R__b_views.sql", "V10__ten.sql", "V2__two.sql", "V1__one.sql", "V1.1__one_one.sql", "V1_2__one_two.sql",
            "R__a_functions.sql", "U2__undo_two.sql", "V2__two.sql.conf", "README.md",
        ]
        #expect(
            try MigrationLayout.flyway.order(names) == [
                "V1__one.sql", "V1.1__one_one.sql", "V1_2__one_two.sql", "V2__two.sql", "V10__ten.sql", "R__a_functions.sql",
                "R__b_views.sql",
            ])
    }

    @Test("Flyway callbacks: beforeMigrate first, afterMigrate and afterMigrateApplied last; per-script and error callbacks never")
    func flywayCallbacks() throws {
        let names = [
            "afterMigrate__grants.sql", "V1__one.sql", "beforeMigrate.sql", "afterMigrate.sql", "R__views.sql", "afterMigrateApplied.sql",
            "beforeEachMigrate.sql", "afterMigrateError.sql", "afterEachMigrate__log.sql",
        ]
        #expect(
            try MigrationLayout.flyway.order(names) == [
                "beforeMigrate.sql", "V1__one.sql", "R__views.sql", "afterMigrate.sql", "afterMigrate__grants.sql",
                "afterMigrateApplied.sql",
            ])
    }

    @Test("two files with the same version are refused, naming both")
    func duplicates() {
        let flyway = #expect(throws: HarnessError.self) { try MigrationLayout.flyway.order(["V1__a.sql", "V1.0__b.sql"]) }
        #expect(
            flyway?.message.contains("V1.0__b.sql and V1__a.sql") == true || flyway?.message.contains("V1__a.sql and V1.0__b.sql") == true,
            "\(flyway?.message ?? "")")
        let golang = #expect(throws: HarnessError.self) { try MigrationLayout.golangMigrate.order(["1_a.up.sql", "01_b.up.sql"]) }
        #expect(golang?.message.contains("the same version 1") == true)
    }

    @Test("golang-migrate runs the .up.sql files by version and never a .down.sql; goose and dbmate need a version")
    func versionedOrder() throws {
        #expect(
            try MigrationLayout.golangMigrate.order(["10_c.up.sql", "2_b.up.sql", "2_b.down.sql", "1_a.up.sql", "1_a.down.sql"])
                == ["1_a.up.sql", "2_b.up.sql", "10_c.up.sql"])
        #expect(
            try MigrationLayout.goose.order(["20240110_b.sql", "20240101_a.sql", "seed.sql", "3_c.sql"]) == [
                "3_c.sql", "20240101_a.sql", "20240110_b.sql",
            ])
        #expect(
            try MigrationLayout.dbmate.order(["20240110120000_b.sql", "20240101120000_a.sql"]) == [
                "20240101120000_a.sql", "20240110120000_b.sql",
            ])
    }

    @Test("sqitch.plan: changes in order; pragmas, tags, comments, dependencies and reworks are read right")
    func sqitchPlan() {
        let plan = """
            %syntax-version=1.0.0
            %project=jobs

            schema 2024-01-01T00:00:00Z Ann <ann@example.com> # the schema
            jobs [schema] 2024-01-02T00:00:00Z Ann <ann@example.com> # the jobs table
            @v1.0 2024-01-03T00:00:00Z Ann <ann@example.com> # a tag
            # a comment
            notify_jobs [jobs] 2024-01-04T00:00:00Z Ann <ann@example.com>
            jobs [jobs@v1.0] 2024-01-05T00:00:00Z Ann <ann@example.com> # reworked
            """
        let changes = MigrationLayout.sqitchChanges(plan: plan)
        #expect(changes.map(\.name) == ["schema", "jobs", "notify_jobs"])
        #expect(changes.map(\.line) == [4, 5, 8])
    }
}

@Suite("Migration sections and no-transaction markers")
struct MigrationSectionsTests {
    @Test("goose: only the Up section runs, StatementBegin/End is one statement, NO TRANSACTION is honoured, lines are kept")
    func goose() throws {
        let text = """
            -- +goose NO TRANSACTION
            -- +goose Up
            CREATE TABLE jobs (id int);
            -- +goose StatementBegin
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('jobs', ''); RETURN NULL; END $$;
            -- +goose StatementEnd
            CREATE INDEX CONCURRENTLY jobs_id ON jobs (id);
            -- +goose Down
            DROP TABLE jobs;
            """
        let sections = MigrationSections(text, layout: .goose)
        #expect(sections.noTransactionMarker == "-- +goose NO TRANSACTION")
        #expect(!sections.text.contains("DROP TABLE"))
        #expect(sections.blocks.count == 1)
        #expect(sections.blocks[0].line == 5)
        #expect(sections.blocks[0].text.hasSuffix("END $$"))
        let script = try SQLScript(sections.text, blocks: sections.blocks)
        #expect(script.statements.map(\.line) == [3, 5, 8])
        #expect(script.statements[1].text.hasPrefix("CREATE FUNCTION f()"))
        #expect(MigrationSections("-- +goose Up\nSELECT 1;\n", layout: .goose).noTransactionMarker == nil)
    }

    @Test("dbmate: only the up section runs, whichever comes first; transaction:false is honoured")
    func dbmate() throws {
        let text = "-- migrate:down\nDROP TABLE t;\n\n-- migrate:up transaction:false\nCREATE TABLE t (id int);\n"
        let sections = MigrationSections(text, layout: .dbmate)
        #expect(sections.noTransactionMarker == "-- migrate:up transaction:false")
        let script = try SQLScript(sections.text)
        #expect(script.statements.map(\.text) == ["CREATE TABLE t (id int)"])
        #expect(script.statements.map(\.line) == [5])
        #expect(MigrationSections("-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n", layout: .dbmate).noTransactionMarker == nil)
    }

    @Test("sqlx's -- no-transaction counts on the first line only; Flyway's .sql.conf executeInTransaction=false")
    func markers() {
        #expect(MigrationSections("-- no-transaction\nVACUUM;\n", layout: .plain).noTransactionMarker == "-- no-transaction")
        #expect(MigrationSections("-- no-transaction\nVACUUM;\n", layout: .golangMigrate).noTransactionMarker == "-- no-transaction")
        #expect(MigrationSections("SELECT 1;\n-- no-transaction\n", layout: .plain).noTransactionMarker == nil)
        #expect(
            MigrationSections("VACUUM;", layout: .flyway, flywayConfiguration: "# comment\nexecuteInTransaction = false\n")
                .noTransactionMarker != nil)
        #expect(
            MigrationSections("VACUUM;", layout: .flyway, flywayConfiguration: "executeInTransaction=true\n").noTransactionMarker == nil)
        #expect(MigrationSections("VACUUM;", layout: .flyway).noTransactionMarker == nil)
    }
}
