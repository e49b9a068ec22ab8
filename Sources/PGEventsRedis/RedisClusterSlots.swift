/// Which primary serves each hash slot of a Redis Cluster: the parsed reply of `CLUSTER SLOTS`.
public struct RedisClusterSlots: Sendable, Equatable {
    /// The primary of each slot (``RedisHashSlot/count`` entries); nil for a slot no node serves.
    public private(set) var primaries: [RedisNodeAddress?]
    /// Every node the reply names, primaries and replicas, without repeats, in the order met.
    public private(set) var nodes: [RedisNodeAddress]

    public init() {
        primaries = Array(repeating: nil, count: RedisHashSlot.count)
        nodes = []
    }

    /// Parses `CLUSTER SLOTS` as `asked` answered it: `[[start, end, [host, port, id, …], replica…], …]`. A node
    /// with an empty host is `asked`'s host (Redis writes it so when it does not know its own address); one written
    /// `?` (unknown endpoint) is left out.
    public init(parsing reply: RedisReply, askedNode asked: RedisNodeAddress) throws(RedisError) {
        self.init()
        guard let ranges = reply.array else { throw Self.unexpected(reply) }
        for range in ranges {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].integer, let end = parts[1].integer,
                start >= 0, end >= start, end < RedisHashSlot.count
            else { throw Self.unexpected(reply) }
            var addresses: [RedisNodeAddress?] = []
            for node in parts[2...] {
                guard let fields = node.array, fields.count >= 2, let host = fields[0].string, let port = fields[1].integer,
                    (1...65535).contains(port)
                else { throw Self.unexpected(reply) }
                addresses.append(host == "?" ? nil : RedisNodeAddress(host: host.isEmpty ? asked.host : host, port: Int(port)))
            }
            for address in addresses.compactMap({ $0 }) where !nodes.contains(address) { nodes.append(address) }
            if let primary = addresses[0] {
                for slot in Int(start)...Int(end) { primaries[slot] = primary }
            }
        }
    }

    /// The distinct primaries, in slot order.
    public var distinctPrimaries: [RedisNodeAddress] {
        var seen: [RedisNodeAddress] = []
        for case let primary? in primaries where !seen.contains(primary) { seen.append(primary) }
        return seen
    }

    /// How many slots have a primary.
    public var coveredSlots: Int { primaries.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// Records that `slot` moved to `node` (a `MOVED` redirection), until the next full refresh.
    public mutating func move(slot: Int, to node: RedisNodeAddress) {
        guard primaries.indices.contains(slot) else { return }
        primaries[slot] = node
        if !nodes.contains(node) { nodes.append(node) }
    }

    private static func unexpected(_ reply: RedisReply) -> RedisError {
        let shown = String(describing: reply).prefix(200)
        return RedisError(code: .protocolViolation, message: "unexpected reply to CLUSTER SLOTS: \(shown)", command: "CLUSTER")
    }
}

/// A cluster's answer that a command belongs elsewhere: `MOVED <slot> <host:port>` (the slot lives there now) or
/// `ASK <slot> <host:port>` (it is being migrated: ask there, once, after `ASKING`).
public struct RedisRedirection: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case moved, ask }
    public var kind: Kind
    public var slot: Int
    public var node: RedisNodeAddress

    /// The redirection an error reply carries, or nil when it is another error.
    public init?(_ message: String) {
        let words = message.split(separator: " ")
        guard words.count == 3, let slot = Int(words[1]), (0..<RedisHashSlot.count).contains(slot), let node = RedisNodeAddress(words[2])
        else { return nil }
        switch words[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        self.slot = slot
        self.node = node
    }
}
