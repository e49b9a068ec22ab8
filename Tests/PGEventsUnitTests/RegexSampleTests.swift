import Foundation
import Testing

@testable import PGEventsCheck

@Suite("Values for regex CHECKs")
struct RegexSampleTests {
    static let readable = [
        "^[A-Z]{2}[0-9]{9}[A-Z]{2}$", "^(sku|item)-[0-9a-f]{4,6}$", "^[a-z0-9]+(-[a-z0-9]+)*$", #"^\d{3}-\d{4}$"#,
        "^[[:upper:]][[:lower:]]+$", #"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"#, "^v[0-9]+\\.[0-9]+\\.[0-9]+$", "^(?:GB|FR)[0-9]{2}$", "colour|color",
        "^a?b*c+$",
    ]

    @Test("the generated value matches the pattern, for several variants", arguments: readable)
    func matches(_ pattern: String) throws {
        let regex = try NSRegularExpression(pattern: pattern)
        for variant in [0, 1, 7, 100, 12_345] {
            let value = try #require(RegexSample.generate(pattern, variant: variant), "no value for \(pattern)")
            #expect(
                regex.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil, "\(value) does not match \(pattern)")
        }
    }

    @Test("variants differ where the pattern leaves room (a UNIQUE column takes two rows)")
    func variants() {
        let values = Set((0..<50).compactMap { RegexSample.generate("^[A-Z]{2}[0-9]{9}[A-Z]{2}$", variant: $0) })
        #expect(values.count == 50)
        let open = Set((0..<50).compactMap { RegexSample.generate("^[a-z]+$", variant: $0) })
        #expect(open.count == 50)
    }

    @Test(
        "what it does not read gives nil, not a wrong value",
        arguments: ["^(?=.*[0-9])[A-Z0-9]{8}$", #"^(a)\1$"#, #"\bword\b"#, "^[a-", "(unclosed", "x{3,1}"])
    func unreadable(_ pattern: String) {
        #expect(RegexSample.generate(pattern) == nil)
    }

    @Test("LIKE: % takes the variant, _ a letter, escapes are literal")
    func like() {
        #expect(RegexSample.like("C%", variant: 12) == "C12")
        #expect(RegexSample.like("A_B\\%", variant: 3) == "AxB%")
    }

    @Test("patterns are read from constraint definitions, negated ones left out")
    func definitions() {
        let found = TableShape.patterns(
            in: "CHECK (((code ~ '^[A-Z]+$'::text) OR (code ~~ 'C%'::text)) AND (code !~ 'x'::text) AND (code !~~* 'y%'::text))",
            constraint: "c")
        #expect(found.map(\.pattern) == ["^[A-Z]+$", "C%"])
        #expect(found.map(\.kind) == [.regex, .like])
    }
}
