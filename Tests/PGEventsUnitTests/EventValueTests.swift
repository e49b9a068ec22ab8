import Foundation
import Testing

@testable import PGEvents

extension SplitMix64 {
    /// A random Unicode scalar: mostly ASCII (with control characters), some BMP, some astral.
    mutating func scalar() -> Unicode.Scalar {
        switch Int.random(in: 0..<10, using: &self) {
        case 0..<6: return Unicode.Scalar(UInt8.random(in: 0...127, using: &self))
        case 6..<9:
            let value = UInt32.random(in: 0x80...0xFFFD, using: &self)
            return Unicode.Scalar(value) ?? "?"
        default:
            return Unicode.Scalar(UInt32.random(in: 0x10000...0x10FFFF, using: &self)) ?? "?"
        }
    }

    mutating func string(maxLength: Int = 12) -> String {
        String(String.UnicodeScalarView((0..<Int.random(in: 0...maxLength, using: &self)).map { _ in scalar() }))
    }

    /// A random value, at most `depth` levels of arrays and objects deep; numbers are finite.
    mutating func value(depth: Int) -> EventValue {
        switch Int.random(in: 0..<(depth > 0 ? 9 : 6), using: &self) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &self))
        case 2:
            return .integer(
                [
                    Int64.min, Int64.max, 0, -1, Int64.random(in: -1_000...1_000, using: &self),
                    Int64.random(in: .min ... .max, using: &self),
                ]
                .randomElement(using: &self)!)
        case 3:
            let special: [Double] = [
                0, -0.0, 0.1, 1e20, 1e-7, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.leastNormalMagnitude, 1, 123.456,
            ]
            if Bool.random(using: &self) { return .number(special.randomElement(using: &self)!) }
            let bits = Double(bitPattern: next())
            return .number(bits.isFinite ? bits : 2.5)
        case 4, 5: return .string(string())
        case 6: return .array((0..<Int.random(in: 0...4, using: &self)).map { _ in value(depth: depth - 1) })
        default:
            return .object(
                EventObject((0..<Int.random(in: 0...4, using: &self)).map { _ in (string(maxLength: 5), value(depth: depth - 1)) }))
        }
    }
}

@Suite("Event values")
struct EventValueTests {
    static let sample: EventValue = [
        "a": ["b": [["c": 1], ["c": "x"]]],
        "k.dot": true,
        "arr": [10, 20],
        "0": "zero",
        "empty": [:],
    ]

    @Test(
        "dotted paths reach members and array elements",
        arguments: [
            ("a.b.0.c", EventValue?.some(1)),
            ("a.b.1.c", "x"),
            ("a.b.2.c", nil),  // out of range
            ("a.b.c", nil),  // not an index into an array
            ("arr.1", 20),
            ("arr.01", nil),  // no leading zeros
            ("arr.-1", nil),
            ("arr.+1", nil),
            ("arr.0.x", nil),  // into a scalar
            ("0", "zero"),  // a numeric key in an object
            ("k.dot", nil),  // dots separate; the list form reaches such keys
            ("missing", nil),
            ("a.", nil),
            ("empty", EventValue?.some([:])),
        ])
    func paths(path: String, expected: EventValue?) {
        #expect(Self.sample[path] == expected)
        #expect(Self.sample.value(at: path) == expected)
    }

    @Test("the list form of a path, and the empty path")
    func listPaths() {
        #expect(Self.sample.value(at: ["k.dot"]) == true)
        #expect(Self.sample.value(at: ["a", "b", "0", "c"]) == 1)
        #expect(Self.sample.value(at: []) == Self.sample)
        #expect(Self.sample[""] == Self.sample)
        #expect(EventValue.string("s").value(at: ["0"]) == nil)
        let big = EventValue.array(Array(repeating: 1, count: 3))
        #expect(big.value(at: ["99999999999999999999999"]) == nil)
    }

    @Test("objects keep their key order; setting replaces in place; nil removes")
    func objects() {
        var object: EventObject = ["z": 1, "a": 2, "m": 3]
        #expect(object.keys == ["z", "a", "m"])
        object["a"] = "two"
        object["new"] = .null
        #expect(EventValue.object(object).jsonText == #"{"z":1,"a":"two","m":3,"new":null}"#)
        object["z"] = nil
        object["absent"] = nil
        #expect(object.keys == ["a", "m", "new"])
        #expect(object.count == 3)
        #expect(object[1].key == "m")
        // A repeated key keeps its first position and takes the later value.
        #expect(EventObject([("a", 1), ("b", 2), ("a", 3)]).keys == ["a", "b"])
        #expect(EventObject([("a", 1), ("b", 2), ("a", 3)])["a"] == 3)
    }

