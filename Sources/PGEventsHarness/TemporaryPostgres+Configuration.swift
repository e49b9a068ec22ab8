extension TemporaryPostgres {
    /// How to start a throwaway PostgreSQL server.
    public struct Configuration: Sendable {
        /// The server's `bin` directory; found automatically when nil (see `PostgresBinaries.find`).
        public var binDirectory: String?
        /// Extra server settings, passed as `-c name=value`; they override the harness's defaults.
        public var settings: [String: String]
        /// Crash safety. `false` (the default) turns off `fsync` and `full_page_writes`, which a throwaway
        /// server does not need; commits still wait for the WAL write (`synchronous_commit` stays on).
        public var durable: Bool
        /// Copy a cached, already initialised data directory instead of running `initdb` each time.
        public var reuseInitializedDataDirectory: Bool
        /// How long to wait for the server to accept connections.
        public var startupTimeoutSeconds: Double
        /// The superuser's name.
        public var superuser: String

        public init(
            binDirectory: String? = nil,
            settings: [String: String] = [:],
            durable: Bool = false,
            reuseInitializedDataDirectory: Bool = true,
            startupTimeoutSeconds: Double = 60,
            superuser: String = "postgres"
        ) {
            self.binDirectory = binDirectory
            self.settings = settings
            self.durable = durable
            self.reuseInitializedDataDirectory = reuseInitializedDataDirectory
            self.startupTimeoutSeconds = startupTimeoutSeconds
            self.superuser = superuser
        }

        /// The server settings used: the harness's defaults, overridden by `settings`.
        func serverSettings(port: Int, socketDirectory: String) -> [(String, String)] {
            var merged: [String: String] = [
                "listen_addresses": "127.0.0.1",
                "port": String(port),
                "unix_socket_directories": socketDirectory,
                "unix_socket_permissions": "0700",
                "wal_level": "logical",
                "max_wal_senders": "10",
                "max_replication_slots": "10",
                "log_line_prefix": "%m [%p] %q%u@%d ",
                "log_min_messages": "warning",
                "shared_buffers": "64MB",
            ]
            if !durable {
                merged["fsync"] = "off"
                merged["full_page_writes"] = "off"
            }
            for (name, value) in settings { merged[name] = value }
            return merged.sorted { $0.key < $1.key }
        }
    }
}
