public import PGEventsRedis

extension RedisConfiguration {
    /// How long the processor waits for a Redis reply when the URL sets no `command_timeout`.
    public static let processorCommandTimeout = 10.0

    /// These settings with a command timeout: a reply that never comes (a half-open connection, a frozen server)
    /// must not hold the processor for ever. Every connection the processor opens to Redis uses it.
    public var withProcessorTimeout: RedisConfiguration {
        var settings = self
        if settings.commandTimeout == nil { settings.commandTimeout = Self.processorCommandTimeout }
        return settings
    }
}
