import Foundation
public import PGEventsPostgres
import PGEventsSystem

/// The migration files of a directory, as their tool would run them: which files, in which order, which part of
/// each (see `MigrationLayout`: plain, Flyway, dbmate, goose, golang-migrate, sqitch), each in its own transaction
/// unless the file says otherwise.
///
/// A file opts out of its transaction with its tool's marker — `-- +goose NO TRANSACTION`,
/// `-- migrate:up transaction:false` (dbmate), `-- no-transaction` on the first line (sqlx),
/// `executeInTransaction=false` in a Flyway `V…__x.sql.conf`, or `-- pgevents: no-transaction` — and then runs
/// statement by statement, each committing on its own. A file without a marker whose statement cannot run inside
/// a transaction (`CREATE INDEX CONCURRENTLY`, `VACUUM`, `CREATE DATABASE`, …: SQLSTATE 25001) is rolled back
/// and run again that way, as psql would run it. Sqitch's scripts run that way always (sqitch runs them with psql;
/// they hold their own `BEGIN`/`COMMIT`).
public struct MigrationSet: Sendable {
    /// One migration file.
    public struct File: Sendable {
        /// The file name relative to the directory, e.g. `001_events.sql`, `deploy/jobs.sql`.
        public var name: String
        /// The full path.
        public var path: String
        /// Its statements (of the part its tool runs).
        public var script: SQLScript
        /// Whether it runs in a transaction of its own.
        public var transaction: MigrationTransaction

        /// A file as read; `MigrationSet.init(directory:)` makes these.
        public init(name: String, path: String, script: SQLScript, transaction: MigrationTransaction) {
            self.name = name
            self.path = path
            self.script = script
            self.transaction = transaction
        }
    }

    /// How one file was applied.
    public struct Applied: Sendable, Hashable {
        /// The file's name, as in `File.name`.
        public var name: String
        /// Nil: in a transaction. Else why it ran statement by statement: its marker, or the statement
        /// PostgreSQL refused inside a transaction (e.g. `CREATE INDEX CONCURRENTLY cannot run inside a transaction block (SQLSTATE 25001)`).
        public var outsideTransaction: String?
    }

    /// The directory the files were read from.
    public let directory: String
    /// The layout the directory was read as.
    public let layout: MigrationLayout
    /// The files, in the order they are applied.
    public let files: [File]

