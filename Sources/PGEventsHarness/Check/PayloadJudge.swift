// Judging NOTIFY payloads against a channel's spec: size, format (JSON fields and their types, CSV column
// count), forbidden words. Payloads are untrusted text, so nothing here may crash on any input: the JSON and
// CSV scanners are iterative (no recursion, so no stack to exhaust), bound the nesting depth, and report every
// malformation as a problem.
//
// JSON is scanned by its own small parser rather than Foundation's, because the checks depend on how a value is
// written: `1` is an integer and `1.0` is not, `true` is a boolean and `1` is not (Foundation on Linux bridges
// numbers and booleans through NSNumber), and a 30-digit integer is still an integer.

/// A malformed CSV record: where (a byte offset in the UTF-8 text) and what.
public struct CSVError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The byte offset of the problem in the record's UTF-8 text.
    public var offset: Int
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { message }
}

/// One CSV record, as RFC 4180 writes it.
public enum CSVRecord {
    /// The fields of `text`, one record: fields are separated by commas; a field may be quoted with `"`
    /// (then `""` is a quote, and commas and line breaks are text). One trailing `\n` or `\r\n` is allowed.
    ///
    /// Throws for an unterminated quoted field, a quote inside an unquoted field, text after a closing quote,
    /// and a line break outside quotes (a second record).
    public static func parse(_ text: String) throws(CSVError) -> [String] {
        let bytes = Array(text.utf8)
        let count = bytes.count
        var fields: [String] = []
        var position = 0
        while true {
            if position < count, bytes[position] == UInt8(ascii: "\"") {
                let opening = position
                position += 1
                var field: [UInt8] = []
                var segment = position
                while true {
                    guard position < count else {
                        throw CSVError(offset: opening, message: "unterminated quoted field: the quote at byte \(opening) is never closed")
                    }
                    if bytes[position] == UInt8(ascii: "\"") {
                        field.append(contentsOf: bytes[segment..<position])
                        if position + 1 < count, bytes[position + 1] == UInt8(ascii: "\"") {
                            field.append(UInt8(ascii: "\""))
                            position += 2
                            segment = position
                            continue
                        }
                        position += 1
                        break
                    }
                    position += 1
                }
                fields.append(String(decoding: field, as: UTF8.self))
            } else {
                let start = position
                scan: while position < count {
                    switch bytes[position] {
                    case UInt8(ascii: ","), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                        break scan
                    case UInt8(ascii: "\""):
                        throw CSVError(
                            offset: position,
                            message: "a quote inside an unquoted field at byte \(position) (quote the whole field and double its quotes: \"a\"\"b\")"
                        )
                    default:
                        position += 1
                    }
                }
                fields.append(String(decoding: bytes[start..<position], as: UTF8.self))
            }
            // After a field: a comma, the end, or one final line break.
            if position == count { return fields }
            switch bytes[position] {
            case UInt8(ascii: ","):
                position += 1
            case UInt8(ascii: "\n") where position + 1 == count:
                return fields
            case UInt8(ascii: "\r") where position + 2 == count && bytes[position + 1] == UInt8(ascii: "\n"):
                return fields
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                throw CSVError(
                    offset: position,
                    message: "a line break outside quotes at byte \(position): a payload is one record (quote a field that contains line breaks)"
                )
            default:
                throw CSVError(
                    offset: position,
                    message: "unexpected \(describeCharacter(in: bytes, at: position)) after a closing quote at byte \(position) (expected ',' or the end of the record)"
                )
            }
        }
    }
}

/// What is wrong with one payload.
public struct PayloadProblem: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// A JSON or CSV payload with no text at all.
        case empty
        /// More bytes than `max_bytes` (or the server's limit).
        case tooLong
        /// Not valid JSON.
        case notJSON
        /// A declared JSON field is not in the payload.
        case missingField
        /// A declared JSON field has another type (or the payload is not the object the fields need).
        case wrongType
        /// A declared JSON field is null, and its type has no `?`.
        case nullNotAllowed
        /// Not one valid CSV record.
        case notCSV
        /// A CSV record with another number of fields than the spec's columns.
        case wrongColumnCount
        /// A forbidden word as a JSON key, in a value, or in the payload.
        case forbiddenWord
    }

    public var kind: Kind
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Judges payloads against a channel's spec.
public enum PayloadJudge {
    /// The most bytes a NOTIFY payload may have (PostgreSQL refuses 8,000 and more).
    public static let serverLimit = 7999
    /// How deep JSON objects and arrays may nest before the payload is refused.
    public static let maximumJSONDepth = JSONScanner.maximumDepth

