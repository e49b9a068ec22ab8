import CHiredis

/// One reply from Redis (RESP2), copied out of hiredis' `redisReply` (which is freed at once).
///
/// `RedisConnection.command` throws error replies as `RedisError`; `RedisConnection.pipeline` returns them in
/// place as `.error`. `description` shows a reply the way `redis-cli` does.
public enum RedisReply: Sendable, Hashable {
    /// A status reply such as `OK` or `PONG`.
    case status(String)
    /// An error reply, e.g. `WRONGTYPE Operation against a key holding the wrong kind of value`.
    case error(String)
    /// An integer reply.
    case integer(Int64)
    /// A bulk string: binary-safe bytes.
    case bulk([UInt8])
    /// The null bulk string or null array (a missing key, a `BRPOP` that timed out).
    case null
    /// An array of replies, possibly nested.
    case array([RedisReply])

    /// The text of a status reply or of a bulk string that is valid UTF-8; nil otherwise.
    public var string: String? {
        switch self {
        case .status(let text): text
        case .bulk(let bytes): String(validating: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The value of an integer reply; nil otherwise.
    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The elements of an array reply; nil otherwise (also for `.null`).
    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The bytes of a bulk string, or the UTF-8 bytes of a status reply; nil otherwise.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): bytes
        case .status(let text): Array(text.utf8)
        default: nil
        }
    }

    /// The message of an error reply; nil otherwise.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// Whether this is the null reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension RedisReply: CustomStringConvertible {
    /// The reply as `redis-cli` prints it: `OK`, `(integer) 3`, `"a\x00b"`, `(nil)`, `(error) ERR …`,
    /// `(empty array)`, or numbered elements (`1) "a"`), nested arrays indented under their index.
    public var description: String {
        var out = ""
        format(into: &out, prefix: "")
        if out.last == "\n" { out.removeLast() }
        return out
    }

    // Mirrors cliFormatReplyTTY in redis-cli.c: every reply ends with a newline; an array's first element
    // follows its own index on the same line and later ones are indented by `prefix`.
    private func format(into out: inout String, prefix: String) {
        switch self {
        case .status(let text):
            out += text + "\n"
        case .error(let message):
            out += "(error) " + message + "\n"
        case .integer(let value):
            out += "(integer) \(value)\n"
        case .bulk(let bytes):
            out += Self.quoted(bytes) + "\n"
        case .null:
            out += "(nil)\n"
        case .array(let elements) where elements.isEmpty:
            out += "(empty array)\n"
        case .array(let elements):
            let width = String(elements.count).count
            let nestedPrefix = prefix + String(repeating: " ", count: width + 2)
            for (index, element) in elements.enumerated() {
                let number = String(index + 1)
                out += (index == 0 ? "" : prefix) + String(repeating: " ", count: width - number.count) + number + ") "
                element.format(into: &out, prefix: nestedPrefix)
            }
        }
    }

    /// Quotes bytes like `sdscatrepr`: printable ASCII as is, `\n` `\r` `\t` `\a` `\b` `\\` `\"` escaped,
    /// everything else as `\xHH`.
    static func quoted(_ bytes: [UInt8]) -> String {
        var out = "\""
        out.reserveCapacity(bytes.count + 2)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): out += "\\\\"
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\n"): out += "\\n"
            case UInt8(ascii: "\r"): out += "\\r"
            case UInt8(ascii: "\t"): out += "\\t"
            case 0x07: out += "\\a"
            case 0x08: out += "\\b"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out + "\""
    }
}

// MARK: Conversion from hiredis

extension RedisReply {
    /// Copies a hiredis reply (and, recursively, its elements) into a `RedisReply`. Does not free it.
    ///
    /// Throws `.protocolViolation` for a reply type RESP2 does not have or a structure hiredis never builds
    /// (a string pointer missing for a non-empty string, a missing element).
    static func converting(_ reply: UnsafePointer<redisReply>) throws(RedisError) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: try bytes(of: value), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: try bytes(of: value), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(value.integer))
        case REDIS_REPLY_STRING:
            return .bulk(try bytes(of: value))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            let count = Int(value.elements)
            guard count > 0 else { return .array([]) }
            guard let elements = value.element else {
                throw RedisError(code: .protocolViolation, message: "array reply of \(count) elements has no element vector")
            }
            var converted: [RedisReply] = []
            converted.reserveCapacity(count)
            for index in 0..<count {
                guard let element = elements[index] else {
                    throw RedisError(code: .protocolViolation, message: "array reply element \(index) is missing")
                }
                converted.append(try converting(element))
            }
            return .array(converted)
        default:
            throw RedisError(code: .protocolViolation, message: "unknown reply type \(value.type)")
        }
    }

    private static func bytes(of reply: redisReply) throws(RedisError) -> [UInt8] {
        let count = Int(reply.len)
        guard count > 0 else { return [] }
        guard let start = reply.str else {
            throw RedisError(code: .protocolViolation, message: "string reply of \(count) bytes has no data")
        }
        return Array(UnsafeRawBufferPointer(start: start, count: count))
    }
}
