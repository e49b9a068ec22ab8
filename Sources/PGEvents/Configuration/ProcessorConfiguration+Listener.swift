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

    /// The conninfo of the delivery's worker connection: `postgres` with the listener's limits — a connect timeout,
    /// and on TCP keepalives and `tcp_user_timeout` — named `pgevents-worker`. Values given in `postgres` are kept.
    /// Every statement on it also has a deadline (`query_timeout`).
    public func workerConnection(postgres: PostgresConfiguration) -> PostgresConfiguration {
        var worker = listenerConfiguration(postgres: postgres)
        if worker.postgres["application_name"] == nil { worker.postgres["application_name"] = "pgevents-worker" }
        return worker.listeningConnection
    }

    static func duration(_ seconds: Double) -> Duration {
        .milliseconds(Int((seconds * 1_000).rounded()))
    }
}