    /// Everything wrong with `payload` on `channel`; empty when it passes.
    public static func problems(in payload: String, for channel: ChannelSpec) -> [PayloadProblem] {
        var problems: [PayloadProblem] = []
        let bytes = payload.utf8.count
        if let maxBytes = channel.maxBytes, bytes > maxBytes {
            problems.append(PayloadProblem(kind: .tooLong, message: "the payload has \(bytes) bytes, the spec allows at most \(maxBytes) (max_bytes)"))
        } else if bytes > serverLimit {
            problems.append(PayloadProblem(kind: .tooLong, message: "the payload has \(bytes) bytes, the server allows at most \(serverLimit)"))
        }
        let words = forbiddenWords(channel)
        switch channel.format {
        case .json:
            guard !payload.isEmpty else {
                problems.append(PayloadProblem(kind: .empty, message: "the payload is empty, the spec says json"))
                return problems
            }
            let document: JSONDocument
            do {
                document = try JSONScanner.parse(payload)
            } catch {
                problems.append(PayloadProblem(
                    kind: .notJSON,
                    message: "the payload is not valid JSON at byte \(error.offset): \(error.reason); near: \(context(of: payload, at: error.offset))"
                ))
                problems += textForbidden(words, in: payload)
                return problems
            }
            problems += fieldProblems(document, channel)
            problems += jsonForbidden(words, in: document)
        case .csv:
            guard !payload.isEmpty else {
                problems.append(PayloadProblem(kind: .empty, message: "the payload is empty, the spec says csv"))
                return problems
            }
            let fields: [String]
            do {
                fields = try CSVRecord.parse(payload)
            } catch {
                problems.append(PayloadProblem(kind: .notCSV, message: "the payload is not one CSV record: \(error.message); near: \(context(of: payload, at: error.offset))"))
                problems += textForbidden(words, in: payload)
                return problems
            }
            if let columns = channel.columns, fields.count != columns.count {
                problems.append(PayloadProblem(
                    kind: .wrongColumnCount,
                    message: "the record has \(fields.count) field\(fields.count == 1 ? "" : "s"), the spec says \(columns.count) (\(columns.joined(separator: ", "))): \(excerpt(payload, limit: 80))"
                ))
            }
            problems += csvForbidden(words, in: fields, columns: channel.columns, payload: payload)
        case .text:
            problems += textForbidden(words, in: payload)
        }
        return problems
    }

    /// The format `payload` looks written in: json for a JSON object or array, csv for a CSV record of two
    /// fields or more, text otherwise.
    public static func detectFormat(_ payload: String) -> PayloadFormat {
        if let document = try? JSONScanner.parse(payload), [.object, .array].contains(document.values[0].kind) {
            return .json
        }
        if let fields = try? CSVRecord.parse(payload), fields.count >= 2 {
            return .csv
        }
        return .text
    }

    /// `text` cut to `limit` characters (then ending in `…`), with control characters shown escaped (`\n`,
    /// `\t`, `\u{1B}`) so that the excerpt stays on one line.
    public static func excerpt(_ text: String, limit: Int = 120) -> String {
        var result = ""
        var length = 0
        for character in text {
            let shown = escaped(character)
            if length + shown.count > limit { return result + "…" }
            result += shown
            length += shown.count
        }
        return result
    }

    // MARK: JSON

    private static func fieldProblems(_ document: JSONDocument, _ channel: ChannelSpec) -> [PayloadProblem] {
        guard !channel.fields.isEmpty else { return [] }
        let root = document.values[0]
        guard root.kind == .object else {
            return [PayloadProblem(
                kind: .wrongType,
                message: "the payload is \(describe(0, in: document)), the spec declares fields (\(channel.fields.map(\.name).joined(separator: ", "))) so it must be a JSON object"
            )]
        }
        // A key written twice counts as its last value, as most JSON readers (and PostgreSQL's ->>) take it.
        var members: [String: Int] = [:]
        for index in document.children(of: 0) {
            if let key = document.values[index].key { members[key] = index }
        }
        var problems: [PayloadProblem] = []
        for (name, type) in channel.fields {
            guard let index = members[name] else {
                problems.append(PayloadProblem(kind: .missingField, message: "field '\(name)' is missing (the spec says \(type))"))
                continue
            }
            let value = document.values[index]
            if value.kind == .null {
                if !type.nullable {
                    problems.append(PayloadProblem(
                        kind: .nullNotAllowed,
                        message: "field '\(name)' is null, the spec says \(type) (write \(type.kind.rawValue)? to allow null)"
                    ))
                }
                continue
            }
            if !matches(value, type.kind) {
                problems.append(PayloadProblem(kind: .wrongType, message: "field '\(name)' is \(describe(index, in: document)), the spec says \(type)"))
            }
        }
        return problems
    }

