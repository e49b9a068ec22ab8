import Foundation
import PGEvents
import Testing

@testable import PGEventsCheck
@testable import PGEventsHarness

@Suite("CSV records")
struct CSVRecordTests {
    @Test(
        "fields are split on commas; quoted fields hold commas, quotes and line breaks",
        arguments: [
            ("a,b,c", ["a", "b", "c"]),
            ("", [""]),
            ("a", ["a"]),
            ("a,,c", ["a", "", "c"]),
            ("a,b,", ["a", "b", ""]),
            (",", ["", ""]),
            (" a , b ", [" a ", " b "]),
            ("\"a,b\",c", ["a,b", "c"]),
            ("\"he said \"\"hi\"\"\",x", ["he said \"hi\"", "x"]),
            ("\"\"\"\"", ["\""]),
            ("\"\"", [""]),
            ("\"\",\"\"", ["", ""]),
            ("\"line 1\nline 2\",x", ["line 1\nline 2", "x"]),
            ("\"a\r\nb\",\"c,\"\"d\"\"\"", ["a\r\nb", "c,\"d\""]),
            ("INSERT,public,events,42,\"{\"\"a\"\":1}\"", ["INSERT", "public", "events", "42", "{\"a\":1}"]),
            ("é,日本,😀", ["é", "日本", "😀"]),
            // One trailing line break is tolerated.
            ("a,b\n", ["a", "b"]),
            ("a,b\r\n", ["a", "b"]),
            ("\"a\"\n", ["a"]),
            ("a,\n", ["a", ""]),
            ("\n", [""]),
        ])
    func parses(text: String, fields: [String]) throws {
        #expect(try CSVRecord.parse(text) == fields)
    }

    @Test(
        "malformed records are errors naming the byte offset",
        arguments: [
            ("a,\"b", 2, "unterminated quoted field: the quote at byte 2 is never closed"),
            ("\"", 0, "unterminated quoted field: the quote at byte 0 is never closed"),
            ("\"a\"\"", 0, "unterminated quoted field: the quote at byte 0 is never closed"),
            ("ab\"c", 2, "a quote inside an unquoted field at byte 2 (quote the whole field and double its quotes: \"a\"\"b\")"),
            ("é\"", 2, "a quote inside an unquoted field at byte 2"),  // bytes, not characters
            (" \"a\"", 1, "a quote inside an unquoted field at byte 1"),
            ("\"a\"b", 3, "unexpected 'b' after a closing quote at byte 3 (expected ',' or the end of the record)"),
            ("\"a\" ,b", 3, "unexpected ' ' after a closing quote at byte 3"),
            ("\"a\"é", 3, "unexpected 'é' after a closing quote at byte 3"),
            ("a\nb", 1, "a line break outside quotes at byte 1: a payload is one record (quote a field that contains line breaks)"),
            ("a\n\n", 1, "a line break outside quotes at byte 1"),
            ("a,b\r\n\r\n", 3, "a line break outside quotes at byte 3"),
            ("a\r", 1, "a line break outside quotes at byte 1"),
            ("a\rb", 1, "a line break outside quotes at byte 1"),
            ("\"a\"\r", 3, "a line break outside quotes at byte 3"),
        ])
    func errors(text: String, offset: Int, message: String) {
        let error = #expect(throws: CSVError.self) { try CSVRecord.parse(text) }
        #expect(error?.offset == offset)
        #expect(error?.message.hasPrefix(message) == true, "\(error?.message ?? "no error")")
    }

    @Test("any fields, quoted as RFC 4180 says, parse back to themselves")
    func roundTrip() throws {
        var random = SplitMix64(seed: 4180)
        let alphabet: [String] = ["a", "b", ",", "\"", "\n", "\r", "\r\n", " ", "é", "😀", "\t", "x"]
        for _ in 0..<2_000 {
            let fields = (0..<Int.random(in: 1...6, using: &random)).map { _ in
                (0..<Int.random(in: 0...8, using: &random)).map { _ in alphabet.randomElement(using: &random)! }.joined()
            }
            let record = fields.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",")
            #expect(try CSVRecord.parse(record) == fields, "\(record.debugDescription)")
        }
    }
}

