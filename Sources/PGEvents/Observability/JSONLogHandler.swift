public import Logging
import Synchronization

import struct Foundation.Date
import class Foundation.ISO8601DateFormatter

#if canImport(Glibc)
    import Glibc
#endif

/// A `LogHandler` that writes one JSON object per line to standard error, for log systems that read JSON
/// (`pgevents process --log-format json`):
///
/// ```json
/// {"time":"2026-12-02T11:50:00.123Z","level":"info","label":"pgevents.process","message":"leader","consumer":"tasks"}
/// ```
///
/// Every metadata value is a field of its own (a nested dictionary an object, a list an array, anything else a
/// string); a metadata key that would replace `time`, `level`, `label` or `message` gets a `meta_` prefix. pgevents
/// never puts a secret in a message or in metadata: connection settings are logged with their passwords masked.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public let label: String
    private let write: @Sendable (String) -> Void

    /// Writes to standard error, a line at a time.
    public init(label: String) {
        self.init(label: label, write: JSONLogHandler.standardError)
    }

    /// Writes each line (without its newline) to `write`: for tests, or another destination.
    public init(label: String, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "{"
        Self.append(key: "time", value: .string(Self.timestamp()), to: &line, first: true)
        Self.append(key: "level", value: .string(event.level.rawValue), to: &line)
        Self.append(key: "label", value: .string(label), to: &line)
        Self.append(key: "message", value: .string(event.message.description), to: &line)
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() {
            let name = ["time", "level", "label", "message"].contains(key) ? "meta_" + key : key
            Self.append(key: name, value: merged[key]!, to: &line)
        }
        line += "}"
        write(line)
    }

    private static func append(key: String, value: Logger.Metadata.Value, to line: inout String, first: Bool = false) {
        if !first { line += "," }
        quote(key, into: &line)
        line += ":"
        append(value, to: &line)
    }

    private static func append(_ value: Logger.Metadata.Value, to line: inout String) {
        switch value {
        case .string(let text):
            quote(text, into: &line)
        case .stringConvertible(let convertible):
            quote(convertible.description, into: &line)
        case .array(let values):
            line += "["
            for (index, element) in values.enumerated() {
                if index > 0 { line += "," }
                append(element, to: &line)
            }
            line += "]"
        case .dictionary(let values):
            line += "{"
            for (index, key) in values.keys.sorted().enumerated() {
                append(key: key, value: values[key]!, to: &line, first: index == 0)
            }
            line += "}"
        }
    }

    /// `text` as a JSON string, escaped as every JSON text pgevents writes (`EventValue`).
    static func quote(_ text: String, into line: inout String) {
        line += EventValue.string(text).jsonText
    }

    private static let formatter = Mutex<ISO8601DateFormatter>(
        {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter
        }())

    private static func timestamp() -> String {
        formatter.withLock { $0.string(from: Date()) }
    }

    /// One `write(2)` per line, so that lines from several threads never interleave.
    @Sendable private static func standardError(_ line: String) {
        var bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written <= 0 { return }
            offset += written
        }
    }
}
