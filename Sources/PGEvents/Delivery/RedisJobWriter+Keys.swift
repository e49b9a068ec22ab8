import PGEventsRedis

extension RedisJobWriter {
    /// The writer's own keys for one consumer key space: on one server, one set for all destinations; on a
    /// cluster, one set per hash tag of the destinations (``tag``), all in that tag's slot.
    struct Keys: Sendable, Equatable {
        /// `<prefix>:<consumer>:<instance>`: what every key of the writer starts with.
        var space: String
        /// `{part}` on a cluster; nil on one server.
        var tag: String?
        /// The hash of delivered positions (a field per destination).
        var delivered: String
        /// The sorted set of open batches, by deadline.
        var batchIndex: String
        /// Where refused batches go: the dead-letter list on one server, a list in the tag's slot on a cluster.
        var deadLetters: String
    }

    /// The keys of `consumer`'s space, for destinations hashed by `tag` (`{part}`) on a cluster, or for all of them
    /// (nil) on one server. A cluster's keys end in the tag: the prefix, consumer and dead-letter list hold no braces
    /// (``checkClusterNames(consumer:)``), so the tag is the first and the one Redis hashes.
    func keys(consumer: String, tag: String?) -> Keys {
        let space = "\(keyPrefix):\(consumer)"
        let suffix = tag.map { ":" + $0 } ?? ""
        return Keys(
            space: space, tag: tag, delivered: "\(space):delivered" + suffix, batchIndex: "\(space):batches" + suffix,
            deadLetters: deadLetterQueue + suffix)
    }
}

/// The keys a script call declares (`EVALSHA sha numkeys key…`), each once, in the order first named.
struct DeclaredKeys {
    private(set) var keys: [String]
    private var seen: Set<String>

    init(_ keys: [String]) {
        self.keys = []
        self.seen = []
        for key in keys { insert(key) }
    }

    mutating func insert(_ key: String) {
        if seen.insert(key).inserted { keys.append(key) }
    }
}
