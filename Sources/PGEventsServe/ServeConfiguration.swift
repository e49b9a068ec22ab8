/// What `pgevents serve` does, read from its YAML file (`serve.yml`).
///
/// ```yaml
/// listen: {host: 127.0.0.1, port: 8088}    # port 0: any free port
/// streams:                                  # the processor's streams (sink: stream) to fan out
///   - key: "gc2:changes"
///     database: gisdb                        # only clients whose token names this database (omit: every client)
///     format: gc2                            # gc2 (GC2's batch messages) | raw (each entry as it is)
///     relation: table                        # the payload field naming the event's schema.table, or [schema, table]
/// auth:
///   algorithm: HS256                         # HS256 | RS256 | ES256
///   key: {env: PGEVENTS_JWT_SECRET}           # or {file: /etc/pgevents/jwt.pem}; or jwks: /etc/pgevents/jwks.json
///   claims: {database: database, user: uid, superuser: superUser, role: uid}
///   leeway: 0                                # seconds of clock skew allowed on exp and nbf
///   privilege: SELECT                        # what has_table_privilege checks for each rel
/// clients:
///   queue: 1024                              # messages held per client; one more and it is dropped as too slow
///   max_connections: 10000
///   max_message_bytes: 65536                 # largest message a client may send
///   ping_interval: 30                        # seconds between WebSocket pings (and SSE keep-alive comments)
///   block: 1                                 # seconds one XREAD waits (shutdown is noticed within it)
///   close_timeout: 10                        # seconds a client has to answer the gateway's close frame
/// sql: {enabled: false, statement_timeout: 5, max_rows: 1000, max_queued: 16}
/// ```
///
/// The database and Redis URLs are not in the file: they come from `--database-url`/`--redis-url` or
/// `DATABASE_URL`/`REDIS_URL`, so the file holds no secret; the signing key is read from the environment or a file.
public struct ServeConfiguration: Sendable, Equatable {
    /// Where the HTTP server listens.
    public var host = "127.0.0.1"
    /// The port (0: any free port; the service reports the one it got).
    public var port = 8088
    /// The streams fanned out, in order.
    public var streams: [Stream] = []
    /// How tokens are checked and read.
    public var auth = Auth()
    /// Limits per client.
    public var clients = Clients()
    /// SQL over the WebSocket.
    public var sql = SQL()

    /// A configuration from fields (see the type's documentation for what each means).
    public init(
        host: String = "127.0.0.1", port: Int = 8088, streams: [Stream] = [], auth: Auth = Auth(), clients: Clients = Clients(),
        sql: SQL = SQL()
    ) {
        self.host = host
        self.port = port
        self.streams = streams
        self.auth = auth
        self.clients = clients
        self.sql = sql
    }

    /// One stream of the processor's, fanned out to clients.
    public struct Stream: Sendable, Equatable {
        /// The Redis key.
        public var key: String
        /// When set, only clients whose token's database claim equals it receive the stream.
        public var database: String?
        /// How entries become messages.
        public var format: Format
        /// Where an event's relation is read from; nil: events of this stream have no relation, so only clients
        /// that asked for none (superusers without `rel`) receive them.
        public var relation: RelationSource?

        /// A stream from fields.
        public init(key: String, database: String? = nil, format: Format = .raw, relation: RelationSource? = nil) {
            self.key = key
            self.database = database
            self.format = format
            self.relation = relation
        }
    }

    /// How a stream entry is sent.
    public enum Format: String, Sendable, Equatable {
        /// `{"type":"event"|"batch","id":…,"stream":…,"channel":…,"payload":…}` with the payload as written.
        case raw
        /// GC2's batch message: `{"type":"batch","db":…,"batch":{db:{"schema.table":{"INSERT":[[key,value]],…,"full_data":[rows]}}}}`
        /// built from items with `op`, `table`, `key`, `key_column` and `row` (see the gc2-csv example).
        case gc2
    }

    /// Where an event's relation (`schema.table`) is read from its payload.
    public enum RelationSource: Sendable, Equatable {
        /// One field holding `schema.table`.
        case field(String)
        /// Two fields, the schema's and the table's.
        case fields(schema: String, table: String)
    }

