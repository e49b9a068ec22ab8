import Foundation

/// What `pgevents process` does, read from its YAML file.
///
/// ```yaml
/// source: journal            # journal (default) | table (rows of your own table, by an integer key)
///                            # | wal (a logical replication slot: table changes and emit_wal messages, no trigger)
///                            # | notify (the payload is the data; loses what is sent while disconnected,
///                            # and says so)
/// table: {schema: public, name: orders, key: id}   # source: table only; one channel (its wake-up)
/// wal: {slot: pgevents_tasks, publication: pgevents_tasks, messages: true}   # source: wal only (defaults:
///                            # pgevents_<consumer>); channels are schema.table for changes, or emit_wal channels;
///                            # status_interval: 0.1 (seconds: at most one confirmation to the slot per interval)
/// databases: [gis, shop]     # serve these databases of the server, each with its own cursor; or discover them:
///                            # {include: ["gc2_*"], exclude: ["*_test"], refresh: 60} (journal and table sources)
/// consumer: tasks            # the cursor's name in pgevents.consumers (default: pgevents)
/// channels:                  # the journal channels to deliver, and the Redis list of each
///   task_created: {queue: "tasks:created"}
///   task_updated: {queue: "tasks:updated"}
///   new_event:                 # or: decode, fetch the row, evaluate rules (see ChannelPipeline)
///     decode: json
///     fetch: {table: public.events, key: event_id, from: event.event_id}
///     rules: [{name: feedback, when: {field: event.event_type, eq: FeedbackGiven}, enqueue: {queue: "jobs:feedback", job: {id: "{{event.event_id}}"}}}]
///     max_attempts: 3            # tries of a job Redis refuses before it is dead-lettered
///     attempt_backoff: 0.1       # seconds before the second try, doubled for each further one
/// dead_letter_queue: "pgevents:dead"   # events and jobs that cannot be delivered, with the reason
/// batch_size: 1000           # events per read / Redis write / acknowledgement
/// chunk_bytes: 16777216      # payload bytes per read, about (at least one event)
/// query_timeout: 30          # seconds a PostgreSQL statement may wait for an answer (then reconnect)
/// from_start: true           # a new consumer starts at the beginning of the journal
/// catch_up_interval: 5       # seconds: look at the journal even without a wake-up
/// prune_interval: 10         # seconds between pruning delivered events, until caught up (0: never)
/// key_prefix: "pgevents:seen"   # prefix of the Redis keys of delivered positions and batches
/// allow_redis_eviction: false   # true: start even when Redis' maxmemory-policy can evict the processor's keys
/// wait: {replicas: 1, timeout: 1, append_only: false}   # acknowledge a chunk only once N replicas (and the AOF) have it
/// buffer_limit: 10000        # source: notify: notifications held while Redis is down (then dropped)
/// listener: {heartbeat_interval: 5, heartbeat_timeout: 5, queue_usage_warning: 0.5, queue_usage_check_interval: 30}
/// retry: {initial: 0.1, maximum: 10}
/// ```
///
/// Durations are seconds, from 0.001 to 31,536,000 (a year). Names of PostgreSQL objects (channels, the
/// consumer, the table) cannot hold a NUL byte, and no key may be written twice, not even as `1` and `"1"`.
///
/// The database and Redis URLs are not in the file: they come from `--database-url`/`--redis-url` or
/// `DATABASE_URL`/`REDIS_URL`, so the file holds no secret.
public struct ProcessorConfiguration: Sendable, Equatable {
    /// One channel's delivery.
    public struct Channel: Sendable, Equatable {
        public var name: String
        /// The Redis list its events are pushed to (empty when only its rules say where jobs go).
        public var queue: String
        /// Decoding, fetching, rules and sinks (`decode:`, `fetch:`, `rules:`, `sink:` …); a bare `{queue: …}`
        /// passes payloads through unchanged.
        public var pipeline: ChannelPipeline

        public init(name: String, queue: String, pipeline: ChannelPipeline? = nil) {
            self.name = name
            self.queue = queue
            self.pipeline = pipeline ?? ChannelPipeline(queue: queue)
        }
    }

    /// Where events come from.
    public enum Source: String, Sendable, Equatable {
        /// The journal (`sql/pgevents/`): durable, caught up after every disconnect.
        case journal
        /// The user's own table, read by a monotonic integer key (`sql/pgevents/002_table_source.sql`):
        /// durable like the journal, for inserts only; the channel's notifications are only wake-ups.
        case table
        /// The NOTIFY payloads themselves, as in most hand-written listeners: what is sent while the
        /// processor is disconnected is lost. The processor reports every such window.
        case notify
        /// The write-ahead log, through a logical replication slot (`WalSource`): row changes of a publication's
        /// tables and `pgevents.emit_wal` messages, in commit order, with no trigger and no journal row.
        case wal
    }

