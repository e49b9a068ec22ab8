import CLibPQ
import PGEventsSystem

/// Where and how to connect: the parsed form of a `postgres://` URL or a libpq conninfo string.
///
/// Parsing is libpq's own (`PQconninfoParse`), so every keyword and URL form libpq accepts works here.
/// `description` masks the password; nothing in this module logs or throws it.
public struct PostgresConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The connection keywords, in libpq's order (`host`, `port`, `user`, `password`, `dbname`, …).
    public private(set) var parameters: [Parameter]

    /// One conninfo keyword and its value.
    public struct Parameter: Sendable, Hashable {
        public var keyword: String
        public var value: String
    }

    /// Parses a `postgres://` / `postgresql://` URL or a `key=value` conninfo string.
    public init(_ urlOrConninfo: String) throws(PostgresError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(urlOrConninfo, &errorMessage) else {
            let raw = errorMessage.map { String(cString: $0) } ?? "out of memory"
            if let errorMessage { PQfreemem(errorMessage) }
            throw PostgresError(
                code: .invalidConfiguration,
                message: "invalid connection string: \(Self.redact(raw.trimmed(), secretsOf: urlOrConninfo))",
                function: "PQconninfoParse")
        }
        defer { PQconninfoFree(options) }
        var parameters: [Parameter] = []
        var cursor = options
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                parameters.append(Parameter(keyword: String(cString: keyword), value: String(cString: value)))
            }
            cursor += 1
        }
        self.parameters = parameters
        try validatePorts(source: urlOrConninfo)
    }

    /// libpq checks ports only when connecting; check them now, with a message that names the value.
    private func validatePorts(source: String) throws(PostgresError) {
        guard let ports = self["port"] else { return }
        for port in ports.split(separator: ",", omittingEmptySubsequences: false) {
            if port.isEmpty { continue }  // libpq's default
            guard let number = Int(port), (1...65535).contains(number) else {
                throw PostgresError(
                    code: .invalidConfiguration,
                    message:
                        "invalid connection string: port '\(Self.redact(String(port), secretsOf: source))' is not a number from 1 to 65535")
            }
        }
    }

    /// Builds a configuration from keywords directly (no parsing).
    public init(parameters: [String: String]) {
        self.parameters = parameters.sorted { $0.key < $1.key }.map { Parameter(keyword: $0.key, value: $0.value) }
    }

    /// The value of a conninfo keyword, or nil. Setting nil removes it.
    public subscript(keyword: String) -> String? {
        get { parameters.first { $0.keyword == keyword }?.value }
        set {
            if let index = parameters.firstIndex(where: { $0.keyword == keyword }) {
                if let newValue { parameters[index].value = newValue } else { parameters.remove(at: index) }
            } else if let newValue {
                parameters.append(Parameter(keyword: keyword, value: newValue))
            }
        }
    }

    /// The conninfo string including the password: pass it to libpq or a child process, never to a log.
    public var conninfoIncludingSecrets: String {
        parameters.map { "\($0.keyword)=\(Self.quoteConninfoValue($0.value))" }.joined(separator: " ")
    }

    /// A conninfo string with the password masked.
    public var description: String {
        parameters.map {
            let value = Self.secretKeywords.contains($0.keyword) ? "********" : Self.quoteConninfoValue($0.value)
            return "\($0.keyword)=\(value)"
        }.joined(separator: " ")
    }

    public var debugDescription: String { "PostgresConfiguration(\(description))" }

    static let secretKeywords: Set<String> = ["password", "sslpassword"]

    /// Quotes a conninfo value when it needs it (`'` and `\` escaped, wrapped in single quotes).
    static func quoteConninfoValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "'" || $0 == "\\" || $0 == "=" || $0.isNewline }
        guard needsQuotes else { return value }
        var out = "'"
        for character in value {
            if character == "'" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out + "'"
    }

    /// Replaces anything in `message` that looks like a password taken from `source` with `********`.
    ///
    /// libpq's parse errors quote fragments of the input; when the input is malformed we cannot know which
    /// part is the password, so every candidate (URL userinfo after `:`, `password=` values) is masked.
    static func redact(_ message: String, secretsOf source: String) -> String {
        // Scalar by scalar, not Character by Character: a combining mark after `:`, `=` or `'` fuses with it into one
        // Character, which would hide the delimiter (and the password after it).
        let scalars = Array(source.unicodeScalars)
        func text(_ range: Range<Int>) -> String { String(String.UnicodeScalarView(scalars[range])) }
        func find(_ pattern: String, from start: Int) -> Int? {
            let needle = Array(pattern.unicodeScalars)
            guard scalars.count >= needle.count, start <= scalars.count - needle.count else { return nil }
            return (start...(scalars.count - needle.count)).first { scalars[$0..<$0 + needle.count].elementsEqual(needle) }
        }
        var secrets: [String] = []
        // URL userinfo: scheme://user:secret@host, and ?password=secret&…
        if let schemeEnd = find("://", from: 0) {
            let rest = schemeEnd + 3
            if let at = scalars[rest...].lastIndex(of: "@"), let colon = scalars[rest..<at].firstIndex(of: ":") {
                secrets.append(text(colon + 1..<at))
            }
            var search = rest
            while let found = find("password=", from: search) {
                let start = found + "password=".unicodeScalars.count
                let end = scalars[start...].firstIndex { $0 == "&" || $0 == "#" } ?? scalars.count
                if found > rest, ["?", "&"].contains(scalars[found - 1]) { secrets.append(text(start..<end)) }
                search = start
            }
        }
        // conninfo: password=secret or password = 'secret'
        var search = 0
        while let found = find("password", from: search) {
            var position = found + "password".unicodeScalars.count
            search = position
            while position < scalars.count, scalars[position] == " " { position += 1 }
            guard position < scalars.count, scalars[position] == "=" else { continue }
            position += 1
            while position < scalars.count, scalars[position] == " " { position += 1 }
            let start: Int
            let end: Int
            if position < scalars.count, scalars[position] == "'" {
                start = position + 1
                end = scalars[start...].firstIndex(of: "'") ?? scalars.count
            } else {
                start = position
                end = scalars[start...].firstIndex(of: " ") ?? scalars.count
            }
            if start < end { secrets.append(text(start..<end)) }
            search = end
        }
        var redacted = message
        for secret in secrets.sorted(by: { $0.utf8.count > $1.utf8.count }) where !secret.isEmpty {
            redacted = redacted.redacting(secret)
        }
        return redacted
    }
}
