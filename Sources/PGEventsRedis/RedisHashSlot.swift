/// Which of Redis Cluster's 16,384 hash slots a key belongs to, as the cluster computes it: CRC16 (XMODEM) of
/// the key's hash tag, modulo 16,384.
///
/// The hash tag is the part between the first `{` and the first `}` after it, when that part is not empty;
/// otherwise the whole key. Keys that must be used together (in one script) share a tag: `{jobs}` and
/// `pgevents:seen:c:i:{jobs}` are in one slot.
public enum RedisHashSlot {
    /// The number of hash slots in a Redis Cluster.
    public static let count = 16_384

    /// The slot of `key`.
    public static func of(_ key: some StringProtocol) -> Int { of(bytes: Array(key.utf8)) }

    /// The slot of a key given as bytes.
    public static func of(bytes key: [UInt8]) -> Int {
        let tag = hashedPart(of: key)
        return Int(crc16(key[tag]) % UInt16(count))
    }

    /// The part of `key` the cluster hashes: its tag, or all of it.
    public static func hashedPart(of key: some StringProtocol) -> Substring {
        let string = Substring(key)
        let bytes = Array(string.utf8)
        let range = hashedPart(of: bytes)
        let start = string.utf8.index(string.startIndex, offsetBy: range.lowerBound)
        let end = string.utf8.index(string.startIndex, offsetBy: range.upperBound)
        return string[start..<end]
    }

    /// `{part}`: a tag that puts a key in the same slot as every key whose hashed part is `part`, or nil when
    /// `part` contains a `}` (no tag can carry it: such a key shares its slot only by coincidence).
    public static func tag(forHashedPart part: some StringProtocol) -> String? {
        part.contains("}") || part.isEmpty ? nil : "{\(part)}"
    }

    static func hashedPart(of key: [UInt8]) -> Range<Int> {
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return (open + 1)..<close
        }
        return 0..<key.count
    }

    /// CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster uses.
    static func crc16(_ bytes: some Collection<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
