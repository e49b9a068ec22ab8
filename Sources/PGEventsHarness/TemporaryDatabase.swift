public import Logging
public import PGEventsPostgres

/// A database on a `TemporaryPostgres`, made by `makeDatabase()`; removed with the server or by `drop()`.
public struct TemporaryDatabase: Sendable {
    /// The server it lives on.
    public let server: TemporaryPostgres
    /// Its name.
    public let name: String

    /// Reaches this database through the server's private socket.
    public var configuration: PostgresConfiguration { server.configuration(database: name) }
    /// A TCP URL for this database (with the password).
    public var url: String { server.url(database: name) }

    /// Opens a connection to this database.
    public func connect(logger: Logger? = nil) async throws -> PostgresConnection {
        try await server.connect(database: name, logger: logger)
    }

    /// Connects to this database, runs `body`, and closes the connection before returning or throwing.
    @discardableResult
    public func withConnection<T>(logger: Logger? = nil, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connect(logger: logger).closeAfter(body)
    }

    /// Drops the database (connections still open to it are terminated).
    public func drop() async throws {
        try await server.dropDatabase(name)
    }
}
