import PGEventsRedis
import Synchronization

/// A Lua script the job writer runs with `EVALSHA`: loaded once with `SCRIPT LOAD`, its SHA-1 remembered (shared
/// by every copy of the writer that owns it), and loaded again when the server has lost it.
final class RedisScript: Sendable {
    /// The script's Lua source.
    let source: String
    /// The SHA-1 Redis reported on `SCRIPT LOAD`; nil until the first load.
    private let loadedSHA = Mutex<String?>(nil)

    init(_ source: String) {
        self.source = source
    }

    /// The script's SHA-1, loading it first (on the server of `key`'s slot) when it is not known yet or when
    /// `reload` is set. The SHA-1 is the same on every server: only loading is per server.
    func sha(on redis: RedisSink, slotOf key: String, reload: Bool) async throws -> String {
        if !reload, let known = loadedSHA.withLock({ $0 }) { return known }
        let reply = try await redis.command(["SCRIPT", "LOAD", RedisArgument(source)], slotOf: key)
        guard let sha = reply.string else {
            throw ProcessorError(code: .sinkRejected, message: "SCRIPT LOAD answered \(reply), not a SHA-1")
        }
        loadedSHA.withLock { $0 = sha }
        return sha
    }

    /// Sends the `EVALSHA` commands `commands(sha)` builds — every key they declare in the slot of `key` — in one
    /// pipeline and returns their replies, in order.
    ///
    /// Commands answered `NOSCRIPT` (the server lost its script cache: a restart, a failover, `SCRIPT FLUSH`, or a
    /// cluster node that never had it) did not run: the script is loaded there and just those are sent once more.
    /// Throws `RedisError` for a connection failure; error replies are returned in place.
    func evaluate(_ commands: (String) -> [[RedisArgument]], on redis: RedisSink, slotOf key: String) async throws -> [RedisReply] {
        let sha = try await sha(on: redis, slotOf: key, reload: false)
        var replies = try await redis.pipeline(commands(sha), slotOf: key)
        let lost = replies.indices.filter { Self.isNoScript(replies[$0]) }
        guard !lost.isEmpty else { return replies }
        let reloaded = try await self.sha(on: redis, slotOf: key, reload: true)
        let again = commands(reloaded)
        let retried = try await redis.pipeline(lost.map { again[$0] }, slotOf: key)
        for (index, reply) in zip(lost, retried) { replies[index] = reply }
        return replies
    }

    static func isNoScript(_ reply: RedisReply) -> Bool {
        if case .error(let message) = reply { return message.hasPrefix("NOSCRIPT") }
        return false
    }
}