@Suite("Payload judging")
struct PayloadJudgeTests {
    static let eventChannel = ChannelSpec(
        name: "new_event",
        format: .json,
        fields: [
            ("event_id", JSONFieldType(kind: .string)),
            ("chain_id", JSONFieldType(kind: .integer)),
            ("note", JSONFieldType(kind: .string, nullable: true)),
        ]
    )

    static func kinds(_ payload: String, _ channel: ChannelSpec) -> [PayloadProblem.Kind] {
        PayloadJudge.problems(in: payload, for: channel).map(\.kind)
    }

    @Test(
        "payloads that follow the spec pass",
        arguments: [
            #"{"event_id":"$abc","chain_id":1,"note":null}"#,
            #"{"event_id":"$abc","chain_id":-7,"note":"hi"}"#,
            #"{"event_id":"","chain_id":0,"note":null,"extra":{"nested":[1,2,{"x":null}]}}"#,
            " \n\t{ \"note\" : null , \"chain_id\" : 123456789012345678901234567890 , \"event_id\" : \"\\u00e9\\ud83d\\ude00\" } \r\n",
            // A key written twice counts as its last value.
            #"{"event_id":5,"event_id":"x","chain_id":1,"note":null}"#,
        ])
    func passing(payload: String) {
        #expect(PayloadJudge.problems(in: payload, for: Self.eventChannel) == [])
    }

