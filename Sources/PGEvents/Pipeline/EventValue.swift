import struct Foundation.Data
import class Foundation.JSONDecoder

/// A JSON value: a decoded payload, a fetched row, a rendered job.
///
/// Numbers keep the distinction JSON text makes: a literal without fraction or exponent that fits in 64 bits is
/// an `integer`, any other number (`1.0`, `1e3`, `12345678901234567890`) a `number`. Objects keep their keys in
/// order (the order of the text they were read from).
///
/// `==` is exact, as data: `.integer(1)` and `.number(1.0)` differ, and so do objects whose keys are in another
/// order; a number's literal takes no part (`1.50` and `1.5` read from JSON are equal). Rules compare semantically instead (``semanticallyEquals(_:)``: numbers by value, objects by members).
public enum EventValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    /// A number other than an Int64; `literal` is its text as read from JSON (`1.0`, `1e3`, a 78-digit uint256),
    /// written back as it was, so that copying it into a job loses no digits; nil for a computed number.
    case number(Double, literal: String? = nil)
    case string(String)
    case array([EventValue])
    case object(EventObject)
}

extension EventValue {
    public static func == (lhs: EventValue, rhs: EventValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.number(let a, _), .number(let b, _)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value):
            hasher.combine(1)
            hasher.combine(value)
        case .integer(let value):
            hasher.combine(2)
            hasher.combine(value)
        case .number(let value, _):
            hasher.combine(3)
            hasher.combine(value)
        case .string(let value):
            hasher.combine(4)
            hasher.combine(value)
        case .array(let value):
            hasher.combine(5)
            hasher.combine(value)
        case .object(let value):
            hasher.combine(6)
            hasher.combine(value)
        }
    }
}

// MARK: - Objects

