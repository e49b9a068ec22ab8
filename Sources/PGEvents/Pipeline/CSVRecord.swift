// One CSV record (RFC 4180), as NOTIFY payloads write them (`OP,SCHEMA,TABLE,KEY,VALUE`). Payloads are untrusted
// text, so nothing here may crash on any input: the scanner is a single linear pass over the UTF-8 bytes and
// reports every malformation as an error with its byte offset.

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
                            message:
                                "a quote inside an unquoted field at byte \(position) (quote the whole field and double its quotes: \"a\"\"b\")"
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
                    message:
                        "a line break outside quotes at byte \(position): a payload is one record (quote a field that contains line breaks)"
                )
            default:
                throw CSVError(
                    offset: position,
                    message:
                        "unexpected \(describeCharacter(in: bytes, at: position)) after a closing quote at byte \(position) (expected ',' or the end of the record)"
                )
            }
        }
    }
}
