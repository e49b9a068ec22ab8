import Testing

@testable import PGEvents

@Suite("Payload decoding")
struct PayloadDecoderTests {
    static let gc2 = PayloadDecoder(format: .csv(columns: ["op", "schema", "table", "key", "value"]))
    static let json = PayloadDecoder(format: .json)

    static func failure(_ result: Result<EventValue, DecodeFailure>) -> String? {
        if case .failure(let failure) = result { return failure.reason }
        return nil
    }

    @Test("JSON: any value, objects in key order with their types")
    func json() throws {
        let payload =
            #"{"event_id":"0xabc","chain_id":11155111,"block_number":1000000,"event_type":"AgentRegistered","registry":"identity"}"#
        let value = try Self.json.decode(payload).get()
        #expect(value["chain_id"] == .integer(11_155_111))
        #expect(value.jsonText == payload)
        #expect(try Self.json.decode(" 5 ").get() == 5)
        #expect(try Self.json.decode(#""s""#).get() == "s")
        #expect(try Self.json.decode("[1,2.5]").get() == [1, 2.5])
    }

    @Test(
        "malformed JSON fails with the byte, the reason and the place",
        arguments: [
            ("", "not valid JSON: the payload is empty"),
            (#"{"event_id": 1,}"#, "not valid JSON at byte 15: expected a key in double quotes, found '}'; near: {\"event_id\": 1,}"),
            (
                #"{"a": [1, 2"#,
                "not valid JSON at byte 11: expected ',' or ']' in the array that starts at byte 6, found the end of the text"
            ),
            ("event 42", "not valid JSON at byte 0: expected a value, found 'e'"),
            ("nul", "not valid JSON at byte 0: expected a value (true, false or null?), found 'nul'"),
            ("{'a': 1}", "not valid JSON at byte 1: expected a key in double quotes or '}', found '''"),
            ("[1] [2]", "not valid JSON at byte 4: unexpected '[' after the JSON value"),
            ("\u{0}\u{1}binary", "not valid JSON at byte 0: expected a value, found U+0000"),
            (#"{"a":"\ud800"}"#, #"not valid JSON at byte 6: lone surrogate \ud800"#),
            ("[NaN]", "not valid JSON at byte 1: expected a value, found 'N'"),
        ])
    func malformedJSON(payload: String, expected: String) {
        let reason = Self.failure(Self.json.decode(payload))
        #expect(reason?.hasPrefix(expected) == true, "\(reason ?? "decoded")")
    }

    @Test("CSV: one RFC 4180 record, an object of the columns in order")
    func csv() throws {
        let value = try Self.gc2.decode("INSERT,public,parcels,gid,42").get()
        #expect(value == ["op": "INSERT", "schema": "public", "table": "parcels", "key": "gid", "value": "42"])
        #expect(value.jsonText == #"{"op":"INSERT","schema":"public","table":"parcels","key":"gid","value":"42"}"#)
        let quoted = try Self.gc2.decode("UPDATE,public,\"a,b\",\"say \"\"hi\"\"\",\"line1\nline2\"\r\n").get()
        #expect(quoted["table"] == "a,b")
        #expect(quoted["key"] == "say \"hi\"")
        #expect(quoted["value"] == "line1\nline2")
        #expect(try Self.gc2.decode("DELETE,,,,").get()["value"] == "")
        #expect(try PayloadDecoder(format: .csv(columns: ["only"])).decode("").get() == ["only": ""])
    }

    @Test(
        "malformed or short CSV fails with a reason",
        arguments: [
            ("INSERT,public,parcels,gid", "CSV record has 4 fields, expected 5 (op, schema, table, key, value): INSERT,public,parcels,gid"),
            ("INSERT,public,parcels,gid,42,extra", "CSV record has 6 fields, expected 5 (op, schema, table, key, value)"),
            ("INSERT", "CSV record has 1 field, expected 5"),
            (
                "INSERT,public,\"parcels",
                "not one CSV record: unterminated quoted field: the quote at byte 14 is never closed; near: INSERT,public,\"parcels"
            ),
            ("INSERT,pub\"lic,t,k,v", "not one CSV record: a quote inside an unquoted field at byte 10"),
            ("INSERT,\"public\"x,t,k,v", "not one CSV record: unexpected 'x' after a closing quote at byte 15"),
            ("INSERT,public,t,k,1\nINSERT,public,t,k,2", "not one CSV record: a line break outside quotes at byte 19"),
        ])
    func malformedCSV(payload: String, expected: String) {
        let reason = Self.failure(Self.gc2.decode(payload))
        #expect(reason?.hasPrefix(expected) == true, "\(reason ?? "decoded")")
    }

    @Test("text: the payload as it is")
    func text() throws {
        for payload in ["", "hello", "{\"a\":1}", "a,b", "\u{0}\u{FFFD}😀"] {
            #expect(try PayloadDecoder(format: .text).decode(payload).get() == .string(payload))
        }
        #expect(DecodeFailure(reason: "r").description == "r")
    }

    @Test("huge payloads are decoded or refused, never a crash")
    func huge() throws {
        let numbers = "[" + (0..<200_000).map(String.init).joined(separator: ",") + "]"
        guard case .array(let elements) = try Self.json.decode(numbers).get() else {
            Issue.record("not an array")
            return
        }
        #expect(elements.count == 200_000)
        #expect(Self.failure(Self.json.decode(String(repeating: "[", count: 1_000_000)))?.contains("nested more than 512 deep") == true)
        #expect(Self.failure(Self.json.decode(String(repeating: #"{"a":"#, count: 100_000))) != nil)
        let longField = String(repeating: "x", count: 2_000_000)
        #expect(try Self.gc2.decode("INSERT,public,t,k,\"\(longField)\"").get()["value"] == .string(longField))
        #expect(Self.failure(Self.gc2.decode(String(repeating: ",", count: 500_000)))?.hasPrefix("CSV record has 500001 fields") == true)
    }

    @Test("thousands of random and mangled payloads: every format decodes or fails with a reason")
    func fuzz() throws {
        var random = SplitMix64(seed: 2_026_004)
        let tokens: [String] = [
            "{", "}", "[", "]", "\"", "\\", ",", ":", " ", "\n", "\r", "\t", "0", "1", "-", "+", ".", "e", "E", "01",
            "true", "false", "null", "nul", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u00", "\\n", "\\x",
            "é", "日", "😀", "\u{0}", "\u{1F}", "\u{7F}", "\u{FEFF}", "\u{2028}", "\"\"", "INSERT", "public",
            "123456789012345678901234567890", "1e999999", "-0.0e-0",
        ]
        let valid = [
            #"{"event_id":"e1","chain_id":1,"note":null,"user":{"token":"x"},"list":[1,2.5,-3e4,"a\"b",true]}"#,
            "INSERT,public,events,1,\"a,\"\"b\"\"\"",
            "UPDATE,\"s\",\"t\",\"k\",\"multi\nline\"",
        ]
        let decoders = [Self.json, Self.gc2, PayloadDecoder(format: .text), PayloadDecoder(format: .csv(columns: ["a", "b"]))]
        var decoded = 0
        var failed = 0
        for round in 0..<4_000 {
            let payload: String
            switch round % 5 {
            case 0:  // a soup of JSON and CSV fragments
                payload = (0..<Int.random(in: 0...40, using: &random)).map { _ in tokens.randomElement(using: &random)! }.joined()
            case 1:  // random Unicode scalars
                payload = random.string(maxLength: 40)
            case 2:  // random bytes, read as UTF-8 (invalid sequences become U+FFFD)
                payload = String(
                    decoding: (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) },
                    as: UTF8.self)
            case 3:  // a valid payload, mangled
                var characters = Array(valid.randomElement(using: &random)!)
                for _ in 0..<Int.random(in: 1...4, using: &random) where !characters.isEmpty {
                    let index = Int.random(in: 0..<characters.count, using: &random)
                    switch Int.random(in: 0...2, using: &random) {
                    case 0: characters.remove(at: index)
                    case 1: characters.insert(tokens.randomElement(using: &random)!.first ?? "x", at: index)
                    default: characters[index] = Character(random.scalar())
                    }
                }
                payload = String(characters)
            default:  // deep or unbalanced nesting
                let depth = Int.random(in: 0...1_200, using: &random)
                let open = String(repeating: ["[", "{\"a\":", "[{\"b\":"].randomElement(using: &random)!, count: depth)
                payload =
                    open + (Bool.random(using: &random) ? "1" : "")
                    + String(repeating: "]", count: Int.random(in: 0...depth, using: &random))
            }
            for decoder in decoders {
                switch decoder.decode(payload) {
                case .success(let value):
                    decoded += 1
                    switch decoder.format {
                    case .json:
                        #expect((try? JSONScanner.parse(payload)) != nil)
                        // Whatever was read is written as valid JSON again.
                        #expect((try? EventValue(json: value.jsonText)) != nil, "\(payload.debugDescription)")
                    case .csv(let columns):
                        guard case .object(let object) = value else {
                            Issue.record("CSV decoded as \(value)")
                            continue
                        }
                        #expect(object.keys == columns)
                    case .text:
                        #expect(value == .string(payload))
                    }
                case .failure(let failure):
                    failed += 1
                    #expect(!failure.reason.isEmpty)
                    if decoder.format == .json, !payload.isEmpty {
                        #expect((try? JSONScanner.parse(payload)) == nil)
                    }
                }
            }
        }
        #expect(decoded + failed == 16_000)
        #expect(decoded > 4_000)  // text always decodes, and some of the rest does
        #expect(failed > 4_000)
    }
}
