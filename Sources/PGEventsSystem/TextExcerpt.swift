/// Short, one-line excerpts of untrusted text for messages: where a payload is malformed, what a field holds.
public enum TextExcerpt {
    /// `text` cut to `limit` characters (then ending in `…`), with control characters shown escaped (`\n`,
    /// `\t`, `\u{1B}`) so that the excerpt stays on one line. An escape counts as the characters it shows.
    public static func excerpt(_ text: String, limit: Int = 120) -> String {
        var result = ""
        var length = 0
        for character in text {
            let shown = escaped(character)
            if length + shown.count > limit { return result + "…" }
            result += shown
            length += shown.count
        }
        return result
    }

    /// Up to about 30 bytes either side of the byte `offset` of `text`, as an excerpt: where a syntax error is.
    /// Cut at character boundaries of the UTF-8 text, with `…` where text is left out.
    public static func context(of text: String, at offset: Int) -> String {
        let bytes = Array(text.utf8)
        let isContinuation = { (index: Int) in index < bytes.count && bytes[index] & 0xC0 == 0x80 }
        var start = max(0, min(offset, bytes.count) - 30)
        while isContinuation(start) { start += 1 }
        var end = min(bytes.count, max(offset, 0) + 30)
        while isContinuation(end) { end += 1 }
        let piece = String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
        return (start > 0 ? "…" : "") + excerpt(piece, limit: 80) + (end < bytes.count ? "…" : "")
    }

    private static func escaped(_ character: Character) -> String {
        escaped(String(character))
    }

    /// `text` with control characters and line or paragraph separators shown escaped (`\n`, `\r`, `\t`,
    /// `\u{1B}`), so that it stays on one line and sends nothing to a terminal.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where needsEscape(scalar): result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    package static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }
}
