public import Logging
public import PGEventsRedis
import PGEventsSystem

/// The check the processor makes before it delivers anything: Redis must not evict its keys. A delivered position
/// or an open batch that Redis evicts under memory pressure is a replay that pushes jobs twice, or a batch lost.
public enum RedisEvictionPolicy {
    /// The policies that may evict keys without a TTL — the processor's keys and the queues themselves.
    public static let evictingPolicies: Set<String> = ["allkeys-lru", "allkeys-lfu", "allkeys-random"]

    /// Reads `maxmemory-policy` (of every primary, on a cluster; retrying with `backoff` while Redis is unreachable)
    /// and throws a configuration error naming the fix when the policy can evict the processor's keys, unless
    /// `allowEviction`. When `CONFIG` is not allowed (managed services rename it), it says it cannot check and goes on.
    public static func check(_ configuration: RedisConfiguration, allowEviction: Bool, backoff: Backoff, logger: Logger) async throws {
        var attempt = 0
        while true {
            do {
                let policies = try await RedisSink.connect(configuration.withProcessorTimeout, logger: logger).closeAfter { redis in
                    var policies: [(server: String, policy: String?)] = []
                    for server in try await redis.servers() {
                        let reply = try? await server.command("CONFIG", "GET", "maxmemory-policy")
                        let parts = reply?.array
                        policies.append((server.configuration.description, parts?.count == 2 ? parts?[1].string : nil))
                    }
                    return policies
                }
                guard policies.allSatisfy({ $0.policy != nil }) else {
                    logger.warning(
                        "cannot read Redis' maxmemory-policy (CONFIG GET is not allowed): make sure it is noeviction, or a volatile-* policy"
                    )
                    return
                }
                guard let evicting = policies.first(where: { evictingPolicies.contains($0.policy ?? "") }), let policy = evicting.policy
                else { return }
                let server = policies.count > 1 ? " (on \(evicting.server))" : ""
                let message =
                    "Redis' maxmemory-policy is \(policy)\(server): under memory pressure it may evict the processor's delivered positions and open batches (jobs pushed twice, batches lost) and your queues. Set maxmemory-policy noeviction (redis-cli CONFIG SET maxmemory-policy noeviction, and in redis.conf), or allow_redis_eviction: true in the processor's file to accept that."
                guard allowEviction else { throw ProcessorError(code: .invalidConfiguration, message: message) }
                logger.warning("allow_redis_eviction: \(message)")
                return
            } catch let error as RedisError where error.isConnectionError {
                attempt += 1
                let delay = backoff.delay(forAttempt: attempt)
                logger.warning(
                    "Redis unreachable at start; retrying",
                    metadata: ["attempt": "\(attempt)", "retry_in": "\(delay)", "error": "\(error)"])
                try await Task.sleep(for: delay)
            }
        }
    }
}
