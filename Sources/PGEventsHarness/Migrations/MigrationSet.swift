import PGEventsSystem
import Foundation
public import PGEventsPostgres

/// The `*.sql` files of a directory, applied in lexical order of their names, each in its own transaction.
///
/// A file whose first comment says `-- pgevents: no-transaction` runs statement by statement without one
/// (for `CREATE INDEX CONCURRENTLY`, `ALTER SYSTEM`, `CREATE SUBSCRIPTION` and the like).
public struct MigrationSet: Sendable {
    /// One migration file.
    public struct File: Sendable {
        /// The file name, e.g. `001_events.sql`.
        public var name: String
        /// The full path.
        public var path: String
        /// Its statements.
        public var script: SQLScript
    }

    /// The directory the files were read from.
    public let directory: String
    /// The files, in the order they are applied.
    public let files: [File]

    /// Reads and splits every `*.sql` file of `directory`.
    ///
    /// Throws `HarnessError` (`.invalidInput`) when the directory is missing or holds no `.sql` file, and
    /// `MigrationError` for a file that cannot be split (an unterminated string, a psql meta-command).
    public init(directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HarnessError(code: .invalidInput, message: "migrations directory \(directory) does not exist")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        guard !names.isEmpty else {
            throw HarnessError(code: .invalidInput, message: "migrations directory \(directory) holds no *.sql file")
        }
        var files: [File] = []
        for name in names {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw HarnessError(code: .invalidInput, message: "cannot read \(path) as UTF-8 text", underlying: DescribedError(description: "\(error)"))
            }
            do {
                files.append(File(name: name, path: path, script: try SQLScript(text)))
            } catch {
                throw MigrationError(file: path, line: error.line, column: error.column, message: error.message, postgresError: nil)
            }
        }
        self.directory = directory
        self.files = files
    }

    /// Applies every file on `connection`; stops at the first failure, whose file is rolled back
    /// (nothing after it is applied). Returns the names of the files applied.
    @discardableResult
    public func apply(to connection: PostgresConnection) async throws -> [String] {
        var applied: [String] = []
        for file in files {
            try await Self.apply(file, to: connection)
            applied.append(file.name)
        }
        return applied
    }

    static func apply(_ file: File, to connection: PostgresConnection) async throws {
        let transactional = !file.script.noTransaction
        if transactional { try await connection.execute("BEGIN") }
        for statement in file.script.statements {
            if case .failure(let error) = await run(statement.text, on: connection) {
                if transactional, await connection.isUsable { _ = try? await connection.execute("ROLLBACK") }
                throw MigrationError(file: file.path, statement: statement, error: error)
            }
        }
        if transactional, case .failure(let error) = await run("COMMIT", on: connection) {
            // Deferred constraints and the like fail at COMMIT: blame the file's last statement.
            throw MigrationError(file: file.path, statement: file.script.statements.last ?? .init(text: "COMMIT", line: 1, column: 1), error: error)
        }
    }
}

private func run(_ sql: String, on connection: PostgresConnection) async -> Result<Void, PostgresError> {
    do {
        try await connection.execute(sql)
        return .success(())
    } catch {
        return .failure(error)
    }
}

/// A migration that failed, located in its file: `FILE:LINE:COLUMN: ERROR SQLSTATE: message`.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    /// The file's path.
    public var file: String
    /// 1-based line in the file (the error's position when the server gave one, else the statement's start).
    public var line: Int
    /// 1-based column.
    public var column: Int
    /// The server's message (or the splitter's, for a file that could not be read as SQL).
    public var message: String
    /// The server's error, with SQLSTATE, detail and hint, when the server rejected a statement.
    public var postgresError: PostgresError?

    public init(file: String, line: Int, column: Int, message: String, postgresError: PostgresError?) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.postgresError = postgresError
    }

    init(file: String, statement: SQLScript.Statement, error: PostgresError) {
        let location = error.position.map { statement.location(ofCharacter: $0) } ?? (statement.line, statement.column)
        var error = error
        if error.sqlState == "25001" && error.hint == nil {
            error.hint = "this statement cannot run inside a transaction: move it to a file of its own that starts with `-- pgevents: no-transaction`"
        }
        self.init(file: file, line: location.0, column: location.1, message: error.message, postgresError: error)
    }

    /// The SQLSTATE, if the server gave one.
    public var sqlState: String? { postgresError?.sqlState }

    public var description: String {
        var text = "\(file):\(line):\(column): "
        if let error = postgresError {
            text += "\(error.severity ?? "ERROR") \(error.sqlState ?? "")".trimmed() + ": \(message)"
            if let detail = error.detail { text += "\n  DETAIL: \(detail)" }
            if let hint = error.hint { text += "\n  HINT: \(hint)" }
            if let context = error.context { text += "\n  CONTEXT: \(context.replacing("\n", with: "\n           "))" }
        } else {
            text += message
        }
        return text
    }
}

extension TemporaryPostgres {
    /// Applies `migrations` to a new template database (see `makeTemplate`); `makeDatabase()` then clones it.
    public func makeTemplate(named name: String = "pgevents_template", migrations: MigrationSet) async throws {
        try await makeTemplate(named: name) { connection in try await migrations.apply(to: connection) }
    }
}
