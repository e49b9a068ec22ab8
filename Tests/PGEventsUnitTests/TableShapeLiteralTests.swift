import Testing

@testable import PGEventsCheck
@testable import PGEventsHarness

@Suite("CHECK literals the row generator may use")
struct TableShapeLiteralTests {
    @Test("pattern operands of ~, ~*, !~, LIKE, ILIKE and SIMILAR TO are not values; IN lists and bounds are")
    func patterns() {
        #expect(TableShape.literals(in: "CHECK ((slug ~ '^[a-z0-9]+$'::text))").isEmpty)
        #expect(TableShape.literals(in: "CHECK ((code ~~ 'C%'::text) OR (code ~* '^x'::text) OR (code !~ 'y'))").isEmpty)
        #expect(TableShape.literals(in: "CHECK (((name)::text ILIKE 'a%'::text))").isEmpty)
        #expect(TableShape.literals(in: "CHECK ((name SIMILAR TO '(a|b)%'))").isEmpty)
        #expect(TableShape.literals(in: "CHECK ((state = ANY (ARRAY['new'::text, 'done'::text])))") == ["new", "done"])
        #expect(TableShape.literals(in: "CHECK ((unlike = 'x'::text))") == ["x"])
        #expect(TableShape.literals(in: "CHECK (((total >= 0) AND (kind = 'a'::text)))") == ["0", "a"])
    }
}
