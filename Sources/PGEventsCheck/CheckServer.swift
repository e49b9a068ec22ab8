import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import Synchronization

/// A database `check` made for itself: a clone of its template, dropped when done.
struct CheckDatabase: Sendable {
    var name: String
    var configuration: PostgresConfiguration
    let drop: @Sendable () async throws -> Void

    func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(configuration)
    }
}

/// Where `check` runs: a throwaway cluster it started, or an existing server (`--database-url`) on which it
/// creates scratch databases of its own and drops them afterwards.
protocol CheckServer: Sendable {
    /// `15.18`.
    var version: String { get }
    var majorVersion: Int { get }
    /// Where it is, for messages: `at /usr/lib/postgresql/15/bin`, `at postgresql://app@db:5432/app`.
    var place: String { get }
    /// Creates the template every later `makeDatabase()` clones, running `setup` in it.
    func makeTemplate(named name: String, _ setup: (PostgresConnection) async throws -> Void) async throws
    /// A fresh clone of the last template.
    func makeDatabase() async throws -> CheckDatabase
    /// Stops the cluster, or drops every database this run created.
    func finish() async
}

/// A throwaway cluster started for the check.
struct ThrowawayCheckServer: CheckServer {
    let server: TemporaryPostgres

    var version: String { server.binaries.version }
    var majorVersion: Int { server.binaries.majorVersion }
    var place: String { "at \(server.binaries.directory)" }

    func makeTemplate(named name: String, _ setup: (PostgresConnection) async throws -> Void) async throws {
        try await server.makeTemplate(named: name, setup)
    }

    func makeDatabase() async throws -> CheckDatabase {
        let database = try await server.makeDatabase()
        return CheckDatabase(name: database.name, configuration: database.configuration, drop: { try await database.drop() })
    }

    func finish() async { await server.shutdown() }
}

/// An existing server (a CI service container, a server with the extensions the project needs). The role needs
/// only CREATEDB: every database is created by this run under a unique name (`pgevents_check_<run>_…`), and only
/// those are dropped — also when the check fails. Other databases are never connected to.
final class ExistingCheckServer: CheckServer {
    let configuration: PostgresConfiguration
    let version: String
    let majorVersion: Int
    /// This run's prefix for database names.
    let prefix: String
    private let state = Mutex<(created: [String], template: String?, counter: Int)>(([], nil, 0))

    var place: String { "at \(configuration)" }

    /// Connects to `url` and reads the server's version. Throws `HarnessError` (`.invalidInput`) when the URL is
    /// malformed or the server cannot be reached.
    init(url: String) async throws {
        do {
            configuration = try PostgresConfiguration(url)
        } catch {
            throw HarnessError(code: .invalidInput, message: "--database-url: \(error.message)")
        }
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration)
        } catch {
            throw HarnessError(code: .invalidInput, message: "--database-url: cannot connect to \(configuration): \(error.message)")
        }
        let (version, number) = try await connection.closeAfter { connection in
            (
                try await connection.query("SHOW server_version").scalar(String.self),
                try await connection.query("SHOW server_version_num").scalar(String.self)
            )
        }
        self.version = version.split(separator: " ").first.map(String.init) ?? "?"
        majorVersion = (Int(number) ?? 0) / 10_000
        prefix = "pgevents_check_" + UUID().uuidString.prefix(8).lowercased()
    }

    /// `dbname` replaced: the same server, user and password.
    private func configuration(database: String) -> PostgresConfiguration {
        var parameters = Dictionary(configuration.parameters.map { ($0.keyword, $0.value) }, uniquingKeysWith: { $1 })
        parameters["dbname"] = database
        return PostgresConfiguration(parameters: parameters)
    }

    /// Runs one statement on the server's own database (the URL's), on a connection of its own.
    private func administer(_ sql: String) async throws {
        try await PostgresConnection.withConnection(configuration) { admin in try await admin.execute(sql) }
    }

    private func create(_ name: String, template: String?) async throws {
        let clause = template.map { " TEMPLATE \(PostgresIdentifier.quote($0))" + (majorVersion >= 15 ? " STRATEGY FILE_COPY" : "") } ?? ""
        do {
            try await administer("CREATE DATABASE \(PostgresIdentifier.quote(name))\(clause)")
        } catch let error as PostgresError {
            throw HarnessError(
                code: .invalidInput, message: "cannot create the scratch database \(name) on \(configuration): \(error.message)",
                hint: "check runs in scratch databases of its own: the role of --database-url needs CREATEDB")
        }
        state.withLock { $0.created.append(name) }
    }

    func makeTemplate(named name: String, _ setup: (PostgresConnection) async throws -> Void) async throws {
        let full = "\(prefix)_\(name)"
        try await create(full, template: nil)
        try await PostgresConnection.withConnection(configuration(database: full), setup)
        state.withLock { $0.template = full }
    }

    func makeDatabase() async throws -> CheckDatabase {
        let (name, template) = state.withLock { state -> (String, String?) in
            state.counter += 1
            return ("\(prefix)_\(state.counter)", state.template)
        }
        try await create(name, template: template)
        return CheckDatabase(name: name, configuration: configuration(database: name), drop: { [self] in try await self.drop(name) })
    }

    private func drop(_ name: String) async throws {
        try await administer("DROP DATABASE IF EXISTS \(PostgresIdentifier.quote(name))" + (majorVersion >= 13 ? " WITH (FORCE)" : ""))
        state.withLock { $0.created.removeAll { $0 == name } }
    }

    /// Drops every database this run created and has not dropped yet, clones before their template.
    func finish() async {
        let names = state.withLock { $0.created }
        for name in names.reversed() { try? await drop(name) }
    }

    /// The names of the databases this run created and has not dropped (for tests).
    var remaining: [String] { state.withLock { $0.created } }
}