    private static func matches(_ value: JSONDocument.Value, _ kind: JSONFieldType.Kind) -> Bool {
        switch kind {
        case .string: value.kind == .string
        case .integer: value.kind == .number && !value.text.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        case .number: value.kind == .number
        case .boolean: value.kind == .boolean
        case .object: value.kind == .object
        case .array: value.kind == .array
        }
    }

    /// `a string ("abc")`, `a number with a fraction or an exponent (1.0)`, `an object ({"a":1})`, `null`.
    private static func describe(_ index: Int, in document: JSONDocument) -> String {
        let value = document.values[index]
        switch value.kind {
        case .string:
            return "a string (\"\(excerpt(value.text, limit: 80))\")"
        case .number:
            let integral = matches(value, .integer)
            return "\(integral ? "an integer" : "a number with a fraction or an exponent") (\(excerpt(value.text, limit: 80)))"
        case .boolean:
            return "a boolean (\(value.text))"
        case .null:
            return "null"
        case .object:
            return "an object (\(excerpt(document.source(of: index), limit: 80)))"
        case .array:
            return "an array (\(excerpt(document.source(of: index), limit: 80)))"
        }
    }

    private static func jsonForbidden(_ words: [(word: String, lowercased: String)], in document: JSONDocument) -> [PayloadProblem] {
        guard !words.isEmpty else { return [] }
        // Lowercase each key and string value once, not once per word.
        let lowercasedKeys = document.values.map { $0.key?.lowercased() }
        let lowercasedStrings = document.values.map { $0.kind == .string ? $0.text.lowercased() : nil }
        var problems: [PayloadProblem] = []
        for (word, lowercased) in words {
            var first: String?
            var more = 0
            for index in document.values.indices {
                if let key = lowercasedKeys[index], key.contains(lowercased) {
                    if first == nil {
                        first = "the key '\(excerpt(document.path(of: index), limit: 80))' contains the forbidden word '\(word)'"
                    } else {
                        more += 1
                    }
                }
                if let text = lowercasedStrings[index], text.contains(lowercased) {
                    if first == nil {
                        let place = index == 0 ? "the payload (a JSON string)" : "the value of '\(excerpt(document.path(of: index), limit: 80))'"
                        first = "\(place) contains the forbidden word '\(word)': \"\(excerpt(document.values[index].text, limit: 80))\""
                    } else {
                        more += 1
                    }
                }
            }
            if let first {
                problems.append(PayloadProblem(kind: .forbiddenWord, message: first + andMore(more, "place")))
            }
        }
        return problems
    }

    // MARK: CSV and text

    private static func csvForbidden(_ words: [(word: String, lowercased: String)], in fields: [String], columns: [String]?, payload: String) -> [PayloadProblem] {
        guard !words.isEmpty else { return [] }
        let lowercasedFields = fields.map { $0.lowercased() }
        var problems: [PayloadProblem] = []
        for (word, lowercased) in words {
            let matching = lowercasedFields.indices.filter { lowercasedFields[$0].contains(lowercased) }
            guard let index = matching.first else {
                // Across fields, say: still in the payload.
                problems += textForbidden([(word, lowercased)], in: payload)
                continue
            }
            var name = "field \(index + 1)"
            if let columns, index < columns.count { name += " (\(columns[index]))" }
            problems.append(PayloadProblem(
                kind: .forbiddenWord,
                message: "\(name) contains the forbidden word '\(word)': \"\(excerpt(fields[index], limit: 80))\"" + andMore(matching.count - 1, "field")
            ))
        }
        return problems
    }

    private static func textForbidden(_ words: [(word: String, lowercased: String)], in payload: String) -> [PayloadProblem] {
        guard !words.isEmpty else { return [] }
        let text = payload.lowercased()
        return words.filter { text.contains($0.lowercased) }.map { word, _ in
            PayloadProblem(kind: .forbiddenWord, message: "the payload contains the forbidden word '\(word)': \(excerpt(payload, limit: 80))")
        }
    }

    private static func forbiddenWords(_ channel: ChannelSpec) -> [(word: String, lowercased: String)] {
        channel.forbid.filter { !$0.isEmpty }.map { ($0, $0.lowercased()) }
    }

    private static func andMore(_ count: Int, _ noun: String) -> String {
        count > 0 ? " (and \(count) more \(noun)\(count == 1 ? "" : "s"))" : ""
    }

    // MARK: Excerpts

    /// Up to about 30 bytes either side of `offset`, as an excerpt: where a syntax error is.
    static func context(of text: String, at offset: Int) -> String {
        let bytes = Array(text.utf8)
        let isContinuation = { (index: Int) in index < bytes.count && bytes[index] & 0xC0 == 0x80 }
        var start = max(0, min(offset, bytes.count) - 30)
        while isContinuation(start) { start += 1 }
        var end = min(bytes.count, max(offset, 0) + 30)
        while isContinuation(end) { end += 1 }
        let piece = String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
        return (start > 0 ? "…" : "") + excerpt(piece, limit: 80) + (end < bytes.count ? "…" : "")
    }

