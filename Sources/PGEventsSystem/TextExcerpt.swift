/// Short, one-line excerpts of untrusted text for messages: where a payload is malformed, what a field holds,
/// which statement failed. The one escaping policy for text shown on one line (logs, errors, reports): control
/// characters, line and paragraph separators and bidirectional overrides are shown escaped (`\n`, `\u{1B}`).
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

    /// About `width` characters of `text` around the 1-based character `position` (or from its start), as an
    /// excerpt, with `…` where text is left out on either side: where a statement failed.
    public static func window(of text: String, aroundCharacter position: Int?, width: Int = 120) -> String {
        let characters = Array(text)
        guard characters.count > width else { return escaped(text) }
        let center = max(0, (position ?? 1) - 1)
        let start = max(0, min(center - width / 2, characters.count - width))
        let end = min(characters.count, start + width)
        return (start > 0 ? "…" : "") + escaped(String(characters[start..<end])) + (end < characters.count ? "…" : "")
    }

    private static func escaped(_ character: Character) -> String {
        escaped(String(character))
    }

    /// `text` with control characters (C0, DEL, C1), line and paragraph separators and bidirectional embeddings,
    /// overrides and isolates shown escaped (`\n`, `\r`, `\t`, `\u{1B}`, `\u{202E}`), so that it stays on one
    /// line, sends nothing to a terminal and cannot reorder what follows it. Everything else, backslashes
    /// included, is left as it is.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where needsEscape(scalar): result += visible(scalar)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    package static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1 (general category Cc)
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional embeddings, overrides and isolates
        default: false
        }
    }

    /// `\u{1B}`: how a character that cannot be shown as itself is written.
    package static func visible(_ scalar: Unicode.Scalar) -> String {
        "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
    }
}
