import PGEventsSystem

/// Why a payload could not be decoded, in words for a log line: `not valid JSON at byte 17: …; near: …`.
public struct DecodeFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// Turns a payload's text into an ``EventValue`` as the channel's `decode:` says. Never crashes, whatever the text
/// (the scanners are linear and iterative, and JSON nesting is bounded); every malformation is a ``DecodeFailure``.
public struct PayloadDecoder: Sendable, Hashable {
    public enum Format: Sendable, Hashable {
        /// Any JSON value (an object is the usual case).
        case json
        /// One CSV record (RFC 4180) of exactly these columns, decoded as an object column → text.
        case csv(columns: [String])
        /// The payload as it is, a string.
        case text
    }

    public var format: Format

    public init(format: Format) {
        self.format = format
    }

    public func decode(_ payload: String) -> Result<EventValue, DecodeFailure> {
        switch format {
        case .json:
            if payload.isEmpty { return .failure(DecodeFailure(reason: "not valid JSON: the payload is empty")) }
            do {
                return .success(try EventValue(json: payload))
            } catch {
                return .failure(
                    DecodeFailure(
                        reason:
                            "not valid JSON at byte \(error.offset): \(error.reason); near: \(TextExcerpt.context(of: payload, at: error.offset))"
                    ))
            }
        case .csv(let columns):
            let fields: [String]
            do {
                fields = try CSVRecord.parse(payload)
            } catch {
                return .failure(
                    DecodeFailure(
                        reason: "not one CSV record: \(error.message); near: \(TextExcerpt.context(of: payload, at: error.offset))"
                    ))
            }
            guard fields.count == columns.count else {
                return .failure(
                    DecodeFailure(
                        reason:
                            "CSV record has \(fields.count) field\(fields.count == 1 ? "" : "s"), expected \(columns.count) (\(columns.joined(separator: ", "))): \(TextExcerpt.excerpt(payload, limit: 80))"
                    ))
            }
            return .success(.object(EventObject(zip(columns, fields.map(EventValue.string)))))
        case .text:
            return .success(.string(payload))
        }
    }
}
