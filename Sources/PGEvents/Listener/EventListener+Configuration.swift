public import PGEventsPostgres
import PGEventsSystem

extension EventListener {
    /// What to listen to, and how hard to try to stay connected.
    public struct Configuration: Sendable {
        /// Where to connect. `application_name` defaults to `pgevents-listener`; the heartbeat connection uses
        /// the same name followed by ` heartbeat`.
        public var postgres: PostgresConfiguration
        /// The channels to `LISTEN` on (checked with `PostgresIdentifier.validateChannel`).
        public var channels: [String]
        /// How long to wait between reconnection attempts, and whether to give up.
        public var backoff: Backoff.Configuration
        /// How often the listener sends itself a heartbeat notification.
        public var heartbeatInterval: Duration
        /// How long a heartbeat may take to come back before the connection is treated as lost.
        public var heartbeatTimeout: Duration
        /// TCP keepalive and user-timeout settings added to a TCP connection; nil leaves the conninfo alone.
        public var tcpKeepalive: TCPKeepalive?
        /// libpq's `connect_timeout` for the listening connection (libpq counts whole seconds, at least 2).
        public var connectTimeout: Duration
        /// Warn when `pg_notification_queue_usage()` reaches this fraction (0…1) of the server's queue.
        public var queueUsageWarningThreshold: Double
        /// How often the notification queue usage is checked; nil never checks.
        public var queueUsageCheckInterval: Duration?

        /// A configuration with the defaults: heartbeat every 5 s with a 5 s timeout, TCP keepalives, a 5 s
        /// connect timeout, a queue usage warning at 50 % checked every 30 s, and a backoff that never gives up.
        public init(
            postgres: PostgresConfiguration,
            channels: [String],
            backoff: Backoff.Configuration = .init(),
            heartbeatInterval: Duration = .seconds(5),
            heartbeatTimeout: Duration = .seconds(5),
            tcpKeepalive: TCPKeepalive? = TCPKeepalive(),
            connectTimeout: Duration = .seconds(5),
            queueUsageWarningThreshold: Double = 0.5,
            queueUsageCheckInterval: Duration? = .seconds(30)
        ) {
            self.postgres = postgres
            self.channels = channels
            self.backoff = backoff
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatTimeout = heartbeatTimeout
            self.tcpKeepalive = tcpKeepalive
            self.connectTimeout = connectTimeout
            self.queueUsageWarningThreshold = queueUsageWarningThreshold
            self.queueUsageCheckInterval = queueUsageCheckInterval
        }

        /// TCP settings that let the kernel notice a dead peer: keepalive probes on an idle connection, and a
        /// limit on how long sent data may stay unacknowledged (`tcp_user_timeout`).
        public struct TCPKeepalive: Sendable, Hashable {
            /// Idle time before the first keepalive probe (`keepalives_idle`).
            public var idle: Duration
            /// Time between probes (`keepalives_interval`).
            public var interval: Duration
            /// Unanswered probes before the connection is dropped (`keepalives_count`).
            public var count: Int
            /// How long transmitted data may remain unacknowledged (`tcp_user_timeout`); nil leaves it unset.
            public var userTimeout: Duration?

            /// The defaults: probes after 5 s idle, every 2 s, 3 of them; unacknowledged data for at most 10 s.
            public init(
                idle: Duration = .seconds(5), interval: Duration = .seconds(2), count: Int = 3, userTimeout: Duration? = .seconds(10)
            ) {
                self.idle = idle
                self.interval = interval
                self.count = count
                self.userTimeout = userTimeout
            }
        }

        /// Checks the channels and numbers; throws `.invalidArgument` for the first problem found.
        public func validate() throws(PostgresError) {
            if channels.isEmpty {
                throw PostgresError(code: .invalidArgument, message: "an event listener needs at least one channel")
            }
            for channel in channels { try PostgresIdentifier.validateChannel(channel) }
            if heartbeatInterval <= .zero || heartbeatTimeout <= .zero {
                throw PostgresError(code: .invalidArgument, message: "heartbeatInterval and heartbeatTimeout must be positive")
            }
            if connectTimeout <= .zero {
                throw PostgresError(code: .invalidArgument, message: "connectTimeout must be positive")
            }
            if let interval = queueUsageCheckInterval, interval <= .zero {
                throw PostgresError(code: .invalidArgument, message: "queueUsageCheckInterval must be positive (or nil)")
            }
            if let maxAttempts = backoff.maxAttempts, maxAttempts < 1 {
                throw PostgresError(code: .invalidArgument, message: "backoff.maxAttempts must be at least 1 (or nil)")
            }
        }

        /// The conninfo of the listening connection: `postgres` plus the application name, `connect_timeout`,
        /// and — on TCP — the keepalive settings. Values given explicitly in `postgres` are kept.
        public var listeningConnection: PostgresConfiguration {
            var configuration = postgres
            setDefault(&configuration, "application_name", "pgevents-listener")
            let connectSeconds = Int(connectTimeout.inSeconds.rounded(.up))
            setDefault(&configuration, "connect_timeout", String(max(2, connectSeconds)))
            if let tcpKeepalive, Self.usesTCP(configuration) {
                setDefault(&configuration, "keepalives", "1")
                setDefault(&configuration, "keepalives_idle", Self.wholeSeconds(tcpKeepalive.idle))
                setDefault(&configuration, "keepalives_interval", Self.wholeSeconds(tcpKeepalive.interval))
                setDefault(&configuration, "keepalives_count", String(max(1, tcpKeepalive.count)))
                if let userTimeout = tcpKeepalive.userTimeout {
                    setDefault(&configuration, "tcp_user_timeout", String(Int((userTimeout.inSeconds * 1000).rounded(.up))))
                }
            }
            return configuration
        }

        /// The conninfo of the heartbeat connection: the listening connection's, named `<name> heartbeat`.
        public var heartbeatConnection: PostgresConfiguration {
            var configuration = listeningConnection
            let name = configuration["application_name"] ?? "pgevents-listener"
            configuration["application_name"] = name + " heartbeat"
            return configuration
        }

        /// Whether libpq would connect over TCP: a `host` or `hostaddr` that is not a unix socket directory.
        /// With several hosts, TCP if any of them is (libpq ignores keepalive settings on unix sockets).
        static func usesTCP(_ configuration: PostgresConfiguration) -> Bool {
            if let hostaddr = configuration["hostaddr"], !hostaddr.isEmpty { return true }
            guard let hosts = configuration["host"], !hosts.isEmpty else { return false }  // libpq's default: a socket
            return hosts.split(separator: ",", omittingEmptySubsequences: false).contains { host in
                !(host.isEmpty || host.hasPrefix("/") || host.hasPrefix("@"))
            }
        }

        private static func wholeSeconds(_ duration: Duration) -> String {
            String(max(1, Int(duration.inSeconds.rounded(.up))))
        }

        private func setDefault(_ configuration: inout PostgresConfiguration, _ keyword: String, _ value: String) {
            if configuration[keyword] == nil { configuration[keyword] = value }
        }
    }
}
