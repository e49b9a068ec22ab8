// What every parser that reads outside input must do with any input, written once for both fuzzers: the
// libFuzzer targets (Benchmarks/Fuzz/, `ci/fuzz`) and the seeded random-input tests (`swift test --filter Fuzz`).
//
// An input is either accepted or rejected with the parser's documented error, whose message is clear: not
// empty, located where the parser promises a location (`file:line:column:` for YAML), on one line where it
// quotes the input. A parser that accepts must return something self-consistent (a CSV record reads back from
// its own quoting, RESP replies read back from their own encoding, each SQL statement is the text at its
// position). Anything else — an unexpected error type, a broken promise, a crash in the parser or in what the
// parser feeds (a configuration whose durations cannot be built) — is a finding.
import Foundation
import PGEvents
import PGEventsCheck
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis

/// A broken promise of a parser: a finding.
public struct FuzzViolation: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// What a parser made of one input.
public enum FuzzOutcome: Sendable, Equatable {
    /// Parsed (for a payload: judged without a problem).
    case accepted
    /// Refused, with this (checked) message.
    case rejected(String)
}

/// The parsers that read input from outside, one fuzz target each. The raw value names the seed corpus
/// (`Benchmarks/Fuzz/corpus/<raw value>/`) and the libFuzzer executable (`pgevents-fuzz-<raw value>`).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// JSON payloads: `PayloadJudge.problems(in:for:)` on a json channel, and `detectFormat`.
    case json
    /// CSV payloads: `CSVRecord.parse`, and `PayloadJudge.problems(in:for:)` on a csv channel.
    case csv
    /// Text payloads: `PayloadJudge.problems(in:for:)` on a text channel (size, forbidden words), `excerpt`.
    case text
    /// The check spec: `CheckSpec(yaml:file:baseDirectory:)`.
    case spec
    /// The processor configuration: `ProcessorConfiguration(yaml:file:)`, and the listener and backoff built from it.
    case config
    /// Redis replies: hiredis' RESP reader and `RedisReply`'s conversion, through `RedisReply.parse(resp:)`.
    case resp
    /// Migration files: `SQLScript(_:)`.
    case sql

    /// The file name YAML targets report errors with.
    public static let yamlFile = "fuzz.yml"

    /// Runs the parser on `bytes` and checks its promises; throws the first broken one.
    public func check(_ bytes: [UInt8]) throws(FuzzViolation) -> FuzzOutcome {
        switch self {
        case .json: try Self.checkJSON(bytes)
        case .csv: try Self.checkCSV(bytes)
        case .text: try Self.checkText(bytes)
        case .spec: try Self.checkSpec(bytes)
        case .config: try Self.checkConfig(bytes)
        case .resp: try Self.checkRESP(bytes)
        case .sql: try Self.checkSQL(bytes)
        }
    }
}

// MARK: Payloads

extension FuzzTarget {
    static let forbidden = ["secret", "Straße", "ǅ"]

    static let jsonChannel = ChannelSpec(
        name: "fuzz", format: .json,
        fields: [
            ("id", JSONFieldType(kind: .integer)), ("name", JSONFieldType(kind: .string, nullable: true)),
            ("n", JSONFieldType(kind: .number)), ("ok", JSONFieldType(kind: .boolean)),
            ("o", JSONFieldType(kind: .object)), ("a", JSONFieldType(kind: .array, nullable: true)),
        ],
        forbid: forbidden
    )
    static let csvChannel = ChannelSpec(name: "fuzz", format: .csv, columns: ["op", "table", "key"], maxBytes: 4000, forbid: forbidden)
    static let textChannel = ChannelSpec(name: "fuzz", format: .text, maxBytes: 200, forbid: forbidden)