    /// The JWT algorithms accepted.
    public enum Algorithm: String, Sendable, Equatable, CaseIterable {
        case hs256 = "HS256"
        case rs256 = "RS256"
        case es256 = "ES256"
    }

    /// Where key material comes from.
    public enum KeySource: Sendable, Equatable {
        /// An environment variable's value (the HMAC secret, or a PEM).
        case environment(String)
        /// A file's contents (the HMAC secret, or a PEM).
        case file(String)
    }

    /// Token checking.
    public struct Auth: Sendable, Equatable {
        /// The one algorithm a token may be signed with (a token naming another in its header is refused).
        public var algorithm: Algorithm = .hs256
        /// The key (HMAC secret, or public key PEM for RS256/ES256).
        public var key: KeySource?
        /// A JWKS file (keys chosen by the token's `kid`); instead of, or besides, `key`.
        public var jwksFile: String?
        /// Claim names.
        public var claims = Claims()
        /// Clock skew allowed on `exp` and `nbf`, in seconds.
        public var leeway: Double = 0
        /// The privilege `has_table_privilege` checks for each requested relation.
        public var privilege = "SELECT"

        /// Token checking from fields.
        public init(
            algorithm: Algorithm = .hs256, key: KeySource? = nil, jwksFile: String? = nil, claims: Claims = Claims(), leeway: Double = 0,
            privilege: String = "SELECT"
        ) {
            self.algorithm = algorithm
            self.key = key
            self.jwksFile = jwksFile
            self.claims = claims
            self.leeway = leeway
            self.privilege = privilege
        }
    }

    /// The names of the claims a token's identity is read from (GC2's by default).
    public struct Claims: Sendable, Equatable {
        /// The database the client reads.
        public var database = "database"
        /// The user's name (for logs).
        public var user = "uid"
        /// Whether the user may read every relation of the database without naming any.
        public var superuser = "superUser"
        /// The PostgreSQL role whose privileges are checked (and taken for SQL); by default the user claim.
        public var role = "uid"

        /// Claim names from fields.
        public init(database: String = "database", user: String = "uid", superuser: String = "superUser", role: String = "uid") {
            self.database = database
            self.user = user
            self.superuser = superuser
            self.role = role
        }
    }

    /// Limits per client.
    public struct Clients: Sendable, Equatable {
        /// Messages held for a client before it is disconnected as too slow.
        public var queue = 1024
        /// Clients connected at once (WebSocket and SSE together); one more is refused with 503.
        public var maxConnections = 10_000
        /// The largest message a client may send (bytes).
        public var maxMessageBytes = 65_536
        /// Seconds between WebSocket pings and SSE keep-alive comments.
        public var pingInterval: Double = 30
        /// Seconds one blocking XREAD waits before it is issued again.
        public var block: Double = 1
        /// Seconds a WebSocket client is given to answer the gateway's close frame (dropped as too slow, token expired,
        /// refused, shutdown) before its socket is closed.
        public var closeTimeout: Double = 10

        /// Limits from fields.
        public init(
            queue: Int = 1024, maxConnections: Int = 10_000, maxMessageBytes: Int = 65_536, pingInterval: Double = 30, block: Double = 1,
            closeTimeout: Double = 10
        ) {
            self.closeTimeout = closeTimeout
            self.queue = queue
            self.maxConnections = maxConnections
            self.maxMessageBytes = maxMessageBytes
            self.pingInterval = pingInterval
            self.block = block
        }
    }

    /// SQL over the WebSocket (GC2's `RunQueryTask`), off by default.
    public struct SQL: Sendable, Equatable {
        /// Whether a text message from a client is run as SQL.
        public var enabled = false
        /// Seconds a statement may run.
        public var statementTimeout: Double = 5
        /// Rows returned at most (more are cut off; the answer says so).
        public var maxRows = 1000
        /// Messages a client may have waiting for their answer; one more is answered with an error, not run.
        public var maxQueued = 16

        /// SQL settings from fields.
        public init(enabled: Bool = false, statementTimeout: Double = 5, maxRows: Int = 1000, maxQueued: Int = 16) {
            self.enabled = enabled
            self.statementTimeout = statementTimeout
            self.maxRows = maxRows
            self.maxQueued = maxQueued
        }
    }

    /// The stream keys, in order.
    public var streamKeys: [String] { streams.map(\.key) }
}