    private static func escaped(_ character: Character) -> String {
        guard character.unicodeScalars.contains(where: needsEscape) else { return String(character) }
        var result = ""
        for scalar in character.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where needsEscape(scalar): result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }
}

/// How the character at `offset` is shown in a syntax error: `'x'`, `U+000A`, `the end of the text`.
func describeCharacter(in bytes: [UInt8], at offset: Int) -> String {
    guard offset >= 0, offset < bytes.count else { return "the end of the text" }
    let byte = bytes[offset]
    if byte < 0x20 || byte == 0x7F {
        let hex = String(byte, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: 4 - hex.count) + hex
    }
    if byte < 0x80 { return "'\(Character(Unicode.Scalar(byte)))'" }
    let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
    return "'\(String(decoding: bytes[offset..<min(offset + length, bytes.count)], as: UTF8.self))'"
}

// MARK: - JSON scanning

/// A JSON text as the flat list of its values in document order (an object or array is followed by its
/// members), with numbers kept as written. Flat, so that neither walking nor freeing it recurses.
struct JSONDocument: Sendable {
    enum Kind: Sendable, Equatable {
        case object, array, string, number, boolean, null
    }

    struct Value: Sendable {
        var kind: Kind
        /// A string's decoded text; a number's literal as written (`1.0`, `1e3`); `true`/`false`; `null`;
        /// empty for an object or array.
        var text: String
        /// The index of the object or array that holds it; -1 for the top-level value.
        var parent: Int
        /// Its key, in an object.
        var key: String?
        /// Its position, in an array (and in an object, its member's position).
        var position: Int
        /// Its byte range in the source.
        var start: Int
        var end: Int
        /// The index just after its last member (for a scalar: its own index + 1).
        var next: Int
    }

    /// The top-level value is `values[0]`.
    var values: [Value]
    var bytes: [UInt8]

    /// The indices of the members of the object or array at `index`.
    func children(of index: Int) -> [Int] {
        var result: [Int] = []
        var child = index + 1
        while child < values[index].next {
            result.append(child)
            child = values[child].next
        }
        return result
    }

    /// The key path of a value: `user.name`, `items[2].id`, `[0]`; empty for the top-level value.
    func path(of index: Int) -> String {
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
    func source(of index: Int) -> String {
        String(decoding: bytes[values[index].start..<values[index].end], as: UTF8.self)
    }
}

/// A JSON syntax error: the byte offset, and what was expected there.
struct JSONSyntaxError: Error, Sendable, Equatable {
    var offset: Int
    var reason: String
}

/// An iterative RFC 8259 parser (any value at the top level; no extensions: no comments, no trailing commas,
/// no NaN). Refuses nesting deeper than `maximumDepth`, and lone UTF-16 surrogates in `\u` escapes.
struct JSONScanner {
    static let maximumDepth = 512

    private let bytes: [UInt8]
    private var position = 0
    private var values: [JSONDocument.Value] = []
    /// The objects and arrays not closed yet: their index, and how many members they have so far.
    private var open: [(index: Int, members: Int)] = []

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    static func parse(_ text: String) throws(JSONSyntaxError) -> JSONDocument {
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
                throw failure("expected ',' or '\(isObject ? "}" : "]")' in the \(isObject ? "object" : "array") that starts at byte \(values[top.index].start), found \(found)")
            }
        }
    }

    private mutating func append(_ kind: JSONDocument.Kind, text: String, key: String?, start: Int) {
        let parent = open.last?.index ?? -1
        let memberPosition = open.last?.members ?? 0
        if !open.isEmpty { open[open.count - 1].members += 1 }
        values.append(JSONDocument.Value(
            kind: kind, text: text, parent: parent, key: key, position: memberPosition, start: start, end: position, next: values.count + 1
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
            throw failure(first ? "expected a key in double quotes or '}', found \(found)" : "expected a key in double quotes, found \(found)")
        }
        let key = try string()
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
            throw failure("expected ':' after the key \"\(PayloadJudge.excerpt(key, limit: 40))\", found \(describeCharacter(in: bytes, at: position))")
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
                      let low = hex4(at: position + 2), (0xDC00...0xDFFF).contains(low) else {
                    throw failure("lone surrogate \(written): a high surrogate must be followed by a low one (\\uDC00…\\uDFFF)", at: backslash)
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
        guard isDigit(at: position) else { throw failure("expected a digit after '-', found \(describeCharacter(in: bytes, at: position))") }
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