    private static func checkJSON(_ bytes: [UInt8]) throws(FuzzViolation) -> FuzzOutcome {
        let payload = String(decoding: bytes, as: UTF8.self)
        let typed = PayloadJudge.problems(in: payload, for: jsonChannel)
        try checkProblems(typed, allowed: [.empty, .tooLong, .notJSON, .missingField, .wrongType, .nullNotAllowed, .forbiddenWord])
        let plain = PayloadJudge.problems(in: payload, for: ChannelSpec(name: "fuzz", format: .json))
        try checkProblems(plain, allowed: [.empty, .tooLong, .notJSON])
        let valid = !plain.contains { $0.kind == .notJSON || $0.kind == .empty }
        if valid == typed.contains(where: { $0.kind == .notJSON || $0.kind == .empty }) {
            throw FuzzViolation("the judge calls the payload valid JSON for one channel and not for another")
        }
        for problem in plain where problem.kind == .notJSON && !problem.message.hasPrefix("the payload is not valid JSON at byte ") {
            throw FuzzViolation("a JSON syntax error without its byte offset: \(problem.message)")
        }
        // detectFormat reads the same JSON: an object or array is json, anything invalid is not.
        let format = PayloadJudge.detectFormat(payload)
        let first = payload.utf8.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        if valid, first == UInt8(ascii: "{") || first == UInt8(ascii: "["), format != .json {
            throw FuzzViolation("a valid JSON \(first == UInt8(ascii: "{") ? "object" : "array") detected as \(format)")
        }
        if !valid, format == .json {
            throw FuzzViolation("invalid JSON detected as json")
        }
        return typed.first.map { .rejected($0.message) } ?? .accepted
    }

    private static func checkCSV(_ bytes: [UInt8]) throws(FuzzViolation) -> FuzzOutcome {
        let text = String(decoding: bytes, as: UTF8.self)
        let problems = PayloadJudge.problems(in: text, for: csvChannel)
        try checkProblems(problems, allowed: [.empty, .tooLong, .notCSV, .wrongColumnCount, .forbiddenWord])
        let fields: [String]
        do {
            fields = try CSVRecord.parse(text)
        } catch {
            if !(0...text.utf8.count).contains(error.offset) {
                throw FuzzViolation("CSV error offset \(error.offset) outside the record's \(text.utf8.count) bytes")
            }
            try checkMessage(error.message, what: "CSV error")
            if !text.isEmpty, !problems.contains(where: { $0.kind == .notCSV }) {
                throw FuzzViolation("CSVRecord.parse refuses the record (\(error.message)) but the judge does not say notCSV")
            }
            if PayloadJudge.detectFormat(text) == .csv {
                throw FuzzViolation("a malformed CSV record (\(error.message)) detected as csv")
            }
            return .rejected(error.message)
        }
        if fields.isEmpty { throw FuzzViolation("CSVRecord.parse returned no field at all") }
        if problems.contains(where: { $0.kind == .notCSV }) {
            throw FuzzViolation("CSVRecord.parse reads the record but the judge says notCSV")
        }
        // Written back as RFC 4180 (every field quoted, quotes doubled byte by byte: a quote followed by a
        // combining mark is one Character) the record reads back the same.
        let written = fields.map { field in
            "\"" + String(decoding: field.utf8.flatMap { $0 == UInt8(ascii: "\"") ? [$0, $0] : [$0] }, as: UTF8.self) + "\""
        }.joined(separator: ",")
        let reread: [String]
        do {
            reread = try CSVRecord.parse(written)
        } catch {
            throw FuzzViolation("the record's own quoting does not read back: \(error.message)")
        }
        if reread != fields { throw FuzzViolation("the record's own quoting reads back as other fields") }
        // Without any quote, a record is its text split at commas (less one final line break), in bytes: a
        // comma followed by a combining mark is one Character, but still a separator.
        if !text.utf8.contains(UInt8(ascii: "\"")) {
            var body = Array(text.utf8)[...]
            if body.last == 0x0A { body = body.dropLast() }
            if body.last == 0x0D, text.utf8.last == 0x0A { body = body.dropLast() }
            let split = body.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map {
                String(decoding: $0, as: UTF8.self)
            }
            if split != fields { throw FuzzViolation("an unquoted record is not its text split at commas") }
        }
        return problems.first.map { .rejected($0.message) } ?? .accepted
    }

    private static func checkText(_ bytes: [UInt8]) throws(FuzzViolation) -> FuzzOutcome {
        let text = String(decoding: bytes, as: UTF8.self)
        let problems = PayloadJudge.problems(in: text, for: textChannel)
        try checkProblems(problems, allowed: [.tooLong, .forbiddenWord])
        // A forbidden word is reported exactly when the payload contains it, ignoring case.
        let lowercased = text.lowercased()
        for word in forbidden {
            let reported = problems.contains {
                $0.kind == .forbiddenWord && $0.message.hasPrefix("the payload contains the forbidden word '\(word)'")
            }
            if reported != lowercased.contains(word.lowercased()) {
                throw FuzzViolation("the forbidden word '\(word)' is \(reported ? "reported but not there" : "there but not reported")")
            }
        }
        if problems.contains(where: { $0.kind == .tooLong }) != (text.utf8.count > 200) {
            throw FuzzViolation("max_bytes 200 misjudged for \(text.utf8.count) bytes")
        }
        for limit in [0, 1, 7, 80] {
            let excerpt = PayloadJudge.excerpt(text, limit: limit)
            if excerpt.count > limit + 1 { throw FuzzViolation("excerpt(limit: \(limit)) has \(excerpt.count) characters") }
            try checkMessage(excerpt, what: "excerpt", allowEmpty: true)
        }
        _ = PayloadJudge.detectFormat(text)
        return problems.first.map { .rejected($0.message) } ?? .accepted
    }

    private static func checkProblems(_ problems: [PayloadProblem], allowed: Set<PayloadProblem.Kind>) throws(FuzzViolation) {
        for problem in problems {
            if !allowed.contains(problem.kind) { throw FuzzViolation("unexpected problem kind \(problem.kind): \(problem.message)") }
            try checkMessage(problem.message, what: "\(problem.kind) problem")
        }
    }
}

// MARK: YAML files

extension FuzzTarget {
    private static func checkSpec(_ bytes: [UInt8]) throws(FuzzViolation) -> FuzzOutcome {
        let yaml = String(decoding: bytes, as: UTF8.self)
        do {
            let spec = try CheckSpec(yaml: yaml, file: yamlFile, baseDirectory: "/fuzz")
            if !spec.migrations.hasPrefix("/") { throw FuzzViolation("the migrations directory is not absolute: \(spec.migrations)") }
            for (name, channel) in spec.channels where !(1...63).contains(name.utf8.count) || channel.name != name {
                throw FuzzViolation("channel name '\(name)' accepted")
            }
            for channel in spec.channels.values {
                if let maxBytes = channel.maxBytes, !(1...PayloadJudge.serverLimit).contains(maxBytes) {
                    throw FuzzViolation("max_bytes \(maxBytes) accepted")
                }
                if channel.forbid.contains("") { throw FuzzViolation("an empty forbidden word accepted") }
                if channel.columns?.isEmpty == true { throw FuzzViolation("an empty column list accepted") }
                if channel.format != .json, !channel.fields.isEmpty { throw FuzzViolation("fields accepted for format \(channel.format)") }
                if Set(channel.fields.map(\.name)).count != channel.fields.count {
                    throw FuzzViolation("a field named twice accepted: \(channel.fields.map(\.name))")
                }
            }
            // PostgreSQL names cannot hold a NUL byte: the spec must refuse one, not the server later.
            var names = Array(spec.channels.keys)
            for table in spec.tables.values {
                names += [table.table.schema, table.table.name] + Array(table.notify.values) + Array(table.values.keys)
                if let trigger = table.trigger { names.append(trigger) }
                if let publication = table.publication {
                    names += [publication.name] + (publication.columns ?? []) + (publication.rowFilter.map { [$0] } ?? [])
                    if publication.operations.isEmpty || publication.columns?.isEmpty == true
                        || !(1...63).contains(publication.name.utf8.count)
                    {
                        throw FuzzViolation("an empty or unnamed publication section accepted")
                    }
                }
            }
            if let replication = spec.replication {
                names += [replication.publication] + replication.tables.flatMap { [$0.schema, $0.name] }
            }
            if let name = names.first(where: { $0.utf8.contains(0) }) {
                throw FuzzViolation("a name with a NUL byte accepted: \(name.debugDescription)")
            }
            for version in spec.postgres where !(10...99).contains(version) {
                throw FuzzViolation("PostgreSQL version \(version) accepted")
            }
            if let replication = spec.replication, replication.tables.isEmpty || !replication.subscriberMigrations.hasPrefix("/") {
                throw FuzzViolation("an incomplete replication section accepted")
            }
            return .accepted
        } catch let error as HarnessError {
            if error.code != .invalidInput { throw FuzzViolation("error code \(error.code), expected invalidInput: \(error.message)") }
            try checkYAMLMessage(error.message, yaml: yaml)
            return .rejected(error.message)
        } catch let violation as FuzzViolation {
            throw violation
        } catch {
            throw FuzzViolation("CheckSpec threw \(type(of: error)), expected HarnessError: \(error)")
        }
    }