    /// The table of `source: table`.
    public struct Table: Sendable, Equatable {
        public var schema: String
        public var name: String
        /// Its monotonic integer key column.
        public var key: String

        public init(schema: String = "public", name: String, key: String) {
            self.schema = schema
            self.name = name
            self.key = key
        }
    }

    public var source = Source.journal
    public var consumer = "pgevents"
    public var channels: [Channel] = []
    /// Set exactly when `source` is `.table`.
    public var table: Table?
    /// Set exactly when `source` is `.wal`.
    public var wal: Wal?
    /// Serve several databases of the server (`databases:`); nil: the URL's database only.
    public var databases: Databases?
    public var batchSize = 1_000
    /// Payload bytes per read, about.
    public var chunkBytes = 16 << 20
    /// Seconds a PostgreSQL statement of the delivery may wait for its answer.
    public var queryTimeout = 30.0
    public var fromStart = true
    public var catchUpInterval = 5.0
    public var pruneInterval = 10.0
    /// Read for files of earlier versions, which kept a key per event for this long; unused (the writer keeps
    /// delivered positions, which never expire). The processor says so when a file sets it.
    public var dedupeTTL: Int?
    /// Start even when Redis' `maxmemory-policy` can evict the processor's keys (delivered positions, batches).
    public var allowRedisEviction = false
    /// How durable a chunk must be in Redis before the journal is acknowledged (`wait:`).
    public var redisWait: RedisWait?
    public var keyPrefix = "pgevents:seen"
    /// The list where events that cannot be decoded go, with the reason.
    public var deadLetterQueue = "pgevents:dead"
    public var bufferLimit = 10_000
    public var heartbeatInterval = 5.0
    public var heartbeatTimeout = 5.0
    /// Warn when `pg_notification_queue_usage()` reaches this fraction.
    public var queueUsageWarning = 0.5
    public var queueUsageCheckInterval = 30.0
    public var retryInitial = 0.1
    public var retryMaximum = 10.0

    public init() {}

