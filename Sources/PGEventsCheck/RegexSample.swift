import Foundation

/// A string that a simple regular expression matches, for a `CHECK (code ~ '^[A-Z]{3}-[0-9]{4}$')` column: the
/// generated rows must be rows the schema accepts.
///
/// Reads the common part of PostgreSQL's regular expressions: literals and escapes (`\d`, `\w`, `\s`, `\.`), `.`,
/// bracket expressions with ranges, negation and `[:alpha:]`-style classes, groups (capturing or `(?:…)`),
/// alternation, the quantifiers `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` (lazy or not), and the anchors `^` and `$`.
/// Anything else (back-references, lookaround, word boundaries, embedded options) gives nil: the caller says which
/// constraint it could not meet.
///
/// `variant` picks different characters (and branches) for different rows, so that a UNIQUE column gets a new
/// value for each row where the pattern leaves room for one.
enum RegexSample {
    indirect enum Node {
        case sequence([Node])
        case alternation([Node])
        case literal(Character)
        case set([Character])
        case repeated(Node, min: Int, max: Int?)
        case anchor
    }

    /// A string `pattern` matches, or nil when the pattern uses what this generator does not read.
    static func generate(_ pattern: String, variant: Int = 0) -> String? {
        var parser = Parser(characters: Array(pattern))
        guard let node = parser.parseAlternation(), parser.index == parser.characters.count else { return nil }
        var state = variant
        return render(node, &state)
    }

    /// A string a `LIKE` pattern matches: `%` becomes the variant's digits (or nothing), `_` one letter.
    static func like(_ pattern: String, variant: Int = 0) -> String {
        var result = ""
        var escaped = false
        var usedVariant = false
        for character in pattern {
            if escaped {
                result.append(character)
                escaped = false
                continue
            }
            switch character {
            case "\\": escaped = true
            case "%":
                if !usedVariant {
                    result += String(variant)
                    usedVariant = true
                }
            case "_": result.append("x")
            default: result.append(character)
            }
        }
        return result
    }

    private static func render(_ node: Node, _ state: inout Int) -> String {
        switch node {
        case .sequence(let nodes): return nodes.map { render($0, &state) }.joined()
        case .alternation(let branches):
            let index = state % branches.count
            state /= branches.count
            return render(branches[index], &state)
        case .literal(let character): return String(character)
        case .set(let characters):
            let index = state % characters.count
            state /= characters.count
            return String(characters[index])
        case .repeated(let inner, let min, let max):
            // The least the pattern allows, but at least one where it allows one (a visible value); longer while
            // the variant is not spent and the pattern allows it (up to 12 more), so that rows differ.
            var count = min > 0 ? min : (max == 0 ? 0 : 1)
            var text = (0..<count).map { _ in render(inner, &state) }.joined()
            while state > 0, max.map({ count < $0 }) ?? true, count < min + 12 {
                text += render(inner, &state)
                count += 1
            }
            return text
        case .anchor: return ""
        }
    }

    // MARK: Parsing

    private struct Parser {
        let characters: [Character]
        var index = 0

        var current: Character? { index < characters.count ? characters[index] : nil }