    private static func checkConfig(_ bytes: [UInt8]) throws(FuzzViolation) -> FuzzOutcome {
        let yaml = String(decoding: bytes, as: UTF8.self)
        let configuration: ProcessorConfiguration
        do {
            configuration = try ProcessorConfiguration(yaml: yaml, file: yamlFile)
        } catch let error as ProcessorError {
            if error.code != .invalidConfiguration {
                throw FuzzViolation("error code \(error.code), expected invalidConfiguration: \(error.message)")
            }
            try checkYAMLMessage(error.message, yaml: yaml)
            return .rejected(error.message)
        } catch {
            throw FuzzViolation("ProcessorConfiguration threw \(type(of: error)), expected ProcessorError: \(error)")
        }
        // What the processor builds from an accepted file must be buildable and valid: the processors key a
        // dictionary by channel name, the listener validates its channels and durations.
        let names = configuration.channels.map(\.name)
        if names.isEmpty || Set(names).count != names.count { throw FuzzViolation("channels accepted: \(names)") }
        if configuration.source == .table, configuration.table == nil || names.count != 1 {
            throw FuzzViolation("source: table accepted without its table or with \(names.count) channels")
        }
        if configuration.source != .table, configuration.table != nil {
            throw FuzzViolation("a table accepted with source \(configuration.source)")
        }
        let texts =
            [configuration.consumer] + [configuration.table?.schema, configuration.table?.name, configuration.table?.key].compactMap { $0 }
        if let text = texts.first(where: { $0.utf8.contains(0) }) {
            throw FuzzViolation("a PostgreSQL name with a NUL byte accepted: \(text.debugDescription)")
        }
        let seconds = [
            configuration.catchUpInterval, configuration.heartbeatInterval, configuration.heartbeatTimeout,
            configuration.retryInitial, configuration.retryMaximum,
        ]
        if seconds.contains(where: { !$0.isFinite || $0 <= 0 }) || !configuration.pruneInterval.isFinite || configuration.pruneInterval < 0
        {
            throw FuzzViolation("a duration accepted: \(seconds), prune \(configuration.pruneInterval)")
        }
        let listener = configuration.listenerConfiguration(postgres: PostgresConfiguration(parameters: [:]))
        do {
            try listener.validate()
        } catch {
            throw FuzzViolation("the listener built from an accepted file is invalid: \(error.message)")
        }
        let backoff = Backoff(configuration.backoff)
        if backoff.baseDelay(forAttempt: 1) <= .zero || backoff.baseDelay(forAttempt: 100) < backoff.baseDelay(forAttempt: 1) {
            throw FuzzViolation("the backoff built from an accepted file does not grow from a positive delay")
        }
        return .accepted
    }