/// The members of a JSON object, in order, each key once. Setting a key that is there replaces its value in
/// place; reading JSON, a key written twice keeps its first position and its last value (as most JSON readers and
/// PostgreSQL's `->>` take it).
public struct EventObject: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: EventValue)

    /// The keys, in order.
    public private(set) var keys: [String]
    /// The values, in the order of `keys`.
    public private(set) var values: [EventValue]

    public init() {
        keys = []
        values = []
    }

    /// The members of `members`, in order; a repeated key keeps its first position and takes the later value.
    public init(_ members: some Sequence<(String, EventValue)>) {
        self.init()
        keys.reserveCapacity(members.underestimatedCount)
        values.reserveCapacity(members.underestimatedCount)
        // Most objects (a payload, a row) have a few dozen members: a linear search for a repeated key is cheaper
        // than hashing every key; a dictionary of positions takes over beyond that.
        var positions: [String: Int]?
        for (key, value) in members {
            let position: Int?
            if let index = positions {
                position = index[key]
            } else {
                position = keys.firstIndex(of: key)
                if keys.count == Self.linearSearchLimit {
                    positions = Dictionary(keys.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
                }
            }
            if let position {
                values[position] = value
            } else {
                positions?[key] = keys.count
                keys.append(key)
                values.append(value)
            }
        }
    }

    /// Up to this many members, repeated keys are found by a linear search.
    static let linearSearchLimit = 32

    public init(dictionaryLiteral elements: (String, EventValue)...) {
        self.init(elements)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { keys.count }

    public subscript(position: Int) -> Element {
        (keys[position], values[position])
    }

    /// The value of `key`; setting `nil` removes the member.
    public subscript(key: String) -> EventValue? {
        get { keys.firstIndex(of: key).map { values[$0] } }
        set {
            if let index = keys.firstIndex(of: key) {
                if let newValue {
                    values[index] = newValue
                } else {
                    keys.remove(at: index)
                    values.remove(at: index)
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }
}

// MARK: - Literals

extension EventValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: EventValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, EventValue)...) { self = .object(EventObject(elements)) }
}

// MARK: - Paths

extension EventValue {
    /// The value at `path`, one component per level: a member's key in an object, an index (`0`, `12`: decimal
    /// digits without a leading zero) in an array. `nil` when a component is not there, or when the value at that
    /// level is neither an object nor an array. An empty path is the value itself.
    public func value(at path: [String]) -> EventValue? {
        var current = self
        for component in path {
            switch current {
            case .object(let object):
                guard let member = object[component] else { return nil }
                current = member
            case .array(let elements):
                guard let index = Self.arrayIndex(component), index < elements.count else { return nil }
                current = elements[index]
            default:
                return nil
            }
        }
        return current
    }

    /// The value at a dotted path, `a.b.0.c` (see ``value(at:)-([String])``); keys that contain dots are
    /// reached with the list form. The empty path is the value itself.
    public func value(at path: String) -> EventValue? {
        value(at: path.isEmpty ? [] : path.split(separator: ".", omittingEmptySubsequences: false).map(String.init))
    }

    /// `value["a.b.0.c"]`: the value at a dotted path, or `nil`.
    public subscript(path: String) -> EventValue? {
        value(at: path)
    }

    private static func arrayIndex(_ component: String) -> Int? {
        let utf8 = component.utf8
        guard let first = utf8.first, utf8.count <= 18, utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        if first == 0x30, utf8.count > 1 { return nil }
        return Int(component)
    }
}

// MARK: - Kinds and semantic comparison

extension EventValue {
    /// `null`, `a boolean`, `an integer`, `a number`, `a string`, `an array`, `an object`: for messages.
    public var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// What kind of value this is for comparisons: integers and numbers are one kind.
    enum Category: Sendable, Equatable {
        case null, bool, number, string, array, object
    }

    var category: Category {
        switch self {
        case .null: .null
        case .bool: .bool
        case .integer, .number: .number
        case .string: .string
        case .array: .array
        case .object: .object
        }
    }

    /// Equality as rules see it: numbers by value (`1 == 1.0`, exactly, even beyond 2^53), strings by Swift's
    /// `==` (canonical equivalence), arrays element by element, objects member by member in any order. Values of
    /// different kinds are never equal; NaN equals nothing.
    public func semanticallyEquals(_ other: EventValue) -> Bool {
        switch (self, other) {
        case (.null, .null):
            return true
        case (.bool(let a), .bool(let b)):
            return a == b
        case (.string(let a), .string(let b)):
            return a == b
        case (.integer, _), (.number, _):
            return Self.compareNumbers(self, other) == .same
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            return zip(a, b).allSatisfy { $0.semanticallyEquals($1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            return a.allSatisfy { member in b[member.key].map { member.value.semanticallyEquals($0) } ?? false }
        default:
            return false
        }
    }

    /// The order of two values: numbers by value, strings by their Unicode scalars (code point order, the order of
    /// their UTF-8 bytes, as PostgreSQL's "C" collation); `nil` for other kinds, mixed kinds and NaN.
    func ordering(comparedWith other: EventValue) -> Ordering? {
        switch (self, other) {
        case (.string(let a), .string(let b)):
            if a == b { return .same }
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? .ascending : .descending
        case (.integer, _), (.number, _):
            return Self.compareNumbers(self, other)
        default:
            return nil
        }
    }

    enum Ordering: Sendable, Equatable {
        case ascending, same, descending
    }

    /// Two numbers, exactly (an Int64 is not rounded to a Double); `nil` when either is not a number or is NaN.
    private static func compareNumbers(_ a: EventValue, _ b: EventValue) -> Ordering? {
        switch (a, b) {
        case (.integer(let x), .integer(let y)):
            return x < y ? .ascending : x > y ? .descending : .same
        case (.number(let x, _), .number(let y, _)):
            if x.isNaN || y.isNaN { return nil }
            return x < y ? .ascending : x > y ? .descending : .same
        case (.integer(let x), .number(let y, _)):
            return compare(x, y)
        case (.number(let x, _), .integer(let y)):
            return compare(y, x).map { $0 == .ascending ? .descending : $0 == .descending ? .ascending : .same }
        default:
            return nil
        }
    }

    private static func compare(_ integer: Int64, _ double: Double) -> Ordering? {
        if double.isNaN { return nil }
        // 2^63 is exact as a Double; in [-2^63, 2^63) the integral part of a Double converts to Int64 exactly.
        if double >= 9_223_372_036_854_775_808.0 { return .ascending }
        if double < -9_223_372_036_854_775_808.0 { return .descending }
        let whole = double.rounded(.towardZero)
        let wholeInteger = Int64(whole)
        if integer < wholeInteger { return .ascending }
        if integer > wholeInteger { return .descending }
        let fraction = double - whole
        return fraction > 0 ? .ascending : fraction < 0 ? .descending : .same
    }
}

// MARK: - JSON text

extension EventValue: CustomStringConvertible {
    /// Compact JSON text (no spaces), strings escaped per RFC 8259 (`"`, `\`, and control characters; other
    /// characters as they are). Numbers that are not finite (which JSON cannot write) become `null`.
    public var jsonText: String {
        var text = ""
        write(into: &text)
        return text
    }

    public var description: String { jsonText }

    /// The value as text inside a longer string: a string as it is (no quotes), null as nothing, anything else as
    /// its JSON text.
    public var interpolationText: String {
        switch self {
        case .string(let string): string
        case .null: ""
        default: jsonText
        }
    }

    private func write(into text: inout String) {
        switch self {
        case .null:
            text += "null"
        case .bool(let value):
            text += value ? "true" : "false"
        case .integer(let value):
            text += String(value)
        case .number(let value, let literal):
            if let literal {
                text += literal
            } else {
                text += value.isFinite ? value.description : "null"
            }
        case .string(let value):
            Self.writeString(value, into: &text)
        case .array(let elements):
            text += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { text += "," }
                element.write(into: &text)
            }
            text += "]"
        case .object(let object):
            text += "{"
            for index in object.indices {
                if index > 0 { text += "," }
                Self.writeString(object.keys[index], into: &text)
                text += ":"
                object.values[index].write(into: &text)
            }
            text += "}"
        }
    }

    private static func writeString(_ string: String, into text: inout String) {
        text += "\""
        // Only ASCII bytes are escaped, and no byte of a multi-byte UTF-8 sequence is ASCII: so the bytes can be
        // walked one by one, and a string with nothing to escape (most) is appended whole.
        let utf8 = string.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            text += string
        } else {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(utf8.count + 16)
            let hex = Array("0123456789ABCDEF".utf8)
            for byte in utf8 {
                switch byte {
                case 0x22: bytes += [0x5C, 0x22]  // \"
                case 0x5C: bytes += [0x5C, 0x5C]  // \\
                case 0x0A: bytes += [0x5C, 0x6E]  // \n
                case 0x0D: bytes += [0x5C, 0x72]  // \r
                case 0x09: bytes += [0x5C, 0x74]  // \t
                case 0x08: bytes += [0x5C, 0x62]  // \b
                case 0x0C: bytes += [0x5C, 0x66]  // \f
                case ..<0x20: bytes += [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]  // \u00XX
                default: bytes.append(byte)
                }
            }
            text += String(decoding: bytes, as: UTF8.self)
        }
        text += "\""
    }
}

// MARK: - Reading JSON

extension EventValue {
    /// Reads one JSON value (RFC 8259, nesting at most ``JSONScanner/maximumDepth`` deep). A number literal without
    /// fraction or exponent that fits in an Int64 is an `integer`, any other a `number`, which keeps its literal: it
    /// is written back exactly as read (`1.50`, `1e400`, a uint256), while rules compare it as a Double. A key written twice keeps its last value.
    public init(json text: String) throws(JSONSyntaxError) {
        self.init(document: try JSONScanner.parse(text))
    }

    /// The top-level value of a scanned document. Built bottom-up without recursion.
    public init(document: JSONDocument) {
        let values = document.values
        var built = [EventValue?](repeating: nil, count: values.count)
        for index in values.indices.reversed() {
            let value = values[index]
            switch value.kind {
            case .null:
                built[index] = .null
            case .boolean:
                built[index] = .bool(value.text == "true")
            case .string:
                built[index] = .string(value.text)
            case .number:
                built[index] = Self.number(value.text)
            case .array:
                let children = document.children(of: index)
                var elements: [EventValue] = []
                elements.reserveCapacity(children.count)
                for child in children {
                    elements.append(built[child] ?? .null)
                    built[child] = nil
                }
                built[index] = .array(elements)
            case .object:
                let children = document.children(of: index)
                let members = children.map { child in (values[child].key ?? "", built[child] ?? .null) }
                for child in children { built[child] = nil }
                built[index] = .object(EventObject(members))
            }
        }
        self = built.first.flatMap { $0 } ?? .null
    }

    private static func number(_ literal: String) -> EventValue {
        let isIntegral = !literal.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        if isIntegral, let integer = Int64(literal) { return .integer(integer) }
        return .number(Double(literal) ?? .nan, literal: literal)
    }
}

// MARK: - Decodable

extension EventValue {
    /// The value decoded as `type` (through its JSON text and Foundation's `JSONDecoder`): `try value.decode(MyEvent.self)`.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(type, from: Data(jsonText.utf8))
    }
}
