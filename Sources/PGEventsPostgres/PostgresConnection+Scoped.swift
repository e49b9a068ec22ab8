public import Logging
public import PGEventsSystem

extension PostgresConnection: ClosableResource {
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
}
