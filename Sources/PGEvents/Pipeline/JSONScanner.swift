// JSON scanning for payloads. Payloads are untrusted text, so nothing here may crash on any input: the scanner is
// iterative (no recursion, so no stack to exhaust), bounds the nesting depth, and reports every malformation as an
// error with its byte offset.
//
// JSON is scanned by its own small parser rather than Foundation's, because what a value is depends on how it is
// written: `1` is an integer and `1.0` is not, `true` is a boolean and `1` is not (Foundation on Linux bridges
// numbers and booleans through NSNumber), and a 30-digit integer is still an integer.

import PGEventsSystem

/// A JSON text as the flat list of its values in document order (an object or array is followed by its
/// members), with numbers kept as written. Flat, so that neither walking nor freeing it recurses.
public struct JSONDocument: Sendable {
    public enum Kind: Sendable, Equatable {
        case object, array, string, number, boolean, null
    }

    public struct Value: Sendable {
        public internal(set) var kind: Kind
        /// A string's decoded text; a number's literal as written (`1.0`, `1e3`); `true`/`false`; `null`;
        /// empty for an object or array.
        public internal(set) var text: String
        /// The index of the object or array that holds it; -1 for the top-level value.
        public internal(set) var parent: Int
        /// Its key, in an object.
        public internal(set) var key: String?
        /// Its position, in an array (and in an object, its member's position).
        public internal(set) var position: Int
        /// Its byte range in the source.
        public internal(set) var start: Int
        public internal(set) var end: Int
        /// The index just after its last member (for a scalar: its own index + 1).
        public internal(set) var next: Int
    }

    /// The top-level value is `values[0]`.
    public internal(set) var values: [Value]
    /// The UTF-8 text it was scanned from.
    public let bytes: [UInt8]

    /// The indices of the members of the object or array at `index`.
    public func children(of index: Int) -> [Int] {
        var result: [Int] = []
        var child = index + 1
        while child < values[index].next {
            result.append(child)
            child = values[child].next
        }
        return result
    }

    /// The key path of a value: `user.name`, `items[2].id`, `[0]`; empty for the top-level value.
    public func path(of index: Int) -> String {
        var components: [String] = []
        var current = index
        while current > 0, values[current].parent >= 0 {
            let value = values[current]
            if values[value.parent].kind == .object {
                components.append(value.key ?? "")
            } else {
                components.append("[\(value.position)]")
            }
            current = value.parent
        }
        var path = ""
        for component in components.reversed() {
            if !path.isEmpty, !component.hasPrefix("[") { path += "." }
            path += component
        }
        return path
    }

    /// The JSON text of a value, as written.
    public func source(of index: Int) -> String {
        String(decoding: bytes[values[index].start..<values[index].end], as: UTF8.self)
    }
}

/// A JSON syntax error: the byte offset, and what was expected there.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The byte offset of the problem in the UTF-8 text.
    public var offset: Int
    public var reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "at byte \(offset): \(reason)" }
}

/// An iterative RFC 8259 parser (any value at the top level; no extensions: no comments, no trailing commas,
/// no NaN). Refuses nesting deeper than `maximumDepth`, and lone UTF-16 surrogates in `\u` escapes.
public struct JSONScanner {
    /// How deep objects and arrays may nest before the text is refused.
    public static let maximumDepth = 512

    private let bytes: [UInt8]
    private var position = 0
    private var values: [JSONDocument.Value] = []
    /// The objects and arrays not closed yet: their index, and how many members they have so far.
    private var open: [(index: Int, members: Int)] = []

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Scans `text` (one JSON value, with optional whitespace around it).
    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONDocument {
        var scanner = JSONScanner(bytes: Array(text.utf8))
        try scanner.scan()
        return JSONDocument(values: scanner.values, bytes: scanner.bytes)
    }

