/// What could not be read from the replication stream: which message, at which byte, and why. It means the server
/// and pgevents disagree about the protocol: the processor stops with it (a replay would meet the same message).
public struct WalDecodingError: Error, Sendable, CustomStringConvertible {
    /// The message kind being read (`w`, `k`, or a pgoutput kind such as `I`), as a character.
    public var message: String
    /// The byte offset in the message where reading failed.
    public var offset: Int
    public var reason: String

    public var description: String { "cannot decode replication message '\(message)' at byte \(offset): \(reason)" }
}

/// Reads big-endian integers and C strings from one message, checking every bound: a short or malformed message
/// throws ``WalDecodingError``, never reads past the end.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int
    var message = "?"

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    func error(_ reason: String) -> WalDecodingError {
        WalDecodingError(message: message, offset: offset, reason: reason)
    }

    private mutating func need(_ count: Int, _ what: String) throws(WalDecodingError) {
        guard count >= 0, remaining >= count else { throw error("\(what) needs \(count) bytes, \(remaining) left") }
    }

    mutating func uint8() throws(WalDecodingError) -> UInt8 {
        try need(1, "a byte")
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint16() throws(WalDecodingError) -> UInt16 {
        try need(2, "an Int16")
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func uint32() throws(WalDecodingError) -> UInt32 {
        try need(4, "an Int32")
        var value: UInt32 = 0
        for index in 0..<4 { value = value << 8 | UInt32(bytes[offset + index]) }
        offset += 4
        return value
    }

    mutating func uint64() throws(WalDecodingError) -> UInt64 {
        try need(8, "an Int64")
        var value: UInt64 = 0
        for index in 0..<8 { value = value << 8 | UInt64(bytes[offset + index]) }
        offset += 8
        return value
    }

    mutating func int64() throws(WalDecodingError) -> Int64 { Int64(bitPattern: try uint64()) }

    /// A NUL-terminated string (names of schemas, tables, columns, message prefixes).
    mutating func cString() throws(WalDecodingError) -> String {
        guard let end = bytes[offset...].firstIndex(of: 0) else { throw error("a string without its NUL terminator") }
        defer { offset = end + 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), as: UTF8.self)
    }

    /// `count` raw bytes.
    mutating func take(_ count: Int) throws(WalDecodingError) -> UnsafeRawBufferPointer {
        try need(count, "a value")
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }
}
