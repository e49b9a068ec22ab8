public import Logging

extension RedisConnection {
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

    /// Runs `body` with this connection, then closes it — whether `body` returned or threw.
    @discardableResult
    nonisolated public func closeAfter<T>(_ body: (RedisConnection) async throws -> T) async throws -> T {
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
