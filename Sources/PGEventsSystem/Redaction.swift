extension String {
    /// This string with every occurrence of `secret`'s UTF-8 bytes replaced by `mask`.
    ///
    /// Matching is by bytes, not by `Character`: `replacing(_:with:)` compares grapheme clusters, so a secret that
    /// starts with a combining mark (which fuses with the character before it) would not be found, and would show
    /// in a log. An empty secret changes nothing.
    public func redacting(_ secret: String, with mask: String = "********") -> String {
        let bytes = Array(utf8)
        let pattern = Array(secret.utf8)
        guard !pattern.isEmpty, bytes.count >= pattern.count else { return self }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        var changed = false
        while index < bytes.count {
            if bytes[index] == pattern[0], index + pattern.count <= bytes.count, bytes[index..<index + pattern.count].elementsEqual(pattern)
            {
                output.append(contentsOf: mask.utf8)
                index += pattern.count
                changed = true
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        // A secret that ends inside a multi-byte scalar (it cannot: both are whole strings) would leave invalid UTF-8;
        // decoding repairs that with U+FFFD rather than failing.
        return changed ? String(decoding: output, as: UTF8.self) : self
    }
}