    /// Reads a configuration file; every error names the file, line, column and key.
    public init(contentsOf path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ProcessorError(
                code: .invalidConfiguration, message: "cannot read the configuration file \(path): \(error.localizedDescription)")
        }
        try self.init(yaml: text, file: path)
    }

    /// Parses a configuration from YAML text (`file` names it in messages).
    public init(yaml: String, file: String = "processor.yml") throws {
        let root = try ConfigurationNode.parse(yaml, file: file).mapping(allowed: [
            "source", "consumer", "channels", "batch_size", "from_start", "catch_up_interval", "prune_interval",
            "dedupe_ttl", "key_prefix", "listener", "retry", "table", "buffer_limit", "dead_letter_queue",
            "chunk_bytes", "query_timeout", "allow_redis_eviction", "wait", "wal", "databases",
        ])
        if let node = root["source"] {
            let name = try node.string()
            guard let source = Source(rawValue: name) else {
                throw node.error("unknown source '\(name)' (expected journal, table, wal or notify)")
            }
            self.source = source
        }
        if let node = root["consumer"] {
            consumer = try node.string()
            if consumer.isEmpty { throw node.error("the consumer name is empty") }
            if consumer.utf8.contains(0) { throw node.error("the consumer name contains a NUL byte (PostgreSQL text cannot hold one)") }
        }
        guard let channelsNode = root["channels"] else {
            throw ProcessorError(
                code: .invalidConfiguration, message: "\(file): 'channels' is missing: name at least one channel and its queue")
        }
        for (name, keyNode, node) in try channelsNode.orderedEntries() {
            if name.isEmpty || name.utf8.count > 63 {
                throw keyNode.error("a channel name must have 1 to 63 bytes")
            }
            if name.utf8.contains(0) {
                throw keyNode.error("a channel name cannot contain a NUL byte")
            }
            let pipeline = try ChannelPipeline(configuration: node)
            channels.append(Channel(name: name, queue: pipeline.queue ?? "", pipeline: pipeline))
        }
        if channels.isEmpty { throw channelsNode.error("name at least one channel") }
        if source == .notify, let channel = channels.first(where: { $0.pipeline != ChannelPipeline(queue: $0.queue) }) {
            throw channelsNode.error(
                "channel '\(channel.name)': source: notify pushes payloads as they are; decoding, fetching, rules, batching and streams need source: journal or table"
            )
        }
        switch (source, root["table"]) {
        case (.table, nil):
            throw ProcessorError(
                code: .invalidConfiguration, message: "\(file): 'table' is missing: source: table reads {schema, name, key}")
        case (.table, let node?):
            let fields = try node.mapping(allowed: ["schema", "name", "key"])
            guard let name = fields["name"] else { throw node.error("'name' is missing: the table to read") }
            guard let key = fields["key"] else { throw node.error("'key' is missing: the table's monotonic integer key column") }
            var table = Table(name: try name.string(), key: try key.string())
            if let schema = fields["schema"] { table.schema = try schema.string() }
            for (field, value) in [("schema", table.schema), ("name", table.name), ("key", table.key)]
            where value.isEmpty || value.utf8.count > 63 || value.utf8.contains(0) {
                throw (fields[field] ?? node).error("'\(field)' must have 1 to 63 bytes, none of them NUL")
            }
            if channels.count != 1 {
                throw channelsNode.error(
                    "source: table takes exactly one channel (the table's wake-up, and the queue of its rows); \(channels.count) are named")
            }
            self.table = table
        case (_, let node?):
            throw node.error("'table' is only read with source: table")
        case (_, nil):
            break
        }
        try parseWal(root["wal"], file: file)
        try parseDatabases(root["databases"])
        if let node = root["batch_size"] { batchSize = try node.int(in: 1...100_000) }
        if let node = root["chunk_bytes"] { chunkBytes = try node.int(in: 1_024...(1 << 30)) }
        if let node = root["query_timeout"] { queryTimeout = try node.seconds(in: 0.1...3_600) }
        if let node = root["allow_redis_eviction"] { allowRedisEviction = try node.bool() }
        if let node = root["wait"] {
            let fields = try node.mapping(allowed: ["replicas", "timeout", "append_only"])
            guard let replicas = fields["replicas"] else {
                throw node.error(
                    "'replicas' is missing: how many Redis replicas must have a chunk (0 with append_only: the primary's AOF only)")
            }
            var wait = RedisWait(replicas: try replicas.int(in: 0...100))
            if let timeout = fields["timeout"] { wait.timeout = Self.duration(try timeout.seconds(in: 0.001...600)) }
            if let appendOnly = fields["append_only"] { wait.appendOnly = try appendOnly.bool() }
            if wait.replicas == 0, !wait.appendOnly {
                throw replicas.error("replicas: 0 waits for nothing; give 1 or more, or append_only: true")
            }
            redisWait = wait
        }
        if let node = root["from_start"] { fromStart = try node.bool() }
        if let node = root["catch_up_interval"] { catchUpInterval = try node.seconds() }
        if let node = root["prune_interval"] {
            pruneInterval = (try? node.int(in: 0...0)) == 0 ? 0 : try node.seconds()
        }
        if let node = root["dedupe_ttl"] { dedupeTTL = try node.int(in: 1...(365 * 86_400)) }
        if let node = root["key_prefix"] { keyPrefix = try node.string() }
        if let node = root["dead_letter_queue"] {
            deadLetterQueue = try node.string()
            if deadLetterQueue.isEmpty { throw node.error("the dead-letter list's name is empty") }
        }
        if let node = root["buffer_limit"] { bufferLimit = try node.int(in: 1...10_000_000) }
        if let node = root["listener"] {
            let fields = try node.mapping(allowed: [
                "heartbeat_interval", "heartbeat_timeout", "queue_usage_warning", "queue_usage_check_interval",
            ])
            if let value = fields["heartbeat_interval"] { heartbeatInterval = try value.seconds() }
            if let value = fields["heartbeat_timeout"] { heartbeatTimeout = try value.seconds() }
            if let value = fields["queue_usage_warning"] {
                guard let fraction = Double(try value.string()), fraction > 0, fraction <= 1 else {
                    throw value.error("expected a fraction of the queue above 0 and at most 1, e.g. 0.5")
                }
                queueUsageWarning = fraction
            }
            if let value = fields["queue_usage_check_interval"] { queueUsageCheckInterval = try value.seconds() }
        }
        if let node = root["retry"] {
            let fields = try node.mapping(allowed: ["initial", "maximum"])
            if let value = fields["initial"] { retryInitial = try value.seconds() }
            if let value = fields["maximum"] { retryMaximum = try value.seconds() }
            if retryMaximum < retryInitial { throw node.error("'maximum' (\(retryMaximum)) is below 'initial' (\(retryInitial))") }
        }
    }
}
