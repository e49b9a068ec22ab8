public import Logging
public import PGEventsSystem

extension RedisConnection: ClosableResource {
    /// Connects, runs `body` with the connection, and closes it afterwards — whether `body` returned or threw —
    /// so that a connection can't be left open by an early exit.
    ///
    /// ```swift
    /// try await RedisConnection.withConnection(configuration) { redis in try await redis.command("PING") }
    /// ```
    @discardableResult
    public static func withConnection<T>(
        _ configuration: RedisConfiguration, logger: Logger = RedisConnection.defaultLogger,
        _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        try await connect(configuration, logger: logger).closeAfter(body)
    }
}