    @Test("compact JSON text, strings escaped per RFC 8259")
    func serialisation() {
        #expect(Self.sample.jsonText == #"{"a":{"b":[{"c":1},{"c":"x"}]},"k.dot":true,"arr":[10,20],"0":"zero","empty":{}}"#)
        let text = EventValue.string("\"\\\n\r\t\u{8}\u{C}\u{0}\u{1F}/é😀\u{7F}\u{2028}")
        #expect(text.jsonText == #""\"\\\n\r\t\b\f\u0000\u001F/é😀"# + "\u{7F}\u{2028}\"")
        #expect(EventValue.array([.number(.nan), .number(.infinity), .number(-.infinity)]).jsonText == "[null,null,null]")
        #expect(EventValue.integer(.min).jsonText == "-9223372036854775808")
        #expect(EventValue.number(1).jsonText == "1.0")
        #expect(EventValue.number(1e20).jsonText == "1e+20")
        #expect(EventValue.number(0.1).jsonText == "0.1")
        #expect(EventValue.number(-0.0).jsonText == "-0.0")
        #expect(EventValue.array([]).jsonText == "[]")
        #expect(EventValue.null.description == "null")
        #expect([EventValue.bool(false), "s", .null].map(\.interpolationText) == ["false", "s", ""])
        #expect(EventValue.object(["k": [1]]).interpolationText == #"{"k":[1]}"#)
    }

    @Test(
        "JSON numbers: integers when they fit Int64 and have no fraction or exponent",
        arguments: [
            ("0", EventValue.integer(0)),
            ("-0", .integer(0)),
            ("42", .integer(42)),
            ("9223372036854775807", .integer(.max)),
            ("-9223372036854775808", .integer(.min)),
            ("9223372036854775808", .number(9_223_372_036_854_775_808)),
            ("123456789012345678901234567890", .number(1.2345678901234568e29)),
            ("1.0", .number(1)),
            ("1e3", .number(1000)),
            ("1E-2", .number(0.01)),
            ("-2.5", .number(-2.5)),
            ("1e999", .number(.infinity)),
        ])
    func numbers(text: String, expected: EventValue) throws {
        #expect(try EventValue(json: text) == expected)
    }

