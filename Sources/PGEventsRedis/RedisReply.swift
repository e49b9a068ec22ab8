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

// MARK: Parsing RESP

extension RedisReply {
    /// Parses `bytes` as a sequence of whole RESP2 replies, with hiredis' reader (the parser every
    /// `RedisConnection` reads the server with), e.g. `+OK\r\n:3\r\n` → `[.status("OK"), .integer(3)]`.
    ///
    /// Throws `.protocolViolation` with hiredis' reason for malformed input (`Protocol error, got "x" as reply
    /// type byte`, `Bad integer value`, nesting deeper than hiredis reads), for a reply type this type does not
    /// have, and when the bytes end inside a reply (the replies before it are not returned either).
    public static func parse(resp bytes: [UInt8]) throws(RedisError) -> [RedisReply] {
        // hiredis allocates an array's element vector as soon as it reads the header, and a header may promise
        // 2^31 − 1 elements (16 GiB of pointers, which take seconds to free again). An element takes 3 bytes at
        // least, so an array of more elements than a third of the input has bytes cannot be complete: the
        // reader's createArray is wrapped to refuse those before allocating.
        let limit = UnsafeMutablePointer<ArrayLimit>.allocate(capacity: 1)
        let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        defer {
            functions.deallocate()
            limit.deallocate()  // plain values: nothing to deinitialize
        }
        guard let reader = redisReaderCreate(), let defaults = reader.pointee.fn else {
            throw RedisError(code: .protocolViolation, message: "hiredis could not allocate a reader")
        }
        defer { redisReaderFree(reader) }  // before the functions it calls are deallocated
        limit.initialize(to: ArrayLimit(input: bytes.count, maximum: bytes.count / 3, defaults: defaults.pointee))
        functions.initialize(to: defaults.pointee)
        functions.pointee.createArray = { task, elements in
            guard let limit = task?.pointee.privdata?.assumingMemoryBound(to: ArrayLimit.self) else { return nil }
            if Int(elements) > limit.pointee.maximum {
                limit.pointee.refused = Int(elements)
                return nil  // hiredis stops with an error
            }
            return limit.pointee.defaults.createArray?(task, elements)
        }
        reader.pointee.fn = functions
        reader.pointee.privdata = UnsafeMutableRawPointer(limit)

        var replies: [RedisReply] = []
        try feed(reader, bytes, limit)
        try drain(reader, into: &replies, limit)
        // hiredis keeps an incomplete reply to itself, waiting for more bytes. To tell a clean end from one
        // inside a reply, a marker reply follows the input: it comes back alone exactly when nothing was
        // pending (a pending reply takes the marker's bytes into itself, or fails on them).
        var tail: [RedisReply] = []
        let incomplete = RedisError(code: .protocolViolation, message: "the bytes end inside a reply (\(replies.count) complete before it)")
        do {
            try feed(reader, Array("+\(endMarker)\r\n".utf8), limit)
            try drain(reader, into: &tail, limit)
        } catch {
            throw incomplete
        }
        guard tail == [.status(endMarker)] else { throw incomplete }
        return replies
    }

    private static let endMarker = "pgevents: end of input"

    /// What `parse(resp:)`'s wrapped createArray needs: the largest array it lets hiredis allocate, hiredis'
    /// own functions, and the element count it refused, if any.
    private struct ArrayLimit {
        var input: Int
        var maximum: Int
        var defaults: redisReplyObjectFunctions
        var refused: Int?
    }

    private static func feed(_ reader: UnsafeMutablePointer<redisReader>, _ bytes: [UInt8], _ limit: UnsafeMutablePointer<ArrayLimit>)
        throws(RedisError)
    {
        let status = bytes.withUnsafeBytes { buffer in
            // hiredis copies the bytes; a zero length is allowed (and ignored).
            redisReaderFeed(reader, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count)
        }
        if status != REDIS_OK { throw readerError(reader, limit) }
    }

    /// Converts and frees every reply the reader has complete.
    private static func drain(
        _ reader: UnsafeMutablePointer<redisReader>, into replies: inout [RedisReply], _ limit: UnsafeMutablePointer<ArrayLimit>
    ) throws(RedisError) {
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw readerError(reader, limit) }
            guard let raw else { return }
            defer { freeReplyObject(raw) }
            replies.append(try converting(raw.assumingMemoryBound(to: redisReply.self)))
        }
    }

    private static func readerError(_ reader: UnsafeMutablePointer<redisReader>, _ limit: UnsafeMutablePointer<ArrayLimit>) -> RedisError {
        if let refused = limit.pointee.refused {
            return RedisError(
                code: .protocolViolation,
                message: "an array header promises \(refused) elements, more than the \(limit.pointee.input) bytes given can hold"
            )
        }
        let reason = withUnsafeBytes(of: reader.pointee.errstr) { buffer in
            String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisError(code: .protocolViolation, message: reason.isEmpty ? "hiredis could not read the reply" : reason)
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
            guard count >= 0 else {
                throw RedisError(code: .protocolViolation, message: "array reply with a negative element count (\(count))")
            }
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
        guard count >= 0 else {
            throw RedisError(code: .protocolViolation, message: "string reply with a negative length (\(count))")
        }
        guard count > 0 else { return [] }
        guard let start = reply.str else {
            throw RedisError(code: .protocolViolation, message: "string reply of \(count) bytes has no data")
        }
        return Array(UnsafeRawBufferPointer(start: start, count: count))
    }
}
