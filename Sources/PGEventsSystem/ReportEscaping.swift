// Reports (check's, bench's) show text they do not control: names, messages, payloads written by the user's
// triggers. One line per line for terminals, well-formed XML 1.0 for JUnit and HTML.

/// Escaping of text the report does not control (names, messages, payloads).
package enum ReportEscaping {
    /// `text` on one line: newline, tab and carriage return as `\n`, `\t`, `\r`; other control characters
    /// (C0, DEL, C1 — ANSI escape sequences included), line and paragraph separators, and bidirectional
    /// overrides as `\u{1b}`-style escapes. Everything else, backslashes included, is left as it is.
    package static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscapeOnOneLine) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out.append(contentsOf: #"\n"#.unicodeScalars)
            case "\t": out.append(contentsOf: #"\t"#.unicodeScalars)
            case "\r": out.append(contentsOf: #"\r"#.unicodeScalars)
            case _ where needsEscapeOnOneLine(scalar): out.append(contentsOf: visible(scalar).unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// The first `limit` characters of `text` (with `…` when cut), on one line.
    package static func excerpt(_ text: String, limit: Int) -> String {
        // Characters, not bytes or scalars: an emoji or a letter with its accents is never split.
        var index = text.startIndex
        var count = 0
        while index < text.endIndex, count < limit {
            text.formIndex(after: &index)
            count += 1
        }
        return index == text.endIndex ? oneLine(text) : oneLine(String(text[..<index])) + "…"
    }

    /// `text` for an XML attribute value (or, with `inAttribute: false`, for element content): markup
    /// characters as entities; tab, newline and carriage return as character references in attributes (an XML
    /// parser turns them into spaces otherwise) and carriage return in content (a parser turns it into a newline);
    /// characters XML 1.0 cannot carry at all (other C0 controls, U+FFFE, U+FFFF) as `\u{1}`-style escapes.
    package static func xml(_ text: String, inAttribute: Bool = true) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t": out += inAttribute ? "&#9;" : "\t"
            case "\n": out += inAttribute ? "&#10;" : "\n"
            case "\r": out += "&#13;"
            case _ where !isXMLCharacter(scalar): out += visible(scalar)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Whether XML 1.0 allows `scalar` in a document (its `Char` production; Swift strings hold no surrogates).
    package static func isXMLCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x9, 0xA, 0xD: true
        case 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
        default: false
        }
    }

    /// `\u{1b}`: how a character that cannot be shown as itself is written.
    package static func visible(_ scalar: Unicode.Scalar) -> String {
        #"\u{"# + String(scalar.value, radix: 16) + "}"
    }

    private static func needsEscapeOnOneLine(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional embeddings, overrides and isolates
        default: false
        }
    }
}
