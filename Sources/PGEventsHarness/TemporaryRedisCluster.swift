public import Logging
public import PGEventsRedis
import PGEventsSystem

/// A throwaway Redis Cluster: `primaries` servers (three by default) sharing the 16,384 hash slots in equal
/// ranges, each with `replicasPerPrimary` replicas, on loopback, all with one random password; stopped and deleted
/// by `shutdown()`.
///
/// The cluster is built the way `redis-cli --cluster create` does it, with commands: slots assigned
/// (`CLUSTER ADDSLOTSRANGE`), nodes introduced (`CLUSTER MEET`), replicas attached (`CLUSTER REPLICATE`); `start`
/// returns once every node reports `cluster_state:ok` and every replica's link is up. The node timeout is short
/// (one second by default) so that a test's `stop(graceful: false)` of a primary is followed by its replica's
/// promotion within seconds (``waitUntilHealthy(timeoutSeconds:)``).
public final class TemporaryRedisCluster: Sendable {
    /// How to build the cluster.
    public struct Configuration: Sendable {
        public var primaries: Int
        public var replicasPerPrimary: Int
        /// `cluster-node-timeout` in milliseconds: how long a node may be unreachable before it is failed over.
        public var nodeTimeoutMilliseconds: Int
        /// More directives for every node (see ``TemporaryRedis/Configuration/settings``).
        public var settings: [String: String]
        public var startupTimeoutSeconds: Double

        public init(
            primaries: Int = 3, replicasPerPrimary: Int = 0, nodeTimeoutMilliseconds: Int = 1_000, settings: [String: String] = [:],
            startupTimeoutSeconds: Double = 60
        ) {
            self.primaries = primaries
            self.replicasPerPrimary = replicasPerPrimary
            self.nodeTimeoutMilliseconds = nodeTimeoutMilliseconds
            self.settings = settings
            self.startupTimeoutSeconds = startupTimeoutSeconds
        }
    }

    /// Every node: the primaries first (in slot order), then the replicas.
    public let nodes: [TemporaryRedis]
    /// The password of every node (a secret).
    public let password: String
    private let shutDown = OnceFlag()

    /// `redis+cluster://:PASSWORD@127.0.0.1:PORT?addr=…` naming every node (with the password: a secret).
    public var url: String { configuration.urlIncludingSecrets }
    /// The cluster's configuration for ``RedisCluster`` and the processor.
    public var configuration: RedisConfiguration {
        RedisConfiguration(
            host: "127.0.0.1", port: nodes[0].port, password: password, isCluster: true,
            clusterSeeds: nodes.dropFirst().map { RedisNodeAddress(host: "127.0.0.1", port: $0.port) })
    }

    private init(nodes: [TemporaryRedis], password: String) {
        self.nodes = nodes
        self.password = password
    }

    /// The node listening on `address`, if it is one of this cluster's.
    public func node(at address: RedisNodeAddress) -> TemporaryRedis? { nodes.first { $0.port == address.port } }

    /// Starts the nodes, builds the cluster and waits until it serves every slot.
    public static func start(_ configuration: Configuration = Configuration(), logger: Logger = TemporaryPostgres.defaultLogger)
        async throws -> TemporaryRedisCluster
    {
        guard configuration.primaries >= 1, configuration.replicasPerPrimary >= 0, configuration.nodeTimeoutMilliseconds > 0 else {
            throw HarnessError(code: .invalidInput, message: "TemporaryRedisCluster needs at least one primary and a positive node timeout")
        }
        let password = randomHex(bytes: 24)
        var settings = configuration.settings
        settings["cluster-enabled"] = "yes"
        settings["cluster-node-timeout"] = String(configuration.nodeTimeoutMilliseconds)
        settings["masterauth"] = password
        let count = configuration.primaries * (1 + configuration.replicasPerPrimary)
        var nodes: [TemporaryRedis] = []
        var busPorts: [Int] = []
        do {
            for _ in 0..<count {
                // The cluster bus listens on the port + 10000 unless told otherwise, which may be taken or out of range.
                var nodeSettings = settings
                busPorts.append(try freeLoopbackPort())
                nodeSettings["cluster-port"] = String(busPorts[busPorts.count - 1])
                nodes.append(
                    try await TemporaryRedis.start(
                        .init(settings: nodeSettings, startupTimeoutSeconds: configuration.startupTimeoutSeconds, password: password),
                        logger: logger))
            }
            let cluster = TemporaryRedisCluster(nodes: nodes, password: password)
            try await cluster.build(
                primaries: configuration.primaries, busPorts: busPorts, timeoutSeconds: configuration.startupTimeoutSeconds)
            logger.info("redis cluster started", metadata: ["primaries": "\(configuration.primaries)", "nodes": "\(count)"])
            return cluster
        } catch {
            for node in nodes { await node.shutdown() }
            throw error
        }
    }

