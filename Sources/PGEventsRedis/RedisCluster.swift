public import Logging
public import PGEventsSystem

/// A client of a Redis Cluster: finds which primary serves each hash slot (`CLUSTER SLOTS`), keeps one
/// ``RedisConnection`` per primary it talks to, and sends each command to the primary of its keys' slot.
///
/// `MOVED` (the slot lives elsewhere now) updates the slot map and sends the command there; `ASK` (the slot is
/// being migrated) sends it once to the named node after `ASKING`. A node that cannot be reached, or whose
/// connection breaks, is dropped and the whole map is read again before the next command, from any node that
/// answers (the known ones, then the seeds): after a failover, the promoted replica is found that way. Errors
/// that say the cluster is not ready (`CLUSTERDOWN`, `TRYAGAIN`) are returned to the caller, who waits and
/// tries again.
///
/// Every command sent through the cluster must name keys of one slot only (Redis refuses others with
/// `CROSSSLOT`); use hash tags (`{…}`) to put keys that belong together in one slot (``RedisHashSlot``).
///
/// ```swift
/// let cluster = try await RedisCluster.connect(RedisConfiguration("redis+cluster://:secret@10.0.0.1:7000"))
/// try await cluster.command(["LPUSH", "jobs", "payload"], slot: RedisHashSlot.of("jobs"))
/// ```
public actor RedisCluster {
    /// The seeds, credentials and timeouts (password masked in its description).
    public nonisolated let configuration: RedisConfiguration
    private let logger: Logger
    private var slots = RedisClusterSlots()
    private var connections: [RedisNodeAddress: RedisConnection] = [:]
    private var needsRefresh = true
    private var isClosed = false
    /// The nodes sent commands since ``takeConnectionsUsed()`` last looked.
    private var used: Set<RedisNodeAddress> = []

    /// Redirections followed for one command before giving up (a cluster being resharded moves a slot once).
    public static let maximumRedirections = 5

    private init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Connects to the cluster a `redis+cluster://` configuration names and reads its slot map.
    public static func connect(_ configuration: RedisConfiguration, logger: Logger = RedisConnection.defaultLogger)
        async throws(RedisError) -> RedisCluster
    {
        guard configuration.isCluster else {
            throw RedisError(
                code: .invalidConfiguration, message: "\(configuration) is not a cluster URL: expected redis+cluster://host:port")
        }
        try configuration.validate()
        let cluster = RedisCluster(configuration: configuration, logger: logger)
        try await cluster.refreshSlots()
        return cluster
    }

    /// The slot map as last read.
    public var slotMap: RedisClusterSlots { slots }

    /// The primaries serving slots, in slot order (after reading the map again if it is stale).
    public func primaries() async throws(RedisError) -> [RedisNodeAddress] {
        try await refreshIfNeeded()
        return slots.distinctPrimaries
    }

    /// The primary serving `slot` (after reading the map again if it is stale); throws when no node serves it.
    public func primary(forSlot slot: Int) async throws(RedisError) -> RedisNodeAddress {
        try await refreshIfNeeded()
        guard let node = slots.primaries[slot] else {
            needsRefresh = true
            throw RedisError(
                code: .server, message: "CLUSTERDOWN no node of \(configuration.target) serves hash slot \(slot) (yet)", command: nil)
        }
        return node
    }

    /// The connection to `node`, opened on first use.
    public func connection(to node: RedisNodeAddress) async throws(RedisError) -> RedisConnection {
        try checkOpen()
        if let existing = connections[node], await existing.isUsable { return existing }
        if let broken = connections.removeValue(forKey: node) { await broken.close() }
        do {
            let connection = try await RedisConnection.connect(configuration.node(node), logger: logger)
            connections[node] = connection
            return connection
        } catch {
            needsRefresh = true
            throw error
        }
    }

    /// The connection to the primary serving `slot`.
    public func connection(forSlot slot: Int) async throws(RedisError) -> RedisConnection {
        try await connection(to: primary(forSlot: slot))
    }

    /// Sends one command whose keys are all in `slot`; an error reply is thrown as a `.server` error.
    @discardableResult
    public func command(_ arguments: [RedisArgument], slot: Int) async throws(RedisError) -> RedisReply {
        let reply = try await pipeline([arguments], slot: slot)[0]
        if case .error(let message) = reply {
            throw RedisError(code: .server, message: message, command: arguments.first.map(RedisConnection.commandName))
        }
        return reply
    }

    /// Sends commands whose keys are all in `slot`, as one pipeline to its primary, and returns their replies in
    /// order, following `MOVED` and `ASK`. Error replies are returned in place; connection failures throw (the map
    /// is read again before the next call).
    public func pipeline(_ commands: [[RedisArgument]], slot: Int) async throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        var node = try await primary(forSlot: slot)
        var replies = try await send(commands, to: node, asking: false)
        var redirections = 0
        while true {
            // Redis checks the slot before running a command: in one pipeline of one slot, the redirected commands
            // are a suffix (all of them, or those after a migration finished), and sending them again keeps order.
            guard let first = replies.firstIndex(where: { $0.errorMessage.flatMap(RedisRedirection.init) != nil }),
                case .error(let message) = replies[first], let redirection = RedisRedirection(message)
            else { return replies }
            redirections += 1
            guard redirections <= Self.maximumRedirections else {
                needsRefresh = true
                throw RedisError(
                    code: .server,
                    message:
                        "TRYAGAIN hash slot \(slot) was redirected \(Self.maximumRedirections) times (last: \(message)); the cluster is being resharded",
                    command: commands[first].first.map(RedisConnection.commandName))
            }
            let rest = Array(commands[first...])
            let again: [RedisReply]
            switch redirection.kind {
            case .moved:
                logger.debug("slot moved", metadata: ["slot": "\(redirection.slot)", "node": "\(redirection.node)"])
                slots.move(slot: redirection.slot, to: redirection.node)
                node = redirection.node
                again = try await send(rest, to: node, asking: false)
            case .ask:
                again = try await send(rest, to: redirection.node, asking: true)
            }
            replies.replaceSubrange(first..., with: again)
        }
    }

    /// Reads the slot map again from the first node that answers: the known nodes, then the seeds.
    public func refreshSlots() async throws(RedisError) {
        try checkOpen()
        var candidates = Array(connections.keys) + slots.nodes + [configuration.address] + configuration.clusterSeeds
        var seen = Set<RedisNodeAddress>()
        candidates = candidates.filter { seen.insert($0).inserted }
        var failures: [String] = []
        for node in candidates {
            do {
                let connection = try await connection(to: node)
                let reply = try await connection.command("CLUSTER", "SLOTS")
                let read = try RedisClusterSlots(parsing: reply, askedNode: node)
                guard read.coveredSlots > 0 else {
                    failures.append("\(node): serves no slots (not part of a cluster yet)")
                    continue
                }
                slots = read
                needsRefresh = false
                // Connections to nodes that are no longer primaries serve nothing now.
                let primaries = Set(read.distinctPrimaries)
                for (address, stale) in connections where !primaries.contains(address) {
                    connections[address] = nil
                    await stale.close()
                }
                logger.debug("slot map read", metadata: ["from": "\(node)", "primaries": "\(primaries.count)"])
                return
            } catch {
                if error.serverErrorPrefix == "ERR", error.message.contains("cluster support disabled") {
                    throw RedisError(
                        code: .invalidConfiguration,
                        message: "\(node) is not a cluster node (cluster support disabled): use redis:// for a standalone Redis",
                        command: "CLUSTER")
                }
                failures.append("\(node): \(error.message)")
            }
        }
        throw RedisError(
            code: .connectionFailed,
            message: "no node of the Redis Cluster \(configuration.target) answered CLUSTER SLOTS: " + failures.joined(separator: "; "),
            command: "CLUSTER")
    }

    /// Closes every connection. Later calls throw `.connectionClosed`. Safe to call more than once.
    public func close() async {
        isClosed = true
        let open = connections.values
        connections = [:]
        for connection in open { await connection.close() }
    }

    /// Whether the client is open (a broken node connection is opened again on the next command).
    public var isUsable: Bool { !isClosed }

    /// The open connections that were sent commands since the last call (for `WAIT`, which counts a connection's own
    /// writes: a primary this client did not write to has nothing to wait for).
    public func takeConnectionsUsed() -> [RedisConnection] {
        defer { used = [] }
        return used.sorted { $0.description < $1.description }.compactMap { connections[$0] }
    }

    // MARK: Sending

    private func send(_ commands: [[RedisArgument]], to node: RedisNodeAddress, asking: Bool) async throws(RedisError) -> [RedisReply] {
        let connection = try await connection(to: node)
        used.insert(node)
        do {
            if !asking { return try await connection.pipeline(commands) }
            // ASKING holds for the next command only: one before each.
            let replies = try await connection.pipeline(commands.flatMap { [["ASKING"], $0] })
            return stride(from: 1, to: replies.count, by: 2).map { replies[$0] }
        } catch {
            if error.isConnectionError {
                connections[node] = nil
                await connection.close()
                needsRefresh = true
            }
            throw error
        }
    }

    private func refreshIfNeeded() async throws(RedisError) {
        try checkOpen()
        if needsRefresh { try await refreshSlots() }
    }

    private func checkOpen() throws(RedisError) {
        if isClosed {
            throw RedisError(code: .connectionClosed, message: "the connection to the Redis Cluster \(configuration.target) was closed")
        }
    }
}

extension RedisCluster: ClosableResource {
    /// Connects, runs `body` with the cluster client, and closes it afterwards, whether `body` returned or threw.
    @discardableResult
    public static func withCluster<T>(
        _ configuration: RedisConfiguration, logger: Logger = RedisConnection.defaultLogger, _ body: (RedisCluster) async throws -> T
    ) async throws -> T {
        try await connect(configuration, logger: logger).closeAfter(body)
    }
}
