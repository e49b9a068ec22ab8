// The mutation engine of the seeded random-input tests (FuzzTests.swift): valid seeds, changed a few times
// each in the ways parsers break — bytes flipped, cut, doubled, spliced with another seed, the syntax's own
// characters inserted where they do not belong, long runs, deep nesting, numbers at their limits, any Unicode.
// Deterministic for a given seed (SplitMix64), so a failure names the seed and the iteration that reproduce it.

/// Structure-aware mutations of seed inputs.
struct Mutator: Sendable {
    /// Tokens of the input's language (keywords, delimiters), inserted whole.
    var dictionary: [String]
    /// Opening and closing tokens that nest (`[` `]`, `*1\r\n` with nothing to close).
    var nesting: [(open: String, close: String)]
    /// No input is made longer than this many bytes.
    var maximumLength = 64 * 1024

    /// Characters that are syntax somewhere: quotes, escapes, brackets, separators, markers, line breaks.
    static let specials: [String] = [
        "\"", "'", "\\", "{", "}", "[", "]", ":", "-", "*", "$", "\r\n", "\n", "\r", "\t", " ", ",", ";", "#", "&", "!",
        "|", ">", "%", "@", "`", "?", "=", "/*", "*/", "--", "$$", "\"\"", "''", "\\u", "\\x", "\\0", "+", ".", "0",
    ]
    /// Numbers at the edges of what parsers hold.
    static let numbers: [String] = [
        "0", "-0", "-1", "1", "255", "256", "65535", "2147483647", "2147483648", "-2147483649", "4294967296",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "99999999999999999999999999", "1e400", "-1e400", "1e-400", "1e300", "0.0001", "1e-300", "0.5", "1.0", ".5", "5.",
        "0x10", "0o17", "0b101", "1_000", "+1", "010", ".inf", "-.inf", ".nan", "NaN", "Infinity", "1e", "--1", "0.",
    ]
    /// Unicode that breaks assumptions: separators and controls outside ASCII, a BOM, combining marks, joiners,
    /// bidi overrides, characters whose case mapping changes their length, astral planes, noncharacters.
    static let trickyScalars: [UInt32] = [
        0x85, 0xA0, 0xAD, 0x2028, 0x2029, 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF, 0x301, 0x200D, 0x200B, 0x202E, 0x1F600,
        0x1F1E9, 0x1F1EA, 0x130, 0xDF, 0x1C5, 0x3A3, 0xFB03, 0x10FFFF, 0xE000, 0x7F, 0x9B, 0x1B, 0xC0, 0x3000,
    ]

    init(dictionary: [String] = [], nesting: [(open: String, close: String)] = []) {
        self.dictionary = dictionary
        self.nesting = nesting
    }

