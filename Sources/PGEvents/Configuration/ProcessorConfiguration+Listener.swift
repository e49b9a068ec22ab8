public import PGEventsPostgres

extension ProcessorConfiguration {
    /// The retry shape of this file's `retry` section, for reconnects and redeliveries alike.
    public var backoff: Backoff.Configuration {
        Backoff.Configuration(initial: Self.duration(retryInitial), maximum: Self.duration(retryMaximum))
    }

    /// The listener for `postgres`: this file's channels, heartbeat and retry settings.
    public func listenerConfiguration(postgres: PostgresConfiguration) -> EventListener.Configuration {
        var listener = EventListener.Configuration(postgres: postgres, channels: channels.map(\.name))
        listener.heartbeatInterval = Self.duration(heartbeatInterval)
        listener.heartbeatTimeout = Self.duration(heartbeatTimeout)
        listener.backoff = backoff
        listener.queueUsageWarningThreshold = queueUsageWarning
        listener.queueUsageCheckInterval = Self.duration(queueUsageCheckInterval)
        return listener
    }

    static func duration(_ seconds: Double) -> Duration {
        .milliseconds(Int((seconds * 1_000).rounded()))
    }
}