    @Test("without declared fields, any JSON value passes", arguments: ["[1,2]", "5", #""text""#, "null", "true", "{}", #"{"a":[{}]}"#])
    func anyJSON(payload: String) {
        #expect(PayloadJudge.problems(in: payload, for: ChannelSpec(name: "c", format: .json)) == [])
    }

    @Test(
        "each problem with the fields is found and explained",
        arguments: [
            (
                #"{"chain_id":1,"note":null}"#,
                PayloadProblem(kind: .missingField, message: "field 'event_id' is missing (the spec says string)")
            ),
            (
                #"{"event_id":"a","chain_id":1}"#,
                PayloadProblem(kind: .missingField, message: "field 'note' is missing (the spec says string?)")
            ),
            (
                #"{"event_id":7,"chain_id":1,"note":null}"#,
                PayloadProblem(kind: .wrongType, message: "field 'event_id' is an integer (7), the spec says string")
            ),
            (
                #"{"event_id":"a","chain_id":"1","note":null}"#,
                PayloadProblem(kind: .wrongType, message: #"field 'chain_id' is a string ("1"), the spec says integer"#)
            ),
            (
                #"{"event_id":"a","chain_id":1.0,"note":null}"#,
                PayloadProblem(
                    kind: .wrongType, message: "field 'chain_id' is a number with a fraction or an exponent (1.0), the spec says integer")
            ),
            (
                #"{"event_id":"a","chain_id":1,"note":{"a":1}}"#,
                PayloadProblem(kind: .wrongType, message: #"field 'note' is an object ({"a":1}), the spec says string?"#)
            ),
            (
                #"{"event_id":"a","chain_id":[1],"note":null}"#,
                PayloadProblem(kind: .wrongType, message: "field 'chain_id' is an array ([1]), the spec says integer")
            ),
            (
                #"{"event_id":"a","chain_id":true,"note":null}"#,
                PayloadProblem(kind: .wrongType, message: "field 'chain_id' is a boolean (true), the spec says integer")
            ),
            (
                #"{"event_id":null,"chain_id":1,"note":null}"#,
                PayloadProblem(
                    kind: .nullNotAllowed, message: "field 'event_id' is null, the spec says string (write string? to allow null)")
            ),
            (
                "[1,2]",
                PayloadProblem(
                    kind: .wrongType,
                    message:
                        "the payload is an array ([1,2]), the spec declares fields (event_id, chain_id, note) so it must be a JSON object")
            ),
            (
                #""hello""#,
                PayloadProblem(
                    kind: .wrongType,
                    message:
                        #"the payload is a string ("hello"), the spec declares fields (event_id, chain_id, note) so it must be a JSON object"#
                )
            ),
            ("", PayloadProblem(kind: .empty, message: "the payload is empty, the spec says json")),
        ])
    func fieldProblems(payload: String, problem: PayloadProblem) {
        #expect(PayloadJudge.problems(in: payload, for: Self.eventChannel) == [problem])
    }

    @Test("every problem is reported, not just the first")
    func allProblems() {
        let problems = PayloadJudge.problems(in: #"{"chain_id":"x","note":5}"#, for: Self.eventChannel)
        #expect(problems.map(\.kind) == [.missingField, .wrongType, .wrongType])
        #expect(
            problems.map(\.message) == [
                "field 'event_id' is missing (the spec says string)",
                #"field 'chain_id' is a string ("x"), the spec says integer"#,
                "field 'note' is an integer (5), the spec says string?",
            ])
    }

    @Test("long values are cut in messages")
    func longValues() throws {
        let payload = #"{"event_id":"a","chain_id":""# + String(repeating: "z", count: 500) + #"","note":null}"#
        let problem = try #require(PayloadJudge.problems(in: payload, for: Self.eventChannel).first)
        #expect(problem.message == "field 'chain_id' is a string (\"\(String(repeating: "z", count: 80))…\"), the spec says integer")
    }

    @Test(
        "invalid JSON is explained with the parser's reason, where, and an excerpt",
        arguments: [
            ("{", "the payload is not valid JSON at byte 1: expected a key in double quotes or '}', found the end of the text; near: {"),
            (" ", "the payload is not valid JSON at byte 1: expected a value, found the end of the text; near:  "),
            (#"{"a":1,}"#, #"the payload is not valid JSON at byte 7: expected a key in double quotes, found '}'; near: {"a":1,}"#),
            (
                "[1,2",
                "the payload is not valid JSON at byte 4: expected ',' or ']' in the array that starts at byte 0, found the end of the text; near: [1,2"
            ),
            (#"{"a" 1}"#, #"the payload is not valid JSON at byte 5: expected ':' after the key "a", found '1'; near: {"a" 1}"#),
            (
                #"{"a":1 "b":2}"#,
                #"the payload is not valid JSON at byte 7: expected ',' or '}' in the object that starts at byte 0, found '"'"#
            ),
            ("[1] x", "the payload is not valid JSON at byte 4: unexpected 'x' after the JSON value; near: [1] x"),
            ("{'a':1}", "the payload is not valid JSON at byte 1: expected a key in double quotes or '}', found '''"),
            ("01", "the payload is not valid JSON at byte 0: a number cannot have a leading zero"),
            ("-", "the payload is not valid JSON at byte 1: expected a digit after '-', found the end of the text"),
            ("+1", "the payload is not valid JSON at byte 0: expected a value, found '+'"),
            (".5", "the payload is not valid JSON at byte 0: expected a value, found '.'"),
            ("1.", "the payload is not valid JSON at byte 2: expected a digit after the decimal point, found the end of the text"),
            ("1e", "the payload is not valid JSON at byte 2: expected a digit in the exponent, found the end of the text"),
            ("1e+", "the payload is not valid JSON at byte 3: expected a digit in the exponent"),
            ("NaN", "the payload is not valid JSON at byte 0: expected a value, found 'N'"),
            ("tru", "the payload is not valid JSON at byte 0: expected a value (true, false or null?), found 'tru'"),
            ("nulll", "the payload is not valid JSON at byte 4: unexpected 'l' after the JSON value"),
            (
                "\"a\nb\"",
                #"the payload is not valid JSON at byte 2: a control character (U+000A) inside a string must be escaped; near: "a\nb""#
            ),
            (#""\x""#, #"the payload is not valid JSON at byte 1: invalid escape \x (expected \", \\, \/, \b, \f, \n, \r, \t or \uXXXX)"#),
            (#""\u12""#, #"the payload is not valid JSON at byte 1: expected 4 hexadecimal digits after \u"#),
            (#""\uZZZZ""#, #"the payload is not valid JSON at byte 1: expected 4 hexadecimal digits after \u"#),
            (#""abc"#, "the payload is not valid JSON at byte 0: unterminated string: the quote at byte 0 is never closed"),
            ("\"abc\\", "the payload is not valid JSON at byte 4: unterminated string: the text ends in an escape"),
            ("\u{FEFF}{}", "the payload is not valid JSON at byte 0: expected a value, found '\u{FEFF}'"),
            // Lone UTF-16 surrogates cannot be turned into text.
            (
                #""\ud800""#,
                #"the payload is not valid JSON at byte 1: lone surrogate \ud800: a high surrogate must be followed by a low one (\uDC00…\uDFFF)"#
            ),
            (
                #""\udc00""#,
                #"the payload is not valid JSON at byte 1: lone surrogate \udc00: a low surrogate must follow a high one (\uD800…\uDBFF)"#
            ),
            (#""\ud800\u0041""#, #"the payload is not valid JSON at byte 1: lone surrogate \ud800"#),
            (#""\uD83Dx""#, #"the payload is not valid JSON at byte 1: lone surrogate \uD83D"#),
            (#""\ud83d\ud83d""#, #"the payload is not valid JSON at byte 1: lone surrogate \ud83d"#),
        ])
    func invalidJSON(payload: String, message: String) {
        let problems = PayloadJudge.problems(in: payload, for: ChannelSpec(name: "c", format: .json))
        #expect(problems.map(\.kind) == [.notJSON])
        #expect(problems.first?.message.hasPrefix(message) == true, "\(problems.first?.message ?? "no problem")")
    }

    // Found by fuzzing (FuzzTests, Benchmarks/Fuzz): a line or paragraph separator or a C1 control character
    // was quoted raw, breaking the one-line message.
    @Test(
        "characters that break lines are named by code point in syntax errors",
        arguments: [
            ("\"\\\u{2029}\"", "the payload is not valid JSON at byte 1: invalid escape \\U+2029 (expected"),
            ("\u{85}", "the payload is not valid JSON at byte 0: expected a value, found U+0085; near: \\u{85}"),
            (
                "[1\u{2028}]",
                "the payload is not valid JSON at byte 2: expected ',' or ']' in the array that starts at byte 0, found U+2028"
            ),
        ])
    func separatorsInErrors(payload: String, message: String) {
        let problems = PayloadJudge.problems(in: payload, for: ChannelSpec(name: "c", format: .json))
        #expect(problems.map(\.kind) == [.notJSON])
        #expect(problems.first?.message.hasPrefix(message) == true, "\(problems.first?.message ?? "no problem")")
        #expect(problems.first?.message.unicodeScalars.contains { ["\u{85}", "\u{2028}", "\u{2029}"].contains($0) } == false)
        let csv = #expect(throws: CSVError.self) { try CSVRecord.parse("\"a\"\u{2028}") }
        #expect(csv?.message.hasPrefix("unexpected U+2028 after a closing quote at byte 3") == true, "\(csv?.message ?? "no error")")
    }

    @Test("the excerpt of an error far into the payload shows where it is")
    func errorContext() throws {
        let payload = "{\"padding\":\"" + String(repeating: "p", count: 100) + "\",\"b\":tru}"
        let message = try #require(PayloadJudge.problems(in: payload, for: ChannelSpec(name: "c", format: .json)).first?.message)
        #expect(
            message
                == "the payload is not valid JSON at byte 118: expected a value (true, false or null?), found 'tru'; near: …\(String(repeating: "p", count: 24))\",\"b\":tru}"
        )
    }

    @Test(
        "integer is a number written without fraction or exponent; number is any number; boolean is true or false",
        arguments: [
            ("1", JSONFieldType.Kind.integer, true),
            ("0", .integer, true),
            ("-0", .integer, true),
            ("-42", .integer, true),
            ("123456789012345678901234567890", .integer, true),
            ("-123456789012345678901234567890", .integer, true),
            ("1.0", .integer, false),
            ("1.5", .integer, false),
            ("1e3", .integer, false),
            ("1E3", .integer, false),
            ("-0.0", .integer, false),
            (#""1""#, .integer, false),
            ("true", .integer, false),
            ("1", .number, true),
            ("1.5", .number, true),
            ("-1e-7", .number, true),
            ("1E+300", .number, true),
            ("1e999999", .number, true),
            ("123456789012345678901234567890.5", .number, true),
            (#""1.5""#, .number, false),
            ("false", .number, false),
            ("true", .boolean, true),
            ("false", .boolean, true),
            ("1", .boolean, false),
            ("0", .boolean, false),
            (#""true""#, .boolean, false),
            ("[]", .boolean, false),
            (#""""#, .string, true),
            (#""a""#, .string, true),
            ("1", .string, false),
            ("[]", .string, false),
            ("{}", .object, true),
            (#"{"a":{}}"#, .object, true),
            ("[]", .object, false),
            (#""{}""#, .object, false),
            ("[]", .array, true),
            ("[[]]", .array, true),
            ("{}", .array, false),
            (#""[]""#, .array, false),
        ])
    func types(value: String, kind: JSONFieldType.Kind, matches: Bool) {
        let channel = ChannelSpec(name: "c", format: .json, fields: [("v", JSONFieldType(kind: kind))])
        let problems = PayloadJudge.problems(in: #"{"v":\#(value)}"#, for: channel)
        #expect(problems.map(\.kind) == (matches ? [] : [.wrongType]), "\(problems)")
    }

    @Test("null passes only a type with ?", arguments: JSONFieldType.Kind.allCases)
    func nulls(kind: JSONFieldType.Kind) {
        let strict = ChannelSpec(name: "c", format: .json, fields: [("v", JSONFieldType(kind: kind))])
        let nullable = ChannelSpec(name: "c", format: .json, fields: [("v", JSONFieldType(kind: kind, nullable: true))])
        #expect(Self.kinds(#"{"v":null}"#, strict) == [.nullNotAllowed])
        #expect(Self.kinds(#"{"v":null}"#, nullable) == [])
        #expect(Self.kinds(#"{"w":null}"#, nullable) == [.missingField])
    }

    @Test("forbidden words are found in JSON keys at any depth and in string values, whatever their case")
    func forbiddenJSON() {
        let channel = ChannelSpec(name: "c", format: .json, forbid: ["password", "Secret", "token"])
        #expect(
            PayloadJudge.problems(in: #"{"user":{"name":"bob","PassWord":"x"}}"#, for: channel) == [
                PayloadProblem(kind: .forbiddenWord, message: "the key 'user.PassWord' contains the forbidden word 'password'")
            ])
        #expect(
            PayloadJudge.problems(in: #"{"items":[{"api_token":1}]}"#, for: channel) == [
                PayloadProblem(kind: .forbiddenWord, message: "the key 'items[0].api_token' contains the forbidden word 'token'")
            ])
        #expect(
            PayloadJudge.problems(in: #"{"note":"my SECRET is safe"}"#, for: channel) == [
                PayloadProblem(
                    kind: .forbiddenWord, message: #"the value of 'note' contains the forbidden word 'Secret': "my SECRET is safe""#)
            ])
        #expect(
            PayloadJudge.problems(in: #"["a","token 1","token 2",{"t":"token"}]"#, for: channel) == [
                PayloadProblem(
                    kind: .forbiddenWord, message: #"the value of '[1]' contains the forbidden word 'token': "token 1" (and 2 more places)"#
                )
            ])
        #expect(
            PayloadJudge.problems(in: #""secret""#, for: channel) == [
                PayloadProblem(
                    kind: .forbiddenWord, message: #"the payload (a JSON string) contains the forbidden word 'Secret': "secret""#)
            ])
        // An escaped word is still the word.
        #expect(Self.kinds(#"{"note":"s\u0065cret"}"#, channel) == [.forbiddenWord])
        // Each word once; numbers, booleans and other words are not matched.
        #expect(Self.kinds(#"{"password":"secret","token":"password"}"#, channel) == [.forbiddenWord, .forbiddenWord, .forbiddenWord])
        #expect(Self.kinds(#"{"pass":"word","n":123,"ok":true,"sec":"ret"}"#, channel) == [])
        // Invalid JSON is still searched, as text.
        #expect(PayloadJudge.problems(in: #"{"password":"#, for: channel).map(\.kind) == [.notJSON, .forbiddenWord])
        // Fields and forbidden words together.
        let both = ChannelSpec(name: "c", format: .json, fields: [("id", JSONFieldType(kind: .integer))], forbid: ["token"])
        #expect(Self.kinds(#"{"token":"x"}"#, both) == [.missingField, .forbiddenWord])
    }

    @Test("forbidden words in CSV name the field, in text the payload")
    func forbiddenCSVAndText() {
        let csv = ChannelSpec(name: "c", format: .csv, columns: ["op", "key", "value"], forbid: ["secret"])
        #expect(
            PayloadJudge.problems(in: "INSERT,1,\"my SeCrEt, exposed\"", for: csv) == [
                PayloadProblem(
                    kind: .forbiddenWord, message: #"field 3 (value) contains the forbidden word 'secret': "my SeCrEt, exposed""#)
            ])
        #expect(
            PayloadJudge.problems(in: "secret,secret2,x", for: csv) == [
                PayloadProblem(
                    kind: .forbiddenWord, message: #"field 1 (op) contains the forbidden word 'secret': "secret" (and 1 more field)"#)
            ])
        let unnamed = ChannelSpec(name: "c", format: .csv, forbid: ["secret"])
        #expect(
            PayloadJudge.problems(in: "a,b,c,secret", for: unnamed) == [
                PayloadProblem(kind: .forbiddenWord, message: #"field 4 contains the forbidden word 'secret': "secret""#)
            ])
        // Across two fields: still in the payload.
        #expect(
            PayloadJudge.problems(in: "sec,ret", for: ChannelSpec(name: "c", format: .csv, forbid: ["c,r"])) == [
                PayloadProblem(kind: .forbiddenWord, message: "the payload contains the forbidden word 'c,r': sec,ret")
            ])
        let text = ChannelSpec(name: "c", format: .text, forbid: ["token", "secret"])
        #expect(
            PayloadJudge.problems(in: "user 7 logged in with TOKEN=abc\n", for: text) == [
                PayloadProblem(
                    kind: .forbiddenWord, message: "the payload contains the forbidden word 'token': user 7 logged in with TOKEN=abc\\n")
            ])
        #expect(PayloadJudge.problems(in: "nothing to see", for: text) == [])
    }

    @Test("the size limit counts bytes, not characters")
    func bytes() {
        let channel = ChannelSpec(name: "c", format: .text, maxBytes: 10)
        #expect(PayloadJudge.problems(in: "ééééé", for: channel) == [])  // 5 characters, 10 bytes
        #expect(
            PayloadJudge.problems(in: "éééééa", for: channel) == [
                PayloadProblem(kind: .tooLong, message: "the payload has 11 bytes, the spec allows at most 10 (max_bytes)")
            ])
        #expect(Self.kinds("😀😀😀", channel) == [.tooLong])  // 3 characters, 12 bytes
        // Without max_bytes: the server's limit.
        let server = ChannelSpec(name: "c", format: .text)
        #expect(PayloadJudge.problems(in: String(repeating: "x", count: 7999), for: server) == [])
        #expect(
            PayloadJudge.problems(in: String(repeating: "é", count: 4000), for: server) == [
                PayloadProblem(kind: .tooLong, message: "the payload has 8000 bytes, the server allows at most 7999")
            ])
        // Size and format are both judged.
        let json = ChannelSpec(name: "c", format: .json, fields: [("a", JSONFieldType(kind: .integer))], maxBytes: 5)
        #expect(Self.kinds(#"{"a":"long"}"#, json) == [.tooLong, .wrongType])
    }

    @Test("CSV: one record, with the declared number of fields")
    func csv() {
        let channel = ChannelSpec(name: "audit", format: .csv, columns: ["op", "schema", "table", "key", "value"])
        #expect(PayloadJudge.problems(in: "INSERT,public,events,1,\"{\"\"a\"\":1}\"", for: channel) == [])
        #expect(
            PayloadJudge.problems(in: "INSERT,public,events,1", for: channel) == [
                PayloadProblem(
                    kind: .wrongColumnCount,
                    message: "the record has 4 fields, the spec says 5 (op, schema, table, key, value): INSERT,public,events,1")
            ])
        #expect(Self.kinds("a", channel) == [.wrongColumnCount])
        #expect(Self.kinds("a,b,c,d,e,f", channel) == [.wrongColumnCount])
        #expect(
            PayloadJudge.problems(in: "a,\"b", for: channel) == [
                PayloadProblem(
                    kind: .notCSV,
                    message:
                        "the payload is not one CSV record: unterminated quoted field: the quote at byte 2 is never closed; near: a,\"b")
            ])
        #expect(Self.kinds("a,b\nc,d,e,f,g", channel) == [.notCSV])
        #expect(
            PayloadJudge.problems(in: "", for: channel) == [
                PayloadProblem(kind: .empty, message: "the payload is empty, the spec says csv")
            ])
        // Without columns, any record passes.
        #expect(Self.kinds("x", ChannelSpec(name: "c", format: .csv)) == [])
    }

    @Test("text: anything goes, even nothing")
    func text() {
        let channel = ChannelSpec(name: "c", format: .text)
        for payload in ["", "hello", "{not json", "a,\"b", "\u{0}\u{1}"] {
            #expect(PayloadJudge.problems(in: payload, for: channel) == [])
        }
    }

    @Test("nesting is limited to 512 levels")
    func depth() {
        let channel = ChannelSpec(name: "c", format: .json)
        let deepest = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(PayloadJudge.problems(in: deepest, for: channel) == [])
        let objects = String(repeating: #"{"a":"#, count: 511) + "[]" + String(repeating: "}", count: 511)
        #expect(PayloadJudge.problems(in: objects, for: channel) == [])
        let tooDeep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        let problems = PayloadJudge.problems(in: tooDeep, for: channel)
        #expect(problems.map(\.kind) == [.notJSON])
        #expect(
            problems.first?.message.hasPrefix("the payload is not valid JSON at byte 512: objects and arrays are nested more than 512 deep")
                == true)
        // Far deeper, unclosed, and mixed: still a problem, not a crash.
        #expect(Self.kinds(String(repeating: "[", count: 200_000), channel) == [.tooLong, .notJSON])
        #expect(Self.kinds(String(repeating: #"{"a":["#, count: 50_000), channel) == [.tooLong, .notJSON])
        #expect(PayloadJudge.detectFormat(String(repeating: "[", count: 100_000)) == .text)
    }

    @Test("strings are decoded: escapes and surrogate pairs")
    func decoding() throws {
        let document = try JSONScanner.parse(#"["\"\\\/\b\f\n\r\t", "\u00e9\u65E5\ud83d\ude00", "\u0000", "plain é 😀"]"#)
        #expect(document.values.map(\.text) == ["", "\"\\/\u{8}\u{C}\n\r\t", "é日😀", "\u{0}", "plain é 😀"])
        #expect(document.children(of: 0) == [1, 2, 3, 4])
        let nested = try JSONScanner.parse(#"{"a":{"b":[10,{"c":1.5e3}]},"d":-0}"#)
        #expect(nested.values.map(\.kind) == [.object, .object, .array, .number, .object, .number, .number])
        #expect(nested.values.map(\.text)[5] == "1.5e3")
        #expect(nested.path(of: 5) == "a.b[1].c")
        #expect(nested.path(of: 6) == "d")
        #expect(nested.children(of: 0) == [1, 6])
        #expect(nested.source(of: 2) == #"[10,{"c":1.5e3}]"#)
    }

    @Test(
        "the format is told from the payload",
        arguments: [
            (#"{"a":1}"#, PayloadFormat.json),
            ("[1,2]", .json),
            (" [] ", .json),
            ("5", .text),  // JSON, but neither an object nor an array
            (#""a,b""#, .text),
            ("true", .text),
            ("a,b", .csv),
            ("INSERT,public,events,1,\"x,y\"", .csv),
            ("{a:1,b:2}", .csv),  // not JSON, but two CSV fields
            ("hello", .text),
            ("", .text),
            ("a\nb", .text),
            ("a\"b,c", .text),
        ])
    func detect(payload: String, format: PayloadFormat) {
        #expect(PayloadJudge.detectFormat(payload) == format)
    }

    @Test(
        "excerpts are cut by characters and keep to one line",
        arguments: [
            ("hello", 120, "hello"),
            ("", 120, ""),
            (String(repeating: "x", count: 200), 10, "xxxxxxxxxx…"),
            (String(repeating: "x", count: 10), 10, "xxxxxxxxxx"),
            ("ééééééé", 3, "ééé…"),
            ("👨‍👩‍👧😀x", 2, "👨‍👩‍👧😀…"),
            ("a\nb\tc\r\nd", 120, "a\\nb\\tc\\r\\nd"),
            ("\u{1B}[0m\u{0}\u{7F}\u{85}\u{2028}", 120, "\\u{1B}[0m\\u{0}\\u{7F}\\u{85}\\u{2028}"),
            ("ab\ncd", 3, "ab…"),  // an escape counts as what it shows
            ("abc", 0, "…"),
        ])
    func excerpts(text: String, limit: Int, expected: String) {
        #expect(PayloadJudge.excerpt(text, limit: limit) == expected)
    }

    @Test("the default excerpt is 120 characters")
    func defaultExcerpt() {
        #expect(PayloadJudge.excerpt(String(repeating: "y", count: 121)) == String(repeating: "y", count: 120) + "…")
    }

    @Test("thousands of random and mangled payloads never crash the judge")
    func garbage() {
        var random = SplitMix64(seed: 20_260_101)
        let tokens: [String] = [
            "{", "}", "[", "]", "\"", "\\", ",", ":", " ", "\n", "\r", "\t", "0", "1", "-", "+", ".", "e", "E", "01",
            "true", "false", "null", "tru", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u00", "d800", "\\n", "\\x",
            "é", "日", "😀", "\u{0}", "\u{1F}", "\u{7F}", "\u{FEFF}", "\u{2028}", "password", "Token", "a", "key", "\"\"",
            "123456789012345678901234567890", "1e999999", "-0.0e-0",
        ]
        let valid = [
            #"{"event_id":"$a","chain_id":1,"note":null,"user":{"token":"x"}}"#,
            #"[1,2.5,-3e4,"a\"b",true,false,null,{"k":[{}]}]"#,
            "INSERT,public,events,1,\"a,\"\"b\"\"\"",
        ]
        let channels = [
            Self.eventChannel,
            ChannelSpec(
                name: "j", format: .json, fields: [("v", JSONFieldType(kind: .number, nullable: true))], maxBytes: 40,
                forbid: ["token", "PASS"]),
            ChannelSpec(name: "c", format: .csv, columns: ["op", "schema", "table", "key", "value"], forbid: ["token"]),
            ChannelSpec(name: "t", format: .text, maxBytes: 1, forbid: ["é"]),
        ]
        var judged = 0
        for round in 0..<4_000 {
            let payload: String
            switch round % 4 {
            case 0:  // a soup of JSON and CSV fragments
                payload = (0..<Int.random(in: 0...40, using: &random)).map { _ in tokens.randomElement(using: &random)! }.joined()
            case 1:  // random Unicode scalars
                payload = String(
                    String.UnicodeScalarView((0..<Int.random(in: 0...30, using: &random)).map { _ in randomScalar(using: &random) }))
            case 2:  // a valid payload, mangled
                var characters = Array(valid.randomElement(using: &random)!)
                for _ in 0..<Int.random(in: 1...4, using: &random) where !characters.isEmpty {
                    let index = Int.random(in: 0..<characters.count, using: &random)
                    switch Int.random(in: 0...2, using: &random) {
                    case 0: characters.remove(at: index)
                    case 1: characters.insert(tokens.randomElement(using: &random)!.first ?? "x", at: index)
                    default: characters[index] = Character(randomScalar(using: &random))
                    }
                }
                payload = String(characters)
            default:  // deep or unbalanced nesting
                let depth = Int.random(in: 0...1_500, using: &random)
                let open = String(repeating: ["[", "{\"a\":", "[{\"b\":"].randomElement(using: &random)!, count: depth)
                payload =
                    open + (Bool.random(using: &random) ? "1" : "")
                    + String(repeating: "]", count: Int.random(in: 0...depth, using: &random))
            }
            for channel in channels {
                let problems = PayloadJudge.problems(in: payload, for: channel)
                // Whatever the input, a problem says something.
                #expect(problems.allSatisfy { !$0.message.isEmpty })
                if channel.format == .json, problems.contains(where: { $0.kind == .notJSON }) {
                    #expect((try? JSONScanner.parse(payload)) == nil)
                }
                judged += 1
            }
            _ = try? CSVRecord.parse(payload)
            _ = PayloadJudge.detectFormat(payload)
            _ = PayloadJudge.excerpt(payload, limit: Int.random(in: 0...20, using: &random))
        }
        #expect(judged == 16_000)
    }
}

/// Any Unicode scalar, biased towards ASCII (where the syntax is).
private func randomScalar(using random: inout SplitMix64) -> Unicode.Scalar {
    while true {
        let value: UInt32 =
            switch Int.random(in: 0...3, using: &random) {
            case 0, 1: UInt32.random(in: 0...0x7F, using: &random)
            case 2: UInt32.random(in: 0x80...0xFFFF, using: &random)
            default: UInt32.random(in: 0x10000...0x10FFFF, using: &random)
            }
        if let scalar = Unicode.Scalar(value) { return scalar }
    }
}
