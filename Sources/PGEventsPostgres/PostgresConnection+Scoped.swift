public import Logging

extension PostgresConnection {
    /// Connects, runs `body` with the connection, and closes it afterwards — whether `body` returned or threw —
    /// so that a connection can't be left open by an early exit.
    ///
    /// ```swift
    /// try await PostgresConnection.withConnection(configuration) { db in try await db.execute(schemaSQL) }
    /// ```
    @discardableResult
    public static func withConnection<T>(
        _ configuration: PostgresConfiguration, logger: Logger = PostgresConnection.defaultLogger,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await connect(configuration, logger: logger).closeAfter(body)
    }

    /// Runs `body` with this connection, then closes it — whether `body` returned or threw. For a connection
    /// opened elsewhere (`TemporaryDatabase.connect()`, a connect whose error is mapped by hand).
    @discardableResult
    nonisolated public func closeAfter<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            let value = try await body(self)
            await close()
            return value
        } catch {
            await close()
            throw error
        }
    }
}