    /// Reads every migration file of `directory` as `layout` (nil: detected) says, with `placeholders`
    /// substituted (see `Placeholders`).
    ///
    /// Throws `HarnessError` (`.invalidInput`) when the directory is missing or holds no migration, and
    /// `MigrationError` for a file that cannot be split (an unterminated string, a psql meta-command) or uses a
    /// placeholder that is not defined.
    public init(directory: String, layout: MigrationLayout? = nil, placeholders: Placeholders = Placeholders()) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HarnessError(code: .invalidInput, message: "migrations directory \(directory) does not exist")
        }
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        func read(path: String) throws -> String {
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw HarnessError(
                    code: .invalidInput, message: "cannot read \(path) as UTF-8 text", underlying: DescribedError(description: "\(error)"))
            }
        }
        // The name a file is shown by: its path relative to the directory.
        func shown(_ path: String) -> String { path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path }
        let flywayConfiguration = layout == nil || layout == .flyway ? try FlywayConfiguration.read(directory: base) : nil
        let layout =
            layout ?? (flywayConfiguration != nil ? .flyway : nil)
            ?? MigrationLayout.detect(names: entries) { name in
                name.hasSuffix(".sql") ? try? String(contentsOfFile: base + "/" + name, encoding: .utf8) : nil
            }
        var placeholders = placeholders
        var paths: [String]
        if layout == .sqitch {
            let sqitch = try SqitchConfiguration.read(directory: base)
            guard FileManager.default.fileExists(atPath: sqitch.planFile) else {
                throw HarnessError(
                    code: .invalidInput,
                    message:
                        "\(directory) has no sqitch plan \(shown(sqitch.planFile))\(entries.contains("sqitch.conf") ? " (where sqitch.conf puts it)" : "") (--layout sqitch)"
                )
            }
            paths = []
            for change in MigrationLayout.sqitchChanges(plan: try read(path: sqitch.planFile)) {
                let path = sqitch.deployDirectory + "/\(change.name).sql"
                guard FileManager.default.fileExists(atPath: path) else {
                    throw HarnessError(
                        code: .invalidInput,
                        message: "\(sqitch.planFile):\(change.line): change '\(change.name)' has no deploy script \(shown(path))")
                }
                paths.append(path)
            }
            // sqitch.conf's variables, unless --define gives them.
            placeholders.values.merge(sqitch.variables) { given, _ in given }
        } else if layout == .flyway, let flyway = flywayConfiguration, !flyway.locations.isEmpty {
            // Every location and its subdirectories, ordered together by version (as Flyway does).
            var byName: [String: String] = [:]
            for location in flyway.locations {
                let found = FileManager.default.enumerator(atPath: location)?.compactMap { $0 as? String } ?? []
                for relative in found {
                    let name = (relative as NSString).lastPathComponent
                    let path = location + "/" + relative
                    if let other = byName[name], other != path {
                        throw HarnessError(
                            code: .invalidInput,
                            message: "\(flyway.file): two migrations are named \(name): \(shown(other)) and \(shown(path))")
                    }
                    byName[name] = path
                }
            }
            paths = try layout.order(Array(byName.keys)).compactMap { byName[$0] }
        } else {
            paths = try layout.order(entries).map { base + "/" + $0 }
        }
        if let flyway = flywayConfiguration, layout == .flyway {
            if flyway.replacePlaceholders {
                placeholders.values.merge(flyway.placeholders) { given, _ in given }
            } else {
                placeholders.replaces = false
            }
        }
        let names = paths.map(shown)
        guard !names.isEmpty else {
            let what = layout == .plain ? "*.sql file" : "migration of the \(layout) layout"
            throw HarnessError(
                code: .invalidInput, message: "migrations directory \(directory) holds no \(what)",
                hint: layout == .plain ? nil : "give the layout with --layout (\(MigrationLayout.names))")
        }
        var files: [File] = []
        for (name, path) in zip(names, paths) {
            let configuration = layout == .flyway ? try? String(contentsOfFile: path + ".conf", encoding: .utf8) : nil
            var sections = MigrationSections(try read(path: path), layout: layout, flywayConfiguration: configuration)
            do {
                sections = try placeholders.substitute(in: sections, layout: layout, fileName: (name as NSString).lastPathComponent)
            } catch {
                throw MigrationError(file: path, line: error.line, column: error.column, message: error.message, postgresError: nil)
            }
            let script: SQLScript
            do {
                script = try SQLScript(sections.text, blocks: sections.blocks)
            } catch {
                throw MigrationError(file: path, line: error.line, column: error.column, message: error.message, postgresError: nil)
            }
            let transaction: MigrationTransaction
            if layout == .sqitch {
                transaction = .none(marker: "sqitch runs deploy scripts with psql")
            } else if let marker = sections.noTransactionMarker {
                transaction = .none(marker: marker)
            } else if script.noTransaction {
                transaction = .none(marker: "-- pgevents: no-transaction")
            } else {
                transaction = .automatic
            }
            files.append(File(name: name, path: path, script: script, transaction: transaction))
        }
        self.directory = directory
        self.layout = layout
        self.files = files
    }

    /// The same set, with only the files before `name` (for checking what applied before a failure).
    public func files(before path: String) -> MigrationSet {
        MigrationSet(directory: directory, layout: layout, files: Array(files.prefix { $0.path != path }))
    }

    private init(directory: String, layout: MigrationLayout, files: [File]) {
        self.directory = directory
        self.layout = layout
        self.files = files
    }

    /// Applies every file on `connection`; stops at the first failure, whose file is rolled back when it ran in
    /// a transaction (nothing after it is applied). Returns the names of the files applied.
    @discardableResult
    public func apply(to connection: PostgresConnection) async throws -> [String] {
        try await applyReporting(to: connection).map(\.name)
    }

    /// `apply(to:)`, saying of each file whether it ran in a transaction.
    public func applyReporting(to connection: PostgresConnection) async throws -> [Applied] {
        var applied: [Applied] = []
        for file in files {
            applied.append(Applied(name: file.name, outsideTransaction: try await Self.apply(file, to: connection)))
        }
        return applied
    }

    /// Applies one file; returns why it ran outside a transaction, if it did.
    static func apply(_ file: File, to connection: PostgresConnection) async throws -> String? {
        if case .none(let marker) = file.transaction {
            try await applyStatementByStatement(file, to: connection)
            return marker
        }
        do {
            try await applyInTransaction(file, to: connection)
            return nil
        } catch let error as MigrationError where error.cannotRunInTransaction {
            // As psql would run it: each statement on its own (the transaction above was rolled back whole).
            try await applyStatementByStatement(file, to: connection)
            let state = error.sqlState.map { " (SQLSTATE \($0))" } ?? ""
            return "line \(error.line): \(error.message)\(state)"
        }
    }

    private static func applyInTransaction(_ file: File, to connection: PostgresConnection) async throws {
        try await connection.execute("BEGIN")
        for statement in file.script.statements {
            if case .failure(let error) = await run(statement.text, on: connection) {
                if connection.isUsable { _ = try? await connection.execute("ROLLBACK") }
                throw MigrationError(file: file.path, statement: statement, error: error)
            }
        }
        if case .failure(let error) = await run("COMMIT", on: connection) {
            // Deferred constraints and the like fail at COMMIT: blame the file's last statement.
            throw MigrationError(
                file: file.path, statement: file.script.statements.last ?? .init(text: "COMMIT", line: 1, column: 1), error: error)
        }
    }

    private static func applyStatementByStatement(_ file: File, to connection: PostgresConnection) async throws {
        for statement in file.script.statements {
            if case .failure(let error) = await run(statement.text, on: connection) {
                // A transaction the file opened itself ends with it (outside one, ROLLBACK only warns).
                if connection.isUsable { _ = try? await connection.execute("ROLLBACK") }
                throw MigrationError(file: file.path, statement: statement, error: error)
            }
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
            error.hint =
                "this statement cannot run inside a transaction: mark the file with its tool's no-transaction marker (or `-- pgevents: no-transaction`)"
        }
        self.init(file: file, line: location.0, column: location.1, message: error.message, postgresError: error)
    }

    /// The SQLSTATE, if the server gave one.
    public var sqlState: String? { postgresError?.sqlState }

    /// PostgreSQL refused a statement because it ran inside a transaction block (25001: `CREATE INDEX
    /// CONCURRENTLY`, `VACUUM`, `CREATE DATABASE`, `ALTER TYPE … ADD VALUE` before PostgreSQL 12), or refused a
    /// new enum value used in the transaction that added it (55P04).
    public var cannotRunInTransaction: Bool { sqlState == "25001" || sqlState == "55P04" }

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
