// Judging NOTIFY payloads against a channel's spec: size, format (JSON fields and their types, CSV column
// count), forbidden words. Payloads are untrusted text, so nothing here may crash on any input: the JSON and
// CSV scanners (`JSONScanner`, `CSVRecord`, shared with the processor's pipeline in PGEvents) are iterative (no
// recursion, so no stack to exhaust), bound the nesting depth, and report every malformation as a problem.
//
// JSON is scanned by its own small parser rather than Foundation's, because the checks depend on how a value is
// written: `1` is an integer and `1.0` is not, `true` is a boolean and `1` is not (Foundation on Linux bridges
// numbers and booleans through NSNumber), and a 30-digit integer is still an integer.

import PGEvents
import PGEventsSystem

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
            problems.append(
                PayloadProblem(kind: .tooLong, message: "the payload has \(bytes) bytes, the spec allows at most \(maxBytes) (max_bytes)"))
        } else if bytes > serverLimit {
            problems.append(
                PayloadProblem(kind: .tooLong, message: "the payload has \(bytes) bytes, the server allows at most \(serverLimit)"))
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
                problems.append(
                    PayloadProblem(
                        kind: .notJSON,
                        message:
                            "the payload is not valid JSON at byte \(error.offset): \(error.reason); near: \(context(of: payload, at: error.offset))"
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
                problems.append(
                    PayloadProblem(
                        kind: .notCSV,
                        message: "the payload is not one CSV record: \(error.message); near: \(context(of: payload, at: error.offset))"))
                problems += textForbidden(words, in: payload)
                return problems
            }
            if let columns = channel.columns, fields.count != columns.count {
                problems.append(
                    PayloadProblem(
                        kind: .wrongColumnCount,
                        message:
                            "the record has \(fields.count) field\(fields.count == 1 ? "" : "s"), the spec says \(columns.count) (\(columns.joined(separator: ", "))): \(excerpt(payload, limit: 80))"
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
        TextExcerpt.excerpt(text, limit: limit)
    }

    // MARK: JSON

    private static func fieldProblems(_ document: JSONDocument, _ channel: ChannelSpec) -> [PayloadProblem] {
        guard !channel.fields.isEmpty else { return [] }
        let root = document.values[0]
        guard root.kind == .object else {
            return [
                PayloadProblem(
                    kind: .wrongType,
                    message:
                        "the payload is \(describe(0, in: document)), the spec declares fields (\(channel.fields.map(\.name).joined(separator: ", "))) so it must be a JSON object"
                )
            ]
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
                    problems.append(
                        PayloadProblem(
                            kind: .nullNotAllowed,
                            message: "field '\(name)' is null, the spec says \(type) (write \(type.kind.rawValue)? to allow null)"
                        ))
                }
                continue
            }
            if !matches(value, type.kind) {
                problems.append(
                    PayloadProblem(kind: .wrongType, message: "field '\(name)' is \(describe(index, in: document)), the spec says \(type)"))
            }
        }
        return problems
    }

    private static func matches(_ value: JSONDocument.Value, _ kind: JSONFieldType.Kind) -> Bool {
        switch kind {
        case .string: value.kind == .string
        case .integer:
            value.kind == .number
                && !value.text.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
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
                        let place =
                            index == 0 ? "the payload (a JSON string)" : "the value of '\(excerpt(document.path(of: index), limit: 80))'"
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

    private static func csvForbidden(
        _ words: [(word: String, lowercased: String)], in fields: [String], columns: [String]?, payload: String
    ) -> [PayloadProblem] {
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
            problems.append(
                PayloadProblem(
                    kind: .forbiddenWord,
                    message: "\(name) contains the forbidden word '\(word)': \"\(excerpt(fields[index], limit: 80))\""
                        + andMore(matching.count - 1, "field")
                ))
        }
        return problems
    }

    private static func textForbidden(_ words: [(word: String, lowercased: String)], in payload: String) -> [PayloadProblem] {
        guard !words.isEmpty else { return [] }
        let text = payload.lowercased()
        return words.filter { text.contains($0.lowercased) }.map { word, _ in
            PayloadProblem(
                kind: .forbiddenWord, message: "the payload contains the forbidden word '\(word)': \(excerpt(payload, limit: 80))")
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
        TextExcerpt.context(of: text, at: offset)
    }
}
