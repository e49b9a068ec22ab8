import PGEventsSystem

/// A SQL file split into statements, the way `psql` splits a script: at semicolons outside string literals
/// (`'…'`, `E'…'`, dollar-quoted `$tag$…$tag$`), quoted identifiers and comments (`--`, nested `/* */`).
///
/// Each statement keeps the line and column where it starts, so an error can be reported as `FILE:LINE:COLUMN`.
///
/// The text is read as Unicode scalars (code points), as PostgreSQL reads it, not as Swift `Character`s: a
/// quote followed by a combining mark (`'\u{301}`) is one Character, but still a quote to the server. Columns
/// and positions count code points, as PostgreSQL's error positions do.
public struct SQLScript: Sendable, Equatable {
    /// One statement of the script.
    public struct Statement: Sendable, Equatable {
        /// The statement's text, without the terminating semicolon.
        public var text: String
        /// 1-based line of its first character in the file.
        public var line: Int
        /// 1-based column of its first character (in code points).
        public var column: Int

        /// The file position of a 1-based character (code point) `position` inside this statement, as PostgreSQL
        /// reports it.
        public func location(ofCharacter position: Int) -> (line: Int, column: Int) {
            var line = self.line
            var column = self.column
            for (index, scalar) in text.unicodeScalars.enumerated() {
                if index + 1 >= position { break }
                if scalar == "\n" {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            }
            return (line, column)
        }
    }

    /// The statements, in order; empty statements (lone semicolons, comments) are dropped.
    public let statements: [Statement]
    /// The file asks to run outside a transaction (`-- pgevents: no-transaction` before the first statement).
    public let noTransaction: Bool

    /// A problem that makes the script unusable as a whole.
    public struct Problem: Error, Sendable, Equatable {
        public var message: String
        public var line: Int
        public var column: Int
    }