    /// One input: a seed with one to four mutations.
    func mutate(_ seeds: [[UInt8]], using random: inout SplitMix64) -> [UInt8] {
        var input = seeds.randomElement(using: &random) ?? []
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            mutateOnce(&input, seeds: seeds, using: &random)
            if input.count > maximumLength { input.removeLast(input.count - maximumLength) }
        }
        return input
    }

    private func mutateOnce(_ input: inout [UInt8], seeds: [[UInt8]], using random: inout SplitMix64) {
        let position = Int.random(in: 0...input.count, using: &random)
        func randomRange() -> Range<Int> {
            guard !input.isEmpty else { return 0..<0 }
            let start = Int.random(in: 0..<input.count, using: &random)
            let length = Int.random(in: 1...min(input.count - start, Int.random(in: 1...64, using: &random)), using: &random)
            return start..<start + length
        }
        switch Int.random(in: 0..<15, using: &random) {
        case 0:  // Flip a bit.
            guard !input.isEmpty else { fallthrough }
            input[Int.random(in: 0..<input.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
        case 1:  // Replace a byte, mostly with printable ASCII.
            guard !input.isEmpty else { fallthrough }
            let byte =
                Bool.random(using: &random) ? UInt8.random(in: 0x20...0x7E, using: &random) : UInt8.random(in: 0...255, using: &random)
            input[Int.random(in: 0..<input.count, using: &random)] = byte
        case 2:  // Cut the end off.
            input.removeLast(input.count - Int.random(in: 0...input.count, using: &random))
        case 3:  // Erase a piece.
            input.removeSubrange(randomRange())
        case 4:  // Duplicate a piece somewhere.
            let piece = Array(input[randomRange()])
            input.insert(contentsOf: piece, at: Int.random(in: 0...input.count, using: &random))
        case 5:  // Splice: this input's start, another seed's end.
            let other = seeds.randomElement(using: &random) ?? []
            let cut = Int.random(in: 0...other.count, using: &random)
            input = Array(input[..<position]) + other[cut...]
        case 6, 7:  // A syntax character where it does not belong.
            input.insert(contentsOf: Array(Self.specials.randomElement(using: &random)!.utf8), at: position)
        case 8:  // An ASCII control character (not NUL: the parsers read NUL-free text, and hiredis strings).
            input.insert(UInt8.random(in: 1...0x1F, using: &random), at: position)
        case 9:  // A token of the language.
            guard let token = dictionary.randomElement(using: &random) else { fallthrough }
            input.insert(contentsOf: Array(token.utf8), at: position)
        case 10:  // A long run of one character or token.
            let unit =
                Bool.random(using: &random)
                ? [UInt8.random(in: 0x20...0x7E, using: &random)]
                : Array((Self.specials + dictionary).randomElement(using: &random)!.utf8)
            let count = Int.random(in: 64...4096, using: &random) / unit.count + 1
            input.insert(contentsOf: Array([[UInt8]](repeating: unit, count: count).joined()), at: position)
        case 11:  // Deep nesting, closed or not.
            guard let pair = nesting.randomElement(using: &random) else { fallthrough }
            let depth = [
                Int.random(in: 2...64, using: &random), Int.random(in: 100...1200, using: &random),
                Int.random(in: 2000...10_000, using: &random),
            ]
            .randomElement(using: &random)!
            var nested = Array([[UInt8]](repeating: Array(pair.open.utf8), count: depth).joined())
            if Bool.random(using: &random) { nested += Array([[UInt8]](repeating: Array(pair.close.utf8), count: depth).joined()) }
            input.insert(contentsOf: nested, at: position)
        case 12:  // A number at an edge, replacing a digit run or inserted.
            let number = Array(Self.numbers.randomElement(using: &random)!.utf8)
            let isDigit = { (byte: UInt8) in (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
            if let start = input.indices.filter({ isDigit(input[$0]) }).randomElement(using: &random) {
                var end = start
                while end < input.count, isDigit(input[end]) { end += 1 }
                input.replaceSubrange(start..<end, with: number)
            } else {
                input.insert(contentsOf: number, at: position)
            }
        case 13:  // Unicode: a tricky scalar or any scalar.
            var scalar: Unicode.Scalar?
            while scalar == nil {
                scalar =
                    Bool.random(using: &random)
                    ? Unicode.Scalar(Self.trickyScalars.randomElement(using: &random)!)
                    : Unicode.Scalar(UInt32.random(in: 0x80...0x10FFFF, using: &random))
            }
            input.insert(contentsOf: Array(String(scalar!).utf8), at: position)
        default:  // Random bytes.
            let count = Int.random(in: 1...16, using: &random)
            input.insert(contentsOf: (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }, at: position)
        }
    }
}

extension Mutator {
    /// Mutations that know the syntax of each fuzzed parser's input.
    static func `for`(_ name: String) -> Mutator {
        switch name {
        case "json":
            Mutator(
                dictionary: [
                    "{", "}", "[", "]", ":", ",", "\"\"", "\"id\":", "\"name\":", "\"n\":", "\"ok\":", "\"o\":", "\"a\":", "\"secret\"",
                    "true", "false", "null", "tru", "nul", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "\\uZZZZ", "\\", "1e5",
                    "-0.0",
                ],
                nesting: [("[", "]"), ("{\"o\":", "}"), ("[{\"a\":", "}]")]
            )
        case "csv":
            Mutator(dictionary: ["\"", "\"\"", ",", "\r\n", "\n", "\r", "\",\"", "secret", "STRASSE"], nesting: [("\"", "\"")])
        case "text":
            Mutator(dictionary: ["secret", "SECRET", "Straße", "STRASSE", "ǅ", "Ǆ", "ǆ", "\u{1B}[31m"], nesting: [("{", "}")])
        case "spec", "config":
            Mutator(
                dictionary: [
                    "channels:", "tables:", "format:", "fields:", "columns:", "forbid:", "max_bytes:", "notify:", "trigger:",
                    "values:", "replication:", "publication:", "subscriber_migrations:", "migrations:", "postgres:", "source:",
                    "consumer:", "queue:", "batch_size:", "listener:", "retry:", "initial:", "maximum:", "heartbeat_interval:",
                    "heartbeat_timeout:", "catch_up_interval:", "prune_interval:", "dedupe_ttl:", "buffer_limit:", "table:",
                    "json", "csv", "text", "journal", "notify", "insert", "update", "delete", "string?", "integer",
                    "&a ", "*a", "&b ", "*b", "<<: *a", "!!str ", "!!int ", "!!binary ", "!custom ", "? ", "- ", "---\n", "...\n",
                    "%YAML 1.2\n", "%TAG ! tag:x,2000:\n", "|\n", ">-\n", "{}", "[]", "~", "null", "yes", "no", "\"\\0\"",
                    "\"\\x1b\"", "\"\\u2028\"", "'it''s'", "\n  ", "\n    ", "\n\t", "#", ": ", ", ",
                ],
                nesting: [("[", "]"), ("{a: ", "}"), ("- ", ""), ("? ", "")]
            )
        case "resp":
            Mutator(
                dictionary: [
                    "+OK\r\n", "-ERR x\r\n", ":1\r\n", ":-1\r\n", "$3\r\nabc\r\n", "$0\r\n\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n", "*2\r\n",
                    "*2147483647\r\n", "$2147483647\r\n", "$-2\r\n", "*-2\r\n", "\r\n", "+", "-", ":", "$", "*", "%", "_", "#", ",", "(",
                    "=", "~", ">", "|",
                ],
                nesting: [("*1\r\n", ""), ("*2\r\n", ":1\r\n"), ("*1\r\n*1\r\n", "")]
            )
        case "sql":
            Mutator(
                dictionary: [
                    ";", "'", "''", "E'", "e'\\", "\"", "\"\"", "$$", "$a$", "$body$", "$1", "a$b", "--", "-- pgevents: no-transaction\n",
                    "/*", "*/", "\\i x\n", "\n\\set a 1\n", "SELECT 1", "CREATE TABLE t (id int)", "BEGIN", "END", "U&'", "\r\n",
                ],
                nesting: [("/*", "*/"), ("(", ")"), ("$a$", "$a$")]
            )
        default:
            Mutator()
        }
    }
}