        mutating func parseAlternation() -> Node? {
            var branches: [Node] = []
            while true {
                guard let branch = parseSequence() else { return nil }
                branches.append(branch)
                guard current == "|" else { break }
                index += 1
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseSequence() -> Node? {
            var nodes: [Node] = []
            while let character = current, character != "|", character != ")" {
                guard var atom = parseAtom() else { return nil }
                while let quantifier = current, "*+?{".contains(quantifier) {
                    guard case (let min, let max)? = parseQuantifier() else { return nil }
                    atom = .repeated(atom, min: min, max: max)
                    if current == "?" { index += 1 }  // lazy: the same strings
                }
                nodes.append(atom)
            }
            return .sequence(nodes)
        }

        mutating func parseAtom() -> Node? {
            guard let character = current else { return nil }
            index += 1
            switch character {
            case "^", "$": return .anchor
            case ".": return .set(Array("xyz"))
            case "(":
                if current == "?" {
                    guard index + 1 < characters.count, characters[index + 1] == ":" else { return nil }  // lookaround, options
                    index += 2
                }
                guard let inner = parseAlternation(), current == ")" else { return nil }
                index += 1
                return inner
            case "[": return parseBracket()
            case "\\": return parseEscape(inBracket: false).map { .set($0) }
            case "*", "+", "?", "{", ")": return nil
            default: return .literal(character)
            }
        }

        /// `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`.
        mutating func parseQuantifier() -> (Int, Int?)? {
            guard let character = current else { return nil }
            index += 1
            switch character {
            case "*": return (0, nil)
            case "+": return (1, nil)
            case "?": return (0, 1)
            default:
                var text = ""
                while let next = current, next != "}" {
                    text.append(next)
                    index += 1
                }
                guard current == "}" else { return nil }
                index += 1
                let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard let low = Int(parts[0]), low <= 1_000 else { return nil }
                if parts.count == 1 { return (low, low) }
                guard parts.count == 2 else { return nil }
                if parts[1].isEmpty { return (low, nil) }
                guard let high = Int(parts[1]), high >= low else { return nil }
                return (low, high)
            }
        }

        /// `\d`, `\w`, `\s`, their negations, and escaped characters; nil for what has no single-character meaning.
        mutating func parseEscape(inBracket: Bool) -> [Character]? {
            guard let character = current else { return nil }
            index += 1
            switch character {
            case "d": return Array("0123456789")
            case "w": return Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
            case "s": return [" "]
            case "D": return Array("abc")
            case "W": return Array("-!.")
            case "S": return Array("xyz")
            case "n": return ["\n"]
            case "t": return ["\t"]
            default:
                // Letters and digits escaped are classes, back-references or boundaries (\b, \y, \m, \1): not read.
                if character.isLetter || character.isNumber { return nil }
                return [character]
            }
        }

        /// A bracket expression after its `[`: the characters it allows (for `[^…]`, printable ASCII it does not exclude).
        mutating func parseBracket() -> Node? {
            var negated = false
            if current == "^" {
                negated = true
                index += 1
            }
            var members: [Character] = []
            var first = true
            while let character = current, character != "]" || first {
                first = false
                index += 1
                if character == "[", current == ":" {
                    guard let close = characters[index...].firstIndex(of: "]"), close > index + 1, characters[close - 1] == ":" else {
                        return nil
                    }
                    let name = String(characters[(index + 1)..<(close - 1)])
                    guard let named = Self.named[name] else { return nil }
                    members += named
                    index = close + 1
                    continue
                }
                var low = character
                if character == "\\" {
                    guard let escaped = parseEscape(inBracket: true) else { return nil }
                    if escaped.count > 1 {
                        members += escaped
                        continue
                    }
                    low = escaped[0]
                }
                if current == "-", index + 1 < characters.count, characters[index + 1] != "]" {
                    index += 1
                    guard var high = current else { return nil }
                    index += 1
                    if high == "\\" {
                        guard let escaped = parseEscape(inBracket: true), escaped.count == 1 else { return nil }
                        high = escaped[0]
                    }
                    guard let lowValue = low.unicodeScalars.first?.value, let highValue = high.unicodeScalars.first?.value,
                        lowValue <= highValue,
                        highValue - lowValue < 0x3000
                    else { return nil }
                    members += (lowValue...highValue).compactMap { Unicode.Scalar($0).map(Character.init) }
                } else {
                    members.append(low)
                }
            }
            guard current == "]" else { return nil }
            index += 1
            if negated {
                let excluded = Set(members)
                members = (0x21...0x7E).compactMap { Unicode.Scalar($0).map(Character.init) }.filter {
                    !excluded.contains($0) && !excluded.contains(Character($0.lowercased()))
                        && !excluded.contains(Character($0.uppercased()))
                }
            }
            return members.isEmpty ? nil : .set(members)
        }

        static let named: [String: [Character]] = [
            "alpha": Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            "upper": Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            "lower": Array("abcdefghijklmnopqrstuvwxyz"),
            "digit": Array("0123456789"),
            "alnum": Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
            "xdigit": Array("0123456789abcdef"),
            "space": [" "],
            "punct": Array("-_.!"),
        ]
    }
}