    /// A YAML error names the file (a syntax error also its line and column, within the text), on one line:
    /// keys and values it quotes from the file are shown escaped.
    private static func checkYAMLMessage(_ message: String, yaml: String) throws(FuzzViolation) {
        try checkMessage(message, what: "error")
        guard message.hasPrefix(yamlFile + ":") else { throw FuzzViolation("the error does not start with '\(yamlFile):': \(message)") }
        let rest = message.dropFirst(yamlFile.count + 1)
        let numbers = rest.prefix { $0.isNumber || $0 == ":" }
        let location = numbers.split(separator: ":", omittingEmptySubsequences: false).prefix(2).compactMap { Int($0) }
        // libyaml also breaks lines at \r, U+0085, U+2028 and U+2029: count generously.
        let lines = 1 + yaml.unicodeScalars.count { ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains($0) }
        if location.count == 2, !(1...lines + 1).contains(location[0]) || location[1] < 1 {
            throw FuzzViolation("the error's location \(location[0]):\(location[1]) is outside the text's \(lines) lines: \(message)")
        }
        if message.contains("invalid YAML") {
            guard location.count == 2, rest.dropFirst(numbers.count).hasPrefix(" invalid YAML: ") else {
                throw FuzzViolation("a YAML syntax error without 'file:line:column: ': \(message)")
            }
        }
    }
}

// MARK: RESP

extension FuzzTarget {
    private static func checkRESP(_ bytes: [UInt8]) throws(FuzzViolation) -> FuzzOutcome {
        let replies: [RedisReply]
        do {
            replies = try RedisReply.parse(resp: bytes)
        } catch {
            if error.code != .protocolViolation {
                throw FuzzViolation("error code \(error.code), expected protocolViolation: \(error.message)")
            }
            try checkMessage(error.message, what: "RESP error")
            return .rejected(error.message)
        }
        // The replies, written back in RESP, read back the same.
        var written: [UInt8] = []
        for reply in replies { encode(reply, into: &written) }
        let reread: [RedisReply]
        do {
            reread = try RedisReply.parse(resp: written)
        } catch {
            throw FuzzViolation("the replies' own encoding does not read back: \(error.message)")
        }
        if reread != replies { throw FuzzViolation("the replies' own encoding reads back as other replies") }
        for reply in replies { _ = reply.description }
        return .accepted
    }