    private mutating func scan() throws(JSONSyntaxError) {
        var key: String?
        nextValue: while true {
            skipWhitespace()
            guard position < bytes.count else { throw failure("expected a value, found the end of the text") }
            let start = position
            switch bytes[position] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = bytes[position] == UInt8(ascii: "{")
                guard open.count < Self.maximumDepth else {
                    throw failure("objects and arrays are nested more than \(Self.maximumDepth) deep")
                }
                append(isObject ? .object : .array, text: "", key: key, start: start)
                open.append((values.count - 1, 0))
                position += 1
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: isObject ? "}" : "]") {
                    position += 1
                    close()
                } else if isObject {
                    key = try objectKey(first: true)
                    continue nextValue
                } else {
                    key = nil
                    continue nextValue
                }
            case UInt8(ascii: "\""):
                let text = try string()
                append(.string, text: text, key: key, start: start)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let text = try number()
                append(.number, text: text, key: key, start: start)
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                let (kind, text) = try literal()
                append(kind, text: text, key: key, start: start)
            default:
                throw failure("expected a value, found \(describeCharacter(in: bytes, at: position))")
            }
            // After a value: close what ends here, then the next member, or the end of the text.
            while true {
                skipWhitespace()
                guard let top = open.last else {
                    guard position == bytes.count else {
                        throw failure("unexpected \(describeCharacter(in: bytes, at: position)) after the JSON value")
                    }
                    return
                }
                let isObject = values[top.index].kind == .object
                let closing = UInt8(ascii: isObject ? "}" : "]")
                if position < bytes.count, bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    key = isObject ? try objectKey(first: false) : nil
                    continue nextValue
                }
                if position < bytes.count, bytes[position] == closing {
                    position += 1
                    close()
                    continue
                }
                let found = position < bytes.count ? describeCharacter(in: bytes, at: position) : "the end of the text"
                throw failure(
                    "expected ',' or '\(isObject ? "}" : "]")' in the \(isObject ? "object" : "array") that starts at byte \(values[top.index].start), found \(found)"
                )
            }
        }
    }

    private mutating func append(_ kind: JSONDocument.Kind, text: String, key: String?, start: Int) {
        let parent = open.last?.index ?? -1
        let memberPosition = open.last?.members ?? 0
        if !open.isEmpty { open[open.count - 1].members += 1 }
        values.append(
            JSONDocument.Value(
                kind: kind, text: text, parent: parent, key: key, position: memberPosition, start: start, end: position,
                next: values.count + 1
            ))
    }

    private mutating func close() {
        guard let top = open.popLast() else { return }
        values[top.index].end = position
        values[top.index].next = values.count
    }

    /// A member's key and its colon; the position is just after `{` or `,`.
    private mutating func objectKey(first: Bool) throws(JSONSyntaxError) -> String {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
            let found = describeCharacter(in: bytes, at: position)
            throw failure(
                first ? "expected a key in double quotes or '}', found \(found)" : "expected a key in double quotes, found \(found)")
        }
        let key = try string()
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
            throw failure(
                "expected ':' after the key \"\(TextExcerpt.excerpt(key, limit: 40))\", found \(describeCharacter(in: bytes, at: position))"
            )
        }
        position += 1
        return key
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }

    /// A string's text; the position is at its opening quote.
    private mutating func string() throws(JSONSyntaxError) -> String {
        let opening = position
        position += 1
        var text: [UInt8] = []
        var segment = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                text.append(contentsOf: bytes[segment..<position])
                position += 1
                return String(decoding: text, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") {
                text.append(contentsOf: bytes[segment..<position])
                try escape(into: &text)
                segment = position
                continue
            }
            if byte < 0x20 {
                throw failure("a control character (\(describeCharacter(in: bytes, at: position))) inside a string must be escaped")
            }
            position += 1
        }
        throw failure("unterminated string: the quote at byte \(opening) is never closed", at: opening)
    }

    /// One escape sequence; the position is at its backslash.
    private mutating func escape(into text: inout [UInt8]) throws(JSONSyntaxError) {
        let backslash = position
        guard position + 1 < bytes.count else { throw failure("unterminated string: the text ends in an escape") }
        let letter = bytes[position + 1]
        position += 2
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(letter)
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "u"):
            guard let unit = hex4(at: position) else {
                throw failure("expected 4 hexadecimal digits after \\u", at: backslash)
            }
            position += 4
            var value = UInt32(unit)
            let written = String(decoding: bytes[backslash..<position], as: UTF8.self)
            if (0xDC00...0xDFFF).contains(unit) {
                throw failure("lone surrogate \(written): a low surrogate must follow a high one (\\uD800…\\uDBFF)", at: backslash)
            }
            if (0xD800...0xDBFF).contains(unit) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u"),
                    let low = hex4(at: position + 2), (0xDC00...0xDFFF).contains(low)
                else {
                    throw failure(
                        "lone surrogate \(written): a high surrogate must be followed by a low one (\\uDC00…\\uDFFF)", at: backslash)
                }
                position += 6
                value = 0x10000 + ((value - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw failure("\(written) is not a Unicode scalar", at: backslash)
            }
            text.append(contentsOf: String(scalar).utf8)
        default:
            throw failure(
                "invalid escape \\\(describeCharacter(in: bytes, at: backslash + 1).trimmingQuotes) (expected \\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\uXXXX)",
                at: backslash
            )
        }
    }

    private func hex4(at offset: Int) -> UInt16? {
        guard offset + 4 <= bytes.count else { return nil }
        var value: UInt16 = 0
        for byte in bytes[offset..<offset + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    /// A number's literal, checked against the grammar; the position is at its first character.
    private mutating func number() throws(JSONSyntaxError) -> String {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard isDigit(at: position) else {
            throw failure("expected a digit after '-', found \(describeCharacter(in: bytes, at: position))")
        }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if isDigit(at: position) { throw failure("a number cannot have a leading zero", at: position - 1) }
        } else {
            while isDigit(at: position) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard isDigit(at: position) else {
                throw failure("expected a digit after the decimal point, found \(describeCharacter(in: bytes, at: position))")
            }
            while isDigit(at: position) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard isDigit(at: position) else {
                throw failure("expected a digit in the exponent, found \(describeCharacter(in: bytes, at: position))")
            }
            while isDigit(at: position) { position += 1 }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private func isDigit(at offset: Int) -> Bool {
        offset < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset])
    }

    /// `true`, `false` or `null`; the position is at its first letter.
    private mutating func literal() throws(JSONSyntaxError) -> (JSONDocument.Kind, String) {
        for (word, kind) in [("true", JSONDocument.Kind.boolean), ("false", .boolean), ("null", .null)] {
            let utf8 = Array(word.utf8)
            if position + utf8.count <= bytes.count, bytes[position..<position + utf8.count].elementsEqual(utf8) {
                position += utf8.count
                return (kind, word)
            }
        }
        var end = position
        while end < bytes.count, end - position < 12, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[end]) { end += 1 }
        throw failure("expected a value (true, false or null?), found '\(String(decoding: bytes[position..<end], as: UTF8.self))'")
    }

    private func failure(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? position, reason: reason)
    }
}

extension String {
    /// `'x'` → `x` (for a character shown inside other punctuation).
    fileprivate var trimmingQuotes: String {
        hasPrefix("'") && hasSuffix("'") && count >= 2 ? String(dropFirst().dropLast()) : self
    }
}

/// How the character at `offset` is shown in a syntax error: `'x'`, `U+000A`, `the end of the text`. Control
/// characters and line or paragraph separators (U+0085, U+2028, …) are shown by their code point, so that a
/// message stays on one line (a fuzzing finding).
func describeCharacter(in bytes: [UInt8], at offset: Int) -> String {
    guard offset >= 0, offset < bytes.count else { return "the end of the text" }
    let byte = bytes[offset]
    let length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
    let character = String(decoding: bytes[offset..<min(offset + length, bytes.count)], as: UTF8.self)
    if let scalar = character.unicodeScalars.first, TextExcerpt.needsEscape(scalar) {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
    return "'\(character)'"
}