    /// Splits `text`. Throws for an unterminated literal or comment, or a psql meta-command (`\i`, `\set`, …),
    /// which only psql understands.
    public init(_ text: String) throws(Problem) {
        var statements: [Statement] = []
        let characters = Array(text.unicodeScalars)
        var index = 0
        var line = 1
        var column = 1
        var current = ""
        var start: (line: Int, column: Int)?
        var onlyCommentsSoFar = true
        var noTransaction = false

        func advance(_ count: Int = 1) {
            for _ in 0..<count where index < characters.count {
                let character = characters[index]
                current.unicodeScalars.append(character)
                if character == "\n" {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
                index += 1
            }
        }
        func peek(_ offset: Int = 0) -> Unicode.Scalar? {
            index + offset < characters.count ? characters[index + offset] : nil
        }
        func markStart() {
            if start == nil { start = (line, column) }
        }
        func finishStatement() {
            let trimmed = current.trimmed()
            if !trimmed.isEmpty, let begin = start, !Self.isOnlyComments(trimmed) {
                statements.append(Statement(text: current.trimmedTrailing(), line: begin.line, column: begin.column))
            }
            current = ""
            start = nil
        }

        while let character = peek() {
            switch character {
            case "-" where peek(1) == "-":
                let commentStart = index
                while let c = peek(), c != "\n" { advance() }
                let comment = String(String.UnicodeScalarView(characters[commentStart..<index])).lowercased()
                if onlyCommentsSoFar, comment.replacing(" ", with: "").contains("pgevents:no-transaction") {
                    noTransaction = true
                }
                if start == nil { current = "" }  // leading comments are not part of the statement
            case "/" where peek(1) == "*":
                let (commentLine, commentColumn) = (line, column)
                var depth = 0
                repeat {
                    if peek() == "/" && peek(1) == "*" {
                        depth += 1
                        advance(2)
                    } else if peek() == "*" && peek(1) == "/" {
                        depth -= 1
                        advance(2)
                    } else if peek() == nil {
                        throw Problem(message: "unterminated /* comment", line: commentLine, column: commentColumn)
                    } else {
                        advance()
                    }
                } while depth > 0
                if start == nil { current = "" }
            case "'":
                markStart()
                onlyCommentsSoFar = false
                let escapes =
                    index > 0 && (characters[index - 1] == "E" || characters[index - 1] == "e")
                    && (index < 2 || !Self.isIdentifier(characters[index - 2]))
                let (literalLine, literalColumn) = (line, column)
                advance()
                while true {
                    guard let c = peek() else {
                        throw Problem(message: "unterminated string literal", line: literalLine, column: literalColumn)
                    }
                    if escapes && c == "\\" {
                        advance(2)
                        continue
                    }
                    if c == "'" {
                        if peek(1) == "'" {
                            advance(2)
                            continue
                        }
                        advance()
                        break
                    }
                    advance()
                }
            case "\"":
                markStart()
                onlyCommentsSoFar = false
                let (quoteLine, quoteColumn) = (line, column)
                advance()
                while true {
                    guard let c = peek() else {
                        throw Problem(message: "unterminated quoted identifier", line: quoteLine, column: quoteColumn)
                    }
                    if c == "\"" {
                        if peek(1) == "\"" {
                            advance(2)
                            continue
                        }
                        advance()
                        break
                    }
                    advance()
                }
            case "$":
                markStart()
                onlyCommentsSoFar = false
                // A dollar quote: $$ or $tag$ where tag is an identifier not starting with a digit.
                var tagEnd = index + 1
                while tagEnd < characters.count, Self.isIdentifier(characters[tagEnd]),
                    !Self.isDigit(characters[tagEnd]) || tagEnd > index + 1
                {
                    tagEnd += 1
                }
                let isParameter = index > 0 && Self.isIdentifier(characters[index - 1])
                guard !isParameter, tagEnd < characters.count, characters[tagEnd] == "$" else {
                    advance()
                    continue
                }
                let tag = characters[index...tagEnd]
                let (quoteLine, quoteColumn) = (line, column)
                advance(tag.count)
                while true {
                    guard peek() != nil else {
                        throw Problem(
                            message:
                                "unterminated dollar-quoted string \(TextExcerpt.excerpt(String(String.UnicodeScalarView(tag)), limit: 40))",
                            line: quoteLine, column: quoteColumn)
                    }
                    // Compared in place, stopping at the first difference: the body cannot hold the tag's `$`
                    // inside it, so this is linear however long the tag.
                    if peek() == "$", index + tag.count <= characters.count, characters[index..<(index + tag.count)].elementsEqual(tag) {
                        advance(tag.count)
                        break
                    }
                    advance()
                }
            case ";":
                advance()
                current.unicodeScalars.removeLast()
                finishStatement()
            case "\\" where start == nil || current.unicodeScalars.last == "\n":
                // The command's name as written (shown escaped and cut short: it is the file's text).
                let command = String(String.UnicodeScalarView(characters[(index + 1)...].prefix { !$0.properties.isWhitespace }))
                throw Problem(
                    message: "psql meta-command '\\\(TextExcerpt.excerpt(command, limit: 40))' is not SQL; only psql understands it",
                    line: line, column: column)
            default:
                if !character.properties.isWhitespace {
                    markStart()
                    onlyCommentsSoFar = false
                }
                if start == nil {
                    advance()
                    current = ""
                } else {
                    advance()
                }
            }
        }
        finishStatement()
        self.statements = statements
        self.noTransaction = noTransaction
    }

    /// A character of an identifier, as PostgreSQL's lexer has them: ASCII letters and digits, `_`, and every
    /// character beyond ASCII.
    private static func isIdentifier(_ scalar: Unicode.Scalar) -> Bool {
        !scalar.isASCII || scalar == "_" || scalar.properties.isAlphabetic || isDigit(scalar)
    }

    private static func isDigit(_ scalar: Unicode.Scalar) -> Bool {
        ("0"..."9").contains(scalar)
    }

    private static func isOnlyComments(_ text: String) -> Bool {
        text.split(separator: "\n").allSatisfy { $0.trimmed().isEmpty || $0.trimmed().hasPrefix("--") }
    }
}

extension SQLScript {
    /// Splits `text`, then adds `blocks` — statements the file delimits itself (goose's `StatementBegin` …
    /// `StatementEnd`), run whole as written — in the order of their lines.
    public init(_ text: String, blocks: [(text: String, line: Int)]) throws(Problem) {
        let split = try SQLScript(text)
        guard !blocks.isEmpty else {
            self = split
            return
        }
        let explicit = blocks.filter { !$0.text.trimmed().isEmpty }.map { Statement(text: $0.text, line: $0.line, column: 1) }
        self.init(
            statements: (split.statements + explicit).sorted { ($0.line, $0.column) < ($1.line, $1.column) },
            noTransaction: split.noTransaction)
    }

    init(statements: [Statement], noTransaction: Bool) {
        self.statements = statements
        self.noTransaction = noTransaction
    }
}