    /// RESP2, as a server writes it.
    static func encode(_ reply: RedisReply, into out: inout [UInt8]) {
        switch reply {
        case .status(let text): out += Array("+\(text)\r\n".utf8)
        case .error(let text): out += Array("-\(text)\r\n".utf8)
        case .integer(let value): out += Array(":\(value)\r\n".utf8)
        case .bulk(let bytes): out += Array("$\(bytes.count)\r\n".utf8) + bytes + [0x0D, 0x0A]
        case .null: out += Array("$-1\r\n".utf8)
        case .array(let elements):
            out += Array("*\(elements.count)\r\n".utf8)
            for element in elements { encode(element, into: &out) }
        }
    }
}

// MARK: SQL

extension FuzzTarget {
    private static func checkSQL(_ bytes: [UInt8]) throws(FuzzViolation) -> FuzzOutcome {
        let text = String(decoding: bytes, as: UTF8.self)
        // SQLScript counts lines and columns in code points, lines ending at "\n" (as PostgreSQL does).
        let scalars = Array(text.unicodeScalars)
        var lineStarts = [0]
        for (index, scalar) in scalars.enumerated() where scalar == "\n" { lineStarts.append(index + 1) }
        func scalarIndex(line: Int, column: Int) -> Int? {
            guard (1...lineStarts.count).contains(line), column >= 1 else { return nil }
            let index = lineStarts[line - 1] + column - 1
            let lineEnd = line < lineStarts.count ? lineStarts[line] : scalars.count + 1
            return index < lineEnd ? index : nil
        }

        let script: SQLScript
        do {
            script = try SQLScript(text)
        } catch {
            try checkMessage(error.message, what: "SQL error")
            if scalarIndex(line: error.line, column: error.column) == nil {
                throw FuzzViolation("SQL error at \(error.line):\(error.column), outside the text: \(error.message)")
            }
            return .rejected(error.message)
        }
        var previousEnd = 0
        for statement in script.statements {
            guard let start = scalarIndex(line: statement.line, column: statement.column), start < scalars.count else {
                throw FuzzViolation("a statement at \(statement.line):\(statement.column), outside the text")
            }
            if statement.text.isEmpty || statement.text.first!.isWhitespace || statement.text.last!.isWhitespace {
                throw FuzzViolation("the statement at \(statement.line):\(statement.column) is empty or not trimmed")
            }
            let textScalars = Array(statement.text.unicodeScalars)
            if start < previousEnd { throw FuzzViolation("the statement at \(statement.line):\(statement.column) overlaps the one before") }
            guard start + textScalars.count <= scalars.count, scalars[start..<start + textScalars.count].elementsEqual(textScalars) else {
                throw FuzzViolation("the statement at \(statement.line):\(statement.column) is not the text there")
            }
            previousEnd = start + textScalars.count
            // location(ofCharacter:) maps a position in the statement (as PostgreSQL reports one) into the file.
            for position in Set([1, (textScalars.count + 1) / 2, textScalars.count]) {
                let location = statement.location(ofCharacter: position)
                let index = start + position - 1
                let line = lineStarts.lastIndex { $0 <= index }! + 1
                let column = index - lineStarts[line - 1] + 1
                if location != (line, column) {
                    throw FuzzViolation(
                        "character \(position) of the statement at \(statement.line):\(statement.column) is at \(line):\(column), location(ofCharacter:) says \(location.line):\(location.column)"
                    )
                }
            }
        }
        return .accepted
    }
}

// MARK: Messages

extension FuzzTarget {
    /// A message is not empty and not only whitespace; with `singleLine`, it has no control character and no
    /// line or paragraph separator (text from the input must be shown escaped).
    static func checkMessage(_ message: String, what: String, singleLine: Bool = true, allowEmpty: Bool = false) throws(FuzzViolation) {
        if !allowEmpty, message.allSatisfy(\.isWhitespace) { throw FuzzViolation("an empty \(what) message") }
        guard singleLine else { return }
        if let scalar = message.unicodeScalars.first(where: {
            switch $0.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator: true
            default: false
            }
        }) {
            throw FuzzViolation(
                "the \(what) message has the raw character U+\(String(scalar.value, radix: 16, uppercase: true)): \(message.debugDescription)"
            )
        }
    }
}

// MARK: libFuzzer

extension FuzzTarget {
    /// One libFuzzer input: checked, and a broken promise stops the process (libFuzzer saves the input as a
    /// crash). Returns 0, as `LLVMFuzzerTestOneInput` must.
    public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        do {
            _ = try check(bytes)
        } catch {
            fatalError("pgevents-fuzz-\(rawValue): \(error)")
        }
        return 0
    }
}
