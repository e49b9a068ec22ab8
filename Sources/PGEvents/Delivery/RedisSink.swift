public import Logging
public import PGEventsRedis
public import PGEventsSystem

/// The Redis the processor writes to: one server (`redis://`, `unix://`) or a Redis Cluster (`redis+cluster://`).
///
/// Everything the processor sends names keys of one hash slot per call, so on a cluster each call goes to the
/// primary of that slot (``RedisCluster`` follows `MOVED` and `ASK`); on one server it goes to the server.
public enum RedisSink: Sendable, ClosableResource {
    case server(RedisConnection)
    case cluster(RedisCluster)

    /// Connects to what `configuration` names. With `executor`, one server's connection runs on that thread
    /// (``RedisConnection/connect(_:logger:executor:)``); a cluster's node connections keep threads of their own.
    public static func connect(_ configuration: RedisConfiguration, logger: Logger, executor: ThreadExecutor? = nil)
        async throws(RedisError)
        -> RedisSink
    {
        if configuration.isCluster { return .cluster(try await RedisCluster.connect(configuration, logger: logger)) }
        return .server(try await RedisConnection.connect(configuration, logger: logger, executor: executor))
    }

    /// Whether this is a cluster (keys must then share a slot per call).
    public var isCluster: Bool {
        if case .cluster = self { return true }
        return false
    }

    /// Whether it can still be used (a broken cluster node is reconnected by the next call).
    public var isUsable: Bool {
        get async {
            switch self {
            case .server(let connection): await connection.isUsable
            case .cluster(let cluster): await cluster.isUsable
            }
        }
    }

    public func close() async {
        switch self {
        case .server(let connection): await connection.close()
        case .cluster(let cluster): await cluster.close()
        }
    }

    /// Sends `commands` — each naming only keys of the slot of `key` — as one pipeline; replies in order, error
    /// replies in place.
    public func pipeline(_ commands: [[RedisArgument]], slotOf key: String) async throws(RedisError) -> [RedisReply] {
        switch self {
        case .server(let connection): try await connection.pipeline(commands)
        case .cluster(let cluster): try await cluster.pipeline(commands, slot: RedisHashSlot.of(key))
        }
    }

    /// Sends one command naming only keys of the slot of `key`; an error reply is thrown.
    @discardableResult
    public func command(_ arguments: [RedisArgument], slotOf key: String) async throws(RedisError) -> RedisReply {
        switch self {
        case .server(let connection): try await connection.command(arguments)
        case .cluster(let cluster): try await cluster.command(arguments, slot: RedisHashSlot.of(key))
        }
    }

    /// The connections written to since the last call: the server, or the cluster's primaries that were sent
    /// commands (for `WAIT`, which counts each connection's own writes).
    public func serversWritten() async -> [RedisConnection] {
        switch self {
        case .server(let connection): [connection]
        case .cluster(let cluster): await cluster.takeConnectionsUsed()
        }
    }

    /// A connection to each server that holds data: the server, or every primary of the cluster (for `CONFIG GET`
    /// and `PING`, which are per server).
    public func servers() async throws(RedisError) -> [RedisConnection] {
        switch self {
        case .server(let connection):
            return [connection]
        case .cluster(let cluster):
            var connections: [RedisConnection] = []
            for primary in try await cluster.primaries() { connections.append(try await cluster.connection(to: primary)) }
            return connections
        }
    }
}
