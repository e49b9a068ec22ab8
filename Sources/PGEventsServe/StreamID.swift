/// A Redis stream entry ID, `milliseconds-sequence` (e.g. `1714566896789-0`), ordered as Redis orders them.
public struct StreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The milliseconds part.
    public var milliseconds: UInt64
    /// The sequence number within the millisecond.
    public var sequence: UInt64

    /// The smallest ID (`0-0`): before every entry.
    public static let zero = StreamID(milliseconds: 0, sequence: 0)

    /// An ID from its two parts.
    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `ms-seq` or a bare `ms` (sequence 0); nil for anything else (signs, spaces, overflow, `$`, `+`).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, Self.isDigits(first), let milliseconds = UInt64(first) else { return nil }
        var sequence: UInt64 = 0
        if parts.count == 2 {
            guard Self.isDigits(parts[1]), let value = UInt64(parts[1]) else { return nil }
            sequence = value
        }
        self.init(milliseconds: milliseconds, sequence: sequence)
    }

    private static func isDigits(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.count <= 20 && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    public var description: String { "\(milliseconds)-\(sequence)" }

    public static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}