    private func build(primaries: Int, busPorts: [Int], timeoutSeconds: Double) async throws {
        var connections: [RedisConnection] = []
        do {
            for node in nodes { connections.append(try await node.connect()) }
            try await build(primaries: primaries, busPorts: busPorts, timeoutSeconds: timeoutSeconds, connections: connections)
        } catch {
            for connection in connections { await connection.close() }
            throw error
        }
        for connection in connections { await connection.close() }
    }

    private func build(primaries: Int, busPorts: [Int], timeoutSeconds: Double, connections: [RedisConnection]) async throws {
        var ids: [String] = []
        for connection in connections {
            guard let id = try await connection.command("CLUSTER", "MYID").string else {
                throw HarnessError(code: .startupFailed, message: "CLUSTER MYID gave no node id")
            }
            ids.append(id)
        }
        for index in 0..<primaries {
            let first = index * RedisHashSlot.count / primaries
            let last = (index + 1) * RedisHashSlot.count / primaries - 1
            try await connections[index].command("CLUSTER", "ADDSLOTSRANGE", RedisArgument(first), RedisArgument(last))
        }
        for (node, busPort) in zip(nodes, busPorts).dropFirst() {
            try await connections[0].command("CLUSTER", "MEET", "127.0.0.1", RedisArgument(node.port), RedisArgument(busPort))
        }
        try await waitFor("every node to know the others", timeoutSeconds: timeoutSeconds) {
            for connection in connections {
                let known = try await connection.command("CLUSTER", "NODES").string ?? ""
                if known.split(separator: "\n").count < self.nodes.count { return false }
            }
            return true
        }
        for index in primaries..<nodes.count {
            try await connections[index].command("CLUSTER", "REPLICATE", RedisArgument(ids[(index - primaries) % primaries]))
        }
        try await waitUntilHealthy(timeoutSeconds: timeoutSeconds)
    }

    /// Waits until every running node reports `cluster_state:ok` and agrees on who serves every slot, and every
    /// running replica's link to its primary is up: after a start, or after a primary was stopped and its replica
    /// is being promoted.
    public func waitUntilHealthy(timeoutSeconds: Double = 60) async throws {
        try await waitFor("the cluster to be healthy", timeoutSeconds: timeoutSeconds) {
            var maps: [RedisClusterSlots] = []
            for node in self.nodes where node.isRunning {
                let map: RedisClusterSlots? = try await RedisConnection.withConnection(node.configuration) { connection in
                    let info = try await connection.command("CLUSTER", "INFO").string ?? ""
                    guard info.contains("cluster_state:ok") else { return nil }
                    let replication = try await connection.command("INFO", "replication").string ?? ""
                    if replication.contains("role:slave"), !replication.contains("master_link_status:up") { return nil }
                    return try RedisClusterSlots(
                        parsing: try await connection.command("CLUSTER", "SLOTS"),
                        askedNode: RedisNodeAddress(host: "127.0.0.1", port: node.port))
                }
                guard let map, map.coveredSlots == RedisHashSlot.count,
                    map.distinctPrimaries.allSatisfy({ self.node(at: $0)?.isRunning ?? false })
                else { return false }
                maps.append(map)
            }
            return maps.allSatisfy { $0.primaries == maps.first?.primaries }
        }
    }

    private func waitFor(_ what: String, timeoutSeconds: Double, _ done: () async throws -> Bool) async throws {
        let deadline = monotonicSeconds() + timeoutSeconds
        var lastError: (any Error)?
        while monotonicSeconds() < deadline {
            do {
                if try await done() { return }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError(
            code: .startupFailed,
            message: "timed out after \(timeoutSeconds) s waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""),
            logTail: nodes.first?.logTail())
    }

    /// Stops every node and deletes their directories. Safe to call more than once.
    public func shutdown() async {
        guard shutDown.claim() else { return }
        for node in nodes { await node.shutdown() }
    }
}

/// Runs `body` with a started Redis Cluster and shuts it down afterwards, whether `body` returns or throws.
public func withTemporaryRedisCluster<T>(
    _ configuration: TemporaryRedisCluster.Configuration = .init(),
    logger: Logger = TemporaryPostgres.defaultLogger,
    _ body: (TemporaryRedisCluster) async throws -> T
) async throws -> T {
    try await withStartedServer(
        try await TemporaryRedisCluster.start(configuration, logger: logger), shutdown: { await $0.shutdown() }, body)
}
