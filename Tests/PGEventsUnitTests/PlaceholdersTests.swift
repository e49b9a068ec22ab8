import Testing

@testable import PGEventsHarness

@Suite("Placeholders: --define for Flyway's ${name} and psql's :name")
struct PlaceholdersTests {
    @Test("Flyway: ${name} everywhere, built-ins, and an undefined one named with its line and column")
    func flyway() throws {
        let placeholders = Placeholders(["schema": "app", "channel": "jobs"])
        #expect(
            try placeholders.flyway("CREATE TABLE ${schema}.jobs ();\nSELECT pg_notify('${channel}', '');")
                == "CREATE TABLE app.jobs ();\nSELECT pg_notify('jobs', '');")
        #expect(try placeholders.flyway("SET search_path = ${flyway:defaultSchema};") == "SET search_path = public;")
        #expect(try Placeholders(["flyway:defaultSchema": "x"]).flyway("${flyway:defaultSchema}") == "x")
        #expect(try placeholders.flyway("SELECT '$' || '{not closed';") == "SELECT '$' || '{not closed';")
        let problem = #expect(throws: Placeholders.Problem.self) { try placeholders.flyway("SELECT 1;\n  CREATE TABLE ${owner}.t ();") }
        #expect(problem?.line == 2)
        #expect(problem?.column == 16)
        #expect(problem?.message == "placeholder ${owner} is not defined: pass --define owner=VALUE")
    }

    @Test("psql: :name, :'name' and :\"name\" are replaced; casts, :=, slices, literals, bodies and comments are not")
    func psql() throws {
        let placeholders = Placeholders(["owner": "app_owner", "channel": "it's", "schema": "My Schema"])
        #expect(try placeholders.psql("GRANT ALL ON t TO :owner;") == "GRANT ALL ON t TO app_owner;")
        #expect(try placeholders.psql("SELECT pg_notify(:'channel', '');") == "SELECT pg_notify('it''s', '');")
        #expect(try placeholders.psql("CREATE SCHEMA :\"schema\";") == "CREATE SCHEMA \"My Schema\";")
        let untouched = """
            SELECT x::int, '{"a":1}'::jsonb, arr[lo:hi], arr[1:2], f(a)::text, "col:name" FROM t; -- :comment
            /* :block */ CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE n int := 1; BEGIN RETURN :n; END $$;
            SELECT E'it\\'s :not', 'C:\\' || :owner;
            """
        let replaced = try placeholders.psql(untouched)
        #expect(replaced == untouched.replacingOccurrences(of: "|| :owner", with: "|| app_owner"))
        let problem = #expect(throws: Placeholders.Problem.self) { try Placeholders().psql("SELECT 1;\nGRANT ALL ON t TO :owner;") }
        #expect(problem?.line == 2)
        #expect(problem?.column == 19)
        #expect(problem?.message.contains(":owner") == true)
        let quoted = #expect(throws: Placeholders.Problem.self) { try Placeholders().psql("SELECT :'who';") }
        #expect(quoted?.message.contains(":'who'") == true)
        #expect(Placeholders.literal("a\\b") == "E'a\\\\b'")
    }

    @Test("--define NAME=VALUE: the value may be empty or hold '='; a missing name or '=' is refused")
    func definitions() throws {
        #expect(try Placeholders(definitions: ["a=1", "b=", "c=x=y"]).values == ["a": "1", "b": "", "c": "x=y"])
        #expect(throws: Placeholders.Problem.self) { try Placeholders(definitions: ["novalue"]) }
        #expect(throws: Placeholders.Problem.self) { try Placeholders(definitions: ["=1"]) }
    }
}
