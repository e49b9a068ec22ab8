// Reports (check's, bench's) show text they do not control: names, messages, payloads written by the user's
// triggers. On one line (terminals, TAP) that is `TextExcerpt.escaped` and `excerpt`; in XML (JUnit, HTML), this.

/// XML escaping of text a report does not control (names, messages, payloads), for JUnit and HTML.
package enum ReportEscaping {
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
            case _ where !isXMLCharacter(scalar): out += TextExcerpt.visible(scalar)
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
}
