import PGEventsSystem
/// A SQL file split into statements, the way `psql` splits a script: at semicolons outside string literals
/// (`'…'`, `E'…'`, dollar-quoted `$tag$…$tag$`), quoted identifiers and comments (`--`, nested `/* */`).
///
/// Each statement keeps the line and column where it starts, so an error can be reported as `FILE:LINE:COLUMN`.
public struct SQLScript: Sendable, Equatable {
    /// One statement of the script.
    public struct Statement: Sendable, Equatable {
        /// The statement's text, without the terminating semicolon.
        public var text: String
        /// 1-based line of its first character in the file.
        public var line: Int
        /// 1-based column of its first character.
        public var column: Int

        /// The file position of a 1-based character `position` inside this statement (as PostgreSQL reports it).
        public func location(ofCharacter position: Int) -> (line: Int, column: Int) {
            var line = self.line
            var column = self.column
            for (index, character) in text.enumerated() {
                if index + 1 >= position { break }
                if character == "\n" || character == "\r\n" {
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
        let characters = Array(text)
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
                current.append(character)
                if character == "\n" || character == "\r\n" {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
                index += 1
            }
        }
        func peek(_ offset: Int = 0) -> Character? {
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
                while let c = peek(), c != "\n", c != "\r\n" { advance() }
                let comment = String(characters[commentStart..<index]).lowercased()
                if onlyCommentsSoFar, comment.replacing(" ", with: "").contains("pgevents:no-transaction") {
                    noTransaction = true
                }
                if start == nil { current = "" }  // leading comments are not part of the statement
            case "/" where peek(1) == "*":
                let (commentLine, commentColumn) = (line, column)
                var depth = 0
                repeat {
                    if peek() == "/" && peek(1) == "*" { depth += 1; advance(2) }
                    else if peek() == "*" && peek(1) == "/" { depth -= 1; advance(2) }
                    else if peek() == nil { throw Problem(message: "unterminated /* comment", line: commentLine, column: commentColumn) }
                    else { advance() }
                } while depth > 0
                if start == nil { current = "" }
            case "'":
                markStart()
                onlyCommentsSoFar = false
                let escapes = index > 0 && (characters[index - 1] == "E" || characters[index - 1] == "e")
                    && (index < 2 || !(characters[index - 2].isLetter || characters[index - 2].isNumber || characters[index - 2] == "_"))
                let (literalLine, literalColumn) = (line, column)
                advance()
                while true {
                    guard let c = peek() else { throw Problem(message: "unterminated string literal", line: literalLine, column: literalColumn) }
                    if escapes && c == "\\" { advance(2); continue }
                    if c == "'" {
                        if peek(1) == "'" { advance(2); continue }
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
                    guard let c = peek() else { throw Problem(message: "unterminated quoted identifier", line: quoteLine, column: quoteColumn) }
                    if c == "\"" {
                        if peek(1) == "\"" { advance(2); continue }
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
                while tagEnd < characters.count, characters[tagEnd].isLetter || characters[tagEnd] == "_" || (characters[tagEnd].isNumber && tagEnd > index + 1) {
                    tagEnd += 1
                }
                let previous = index > 0 ? characters[index - 1] : " "
                let isParameter = previous.isLetter || previous.isNumber || previous == "_"
                guard !isParameter, tagEnd < characters.count, characters[tagEnd] == "$" else { advance(); continue }
                let tag = Array(characters[index...tagEnd])
                let (quoteLine, quoteColumn) = (line, column)
                advance(tag.count)
                while true {
                    guard peek() != nil else {
                        throw Problem(message: "unterminated dollar-quoted string \(String(tag))", line: quoteLine, column: quoteColumn)
                    }
                    if peek() == "$", index + tag.count <= characters.count, Array(characters[index..<(index + tag.count)]) == tag {
                        advance(tag.count)
                        break
                    }
                    advance()
                }
            case ";":
                advance()
                current.removeLast()
                finishStatement()
            case "\\" where start == nil || current.last == "\n":
                throw Problem(
                    message: "psql meta-command '\\\(String(characters[(index + 1)...].prefix { !$0.isWhitespace }))' is not SQL; only psql understands it",
                    line: line, column: column)
            default:
                if !character.isWhitespace {
                    markStart()
                    onlyCommentsSoFar = false
                }
                if start == nil { advance(); current = "" } else { advance() }
            }
        }
        finishStatement()
        self.statements = statements
        self.noTransaction = noTransaction
    }

    private static func isOnlyComments(_ text: String) -> Bool {
        text.split(separator: "\n").allSatisfy { $0.trimmed().isEmpty || $0.trimmed().hasPrefix("--") }
    }
}