    @Test("numbers that are not Int64 are written back as read: a uint256 amount loses no digit on its way into a job")
    func numberLiterals() throws {
        let amount = "115792089237316195423570985008687907853269984665640564039457584007913129639935"  // 2^256 - 1
        let event = try EventValue(json: #"{"amount": \#(amount), "fee": 1.50, "huge": 1e999}"#)
        #expect(event.jsonText == #"{"amount":\#(amount),"fee":1.50,"huge":1e999}"#)
        let job = try JobTemplate(["amount": "{{event.amount}}", "text": "paid {{event.amount}}"]).render(EvaluationContext(event: event))
        #expect(job.jsonText == #"{"amount":\#(amount),"text":"paid \#(amount)"}"#)
        // Rules still compare by value; a computed number has no literal.
        #expect(event["amount"]?.semanticallyEquals(.number(1.157920892373162e77)) == true)
        #expect(EventValue.number(0.1 + 0.2).jsonText == "0.30000000000000004")
    }

    @Test("parsing keeps key order and types; a repeated key keeps its last value")
    func parsing() throws {
        let value = try EventValue(json: #" {"z": 1, "a": [true, false, null, "s\u00e9\ud83d\ude00"], "z": {"n": 1.5}} "#)
        #expect(value == ["z": ["n": 1.5], "a": [true, false, .null, "sé😀"]])
        #expect(value.jsonText == #"{"z":{"n":1.5},"a":[true,false,null,"sé😀"]}"#)
        #expect(try EventValue(json: #""just a string""#) == "just a string")
        #expect(try EventValue(json: "null") == .null)
        let error = #expect(throws: JSONSyntaxError.self) { try EventValue(json: #"{"a":}"#) }
        #expect(error?.offset == 5)
        #expect(error?.reason.hasPrefix("expected a value") == true)
        #expect(error?.description.hasPrefix("at byte 5: ") == true)
    }

    @Test(
        "compact JSON text parses back to the same value",
        arguments: [
            #"{"event_id":"0xabc","chain_id":11155111,"block_number":1000000,"event_type":"AgentRegistered","registry":"identity"}"#,
            #"[1,-2,3.5,1e+20,"a\"b\\c\n",true,false,null,{},[],{"nested":[{"k":[[]]}]}]"#,
            #"{"":"","\u0000":"\u001F"}"#,
            #""é日😀""#,
            "-9223372036854775808",
            "5e-324",
        ])
    func roundTrips(text: String) throws {
        let value = try EventValue(json: text)
        #expect(try EventValue(json: value.jsonText) == value)
        #expect(try EventValue(json: value.jsonText).jsonText == value.jsonText)
    }

    @Test("random values survive a round trip through their JSON text")
    func randomRoundTrips() throws {
        var random = SplitMix64(seed: 8_004)
        for _ in 0..<2_000 {
            let value = random.value(depth: 4)
            let parsed = try EventValue(json: value.jsonText)
            #expect(parsed == value, "\(value.jsonText)")
        }
    }

    @Test("nesting: 512 levels are read and written, 513 are refused, without recursion limits")
    func depth() throws {
        let deepest = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        let value = try EventValue(json: deepest)
        #expect(value.jsonText == deepest)
        var path: [String] = []
        for _ in 0..<511 { path.append("0") }
        #expect(value.value(at: path) == [])
        let objects = String(repeating: #"{"a":"#, count: 511) + "1" + String(repeating: "}", count: 511)
        #expect(try EventValue(json: objects).value(at: String(repeating: "a.", count: 510) + "a") == 1)
        #expect(throws: JSONSyntaxError.self) { try EventValue(json: "[" + deepest + "]") }
    }

    @Test("exact equality distinguishes integers from numbers and key orders; semantic equality does not")
    func equality() {
        #expect(EventValue.integer(1) != .number(1))
        #expect(EventValue.integer(1).semanticallyEquals(.number(1)))
        let ab: EventValue = ["a": 1, "b": [1, 2]]
        let ba: EventValue = ["b": [1.0, 2], "a": 1.0]
        #expect(ab != ba)
        #expect(ab.semanticallyEquals(ba))
        #expect(!ab.semanticallyEquals(["a": 1]))
        #expect(!ab.semanticallyEquals(["a": 1, "c": [1, 2]]))
        #expect(!EventValue.array([1, 2]).semanticallyEquals([2, 1]))
        // Exact beyond 2^53: 2^53 + 1 is not the Double 2^53.
        #expect(!EventValue.integer(9_007_199_254_740_993).semanticallyEquals(.number(9_007_199_254_740_992)))
        #expect(EventValue.integer(9_007_199_254_740_992).semanticallyEquals(.number(9_007_199_254_740_992)))
        #expect(!EventValue.integer(.max).semanticallyEquals(.number(9_223_372_036_854_775_808)))
        #expect(!EventValue.number(.nan).semanticallyEquals(.number(.nan)))
        #expect(!EventValue.string("1").semanticallyEquals(1))
        #expect(!EventValue.bool(true).semanticallyEquals(1))
        #expect(EventValue.null.semanticallyEquals(.null))
        #expect(EventValue.string("é").semanticallyEquals(.string("e\u{301}")))
        #expect(Set<EventValue>([1, 1, "1", 1.0]).count == 3)
    }

    // The field names are the payload's JSON keys, as a user's Decodable type spells them.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    struct Registered: Decodable, Equatable {
        var event_id: String
        var chain_id: Int
        var block_number: Int64
        var note: String?
        var tags: [String]
    }

    @Test("a value decodes into a Decodable type")
    func decodable() throws {
        let value = try EventValue(json: #"{"event_id":"e1","chain_id":137,"block_number":9007199254740993,"tags":["a"],"extra":{}}"#)
        #expect(
            try value.decode(Registered.self)
                == Registered(event_id: "e1", chain_id: 137, block_number: 9_007_199_254_740_993, note: nil, tags: ["a"]))
        let typed: Registered = try value.decode()
        #expect(typed.chain_id == 137)
        #expect(try EventValue.integer(5).decode(Int.self) == 5)
        #expect(throws: (any Error).self) { try EventValue.object(["event_id": 1]).decode(Registered.self) }
    }
}
