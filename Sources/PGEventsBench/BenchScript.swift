import Foundation

/// The transaction a writer of `pgevents bench` runs on the user's pipeline: one statement (`--statement`) or a
/// pgbench-style script file (`--script`).
///
/// A script holds SQL statements and `\set` lines, as pgbench reads them:
///
/// ```sql
/// \set customer random(1, 1000)
/// \set amount 250
/// INSERT INTO orders (customer_id, amount, note) VALUES (:customer, :amount, 'client :client_id');
/// ```
///
/// - `\set NAME INTEGER` and `\set NAME random(LO, HI)` (a uniform integer, both ends included) are evaluated in
///   order at the start of every transaction; other meta-commands are refused, naming the file and line.
/// - `:NAME` is replaced by the variable's value outside quoted strings, quoted identifiers and comments; `::` is a
///   cast. `:client_id` is the writer's number (0, 1, …), as in pgbench. A `:NAME` that no `\set` defines is an
///   error naming the file and line.
/// - The whole script is sent as one query, so it commits as one transaction (pgbench sends each statement on its
///   own unless the script holds `BEGIN`/`COMMIT`).
public struct BenchScript: Sendable, Equatable {
    /// A script that cannot be run: what is wrong, and where.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var source: String
        public var line: Int
        public var message: String
        public var description: String { "\(source):\(line): \(message)" }
    }

    enum Value: Sendable, Equatable {
        case constant(Int64)
        case random(Int64, Int64)
    }

    enum Piece: Sendable, Equatable {
        case text(String)
        case variable(String)
    }

    /// Where it came from: the file's path, or `--statement`.
    public let source: String
    /// The `\set` lines, in order.
    let variables: [(name: String, value: Value)]
    /// The SQL, cut where variables go.
    let pieces: [Piece]

    public static func == (a: BenchScript, b: BenchScript) -> Bool {
        a.source == b.source && a.pieces == b.pieces && a.variables.map(\.name) == b.variables.map(\.name)
            && a.variables.map(\.value) == b.variables.map(\.value)
    }

    /// One statement (or several, separated by `;`), given on the command line.
    public init(statement: String) throws(Problem) {
        try self.init(text: statement, source: "--statement")
    }

    /// A pgbench-style script file.
    public init(contentsOf path: String) throws(Problem) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Problem(source: path, line: 1, message: "cannot read the script: \(error.localizedDescription)")
        }
        try self.init(text: text, source: path)
    }

    init(text: String, source: String) throws(Problem) {
        self.source = source
        var variables: [(name: String, value: Value)] = []
        var sqlLines: [String] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("\\") else {
                sqlLines.append(String(line))
                continue
            }
            sqlLines.append("")  // keeps the line numbers of the SQL
            variables.append(try Self.meta(trimmed, source: source, line: index + 1))
        }
        let defined = Set(variables.map(\.name) + ["client_id"])
        pieces = try Self.cut(sqlLines.joined(separator: "\n"), defined: defined, source: source)
        self.variables = variables
        let sql = pieces.compactMap { if case .text(let text) = $0 { text } else { nil } }.joined()
        if !pieces.contains(where: { if case .variable = $0 { true } else { false } }),
            Self.withoutComments(sql).trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ";"))).isEmpty
        {
            throw Problem(source: source, line: 1, message: "no SQL statement to run")
        }
    }

    /// The SQL of one transaction: every variable drawn, `client_id` the writer's number.
    public func render(client: Int, using generator: inout some RandomNumberGenerator) -> String {
        var values = ["client_id": Int64(client)]
        for (name, value) in variables {
            values[name] =
                switch value {
                case .constant(let number): number
                case .random(let low, let high): Int64.random(in: low...high, using: &generator)
                }
        }
        var sql = ""
        for piece in pieces {
            switch piece {
            case .text(let text): sql += text
            case .variable(let name): sql += String(values[name] ?? 0)
            }
        }
        return sql
    }

    // MARK: Parsing

    private static func meta(_ line: String, source: String, line number: Int) throws(Problem) -> (name: String, value: Value) {
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        guard words.first == "\\set" else {
            throw Problem(
                source: source, line: number,
                message:
                    "\(words.first ?? line) is not supported by pgevents bench (it reads \\set NAME INTEGER and \\set NAME random(LO, HI))")
        }
        guard words.count == 3, let first = words[1].unicodeScalars.first, CharacterSet.letters.contains(first) || first == "_",
            words[1].unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || $0 == "_" })
        else {
            throw Problem(source: source, line: number, message: "expected \\set NAME INTEGER or \\set NAME random(LO, HI)")
        }
        let name = words[1]
        let expression = words[2].replacingOccurrences(of: " ", with: "")
        if name == "client_id" {
            throw Problem(source: source, line: number, message: "client_id is the writer's number; it cannot be set")
        }
        if let number = Int64(expression) { return (name, .constant(number)) }
        if expression.hasPrefix("random("), expression.hasSuffix(")") {
            let bounds = expression.dropFirst("random(".count).dropLast().split(separator: ",", omittingEmptySubsequences: false).map {
                Int64($0)
            }
            if bounds.count == 2, let low = bounds[0], let high = bounds[1] {
                guard low <= high else {
                    throw Problem(source: source, line: number, message: "random(\(low), \(high)): the lower bound is above the upper one")
                }
                return (name, .random(low, high))
            }
        }
        throw Problem(
            source: source, line: number, message: "\\set \(name) \(words[2]): expected an integer or random(LO, HI) with integer bounds")
    }

    /// Cuts `sql` at every `:name` outside quotes and comments.
    private static func cut(_ sql: String, defined: Set<String>, source: String) throws(Problem) -> [Piece] {
        let characters = Array(sql.unicodeScalars)
        var pieces: [Piece] = []
        var text = String.UnicodeScalarView()
        var index = 0
        var line = 1
        func isNameStart(_ c: Unicode.Scalar) -> Bool { CharacterSet.letters.contains(c) || c == "_" }
        func isName(_ c: Unicode.Scalar) -> Bool { CharacterSet.alphanumerics.contains(c) || c == "_" }
        func copy(until end: Int) {
            while index < end, index < characters.count {
                if characters[index] == "\n" { line += 1 }
                text.append(characters[index])
                index += 1
            }
        }
        while index < characters.count {
            let c = characters[index]
            let next: Unicode.Scalar? = index + 1 < characters.count ? characters[index + 1] : nil
            switch c {
            case "'", "\"":
                var end = index + 1
                while end < characters.count {
                    if characters[end] == c {
                        if end + 1 < characters.count, characters[end + 1] == c {
                            end += 2
                            continue
                        }  // '' inside a string
                        break
                    }
                    end += 1
                }
                copy(until: end + 1)
            case "-" where next == "-":
                var end = index
                while end < characters.count, characters[end] != "\n" { end += 1 }
                copy(until: end)
            case ":" where next == ":":
                copy(until: index + 2)
            case ":" where next.map(isNameStart) == true:
                var end = index + 1
                while end < characters.count, isName(characters[end]) { end += 1 }
                let name = String(String.UnicodeScalarView(characters[(index + 1)..<end]))
                guard defined.contains(name) else {
                    throw Problem(
                        source: source, line: line,
                        message: ":\(name) is not defined (define it with \\set \(name) …; :client_id is the writer's number)")
                }
                if !text.isEmpty {
                    pieces.append(.text(String(text)))
                    text = .init()
                }
                pieces.append(.variable(name))
                index = end
            default:
                copy(until: index + 1)
            }
        }
        if !text.isEmpty { pieces.append(.text(String(text))) }
        return pieces
    }

    private static func withoutComments(_ sql: String) -> String {
        sql.split(separator: "\n").map { line in line.range(of: "--").map { String(line[..<$0.lowerBound]) } ?? String(line) }.joined(
            separator: "\n")
    }
}
