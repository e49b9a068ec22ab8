public import PGEventsRedis
import PGEventsSystem

/// How durable a chunk must be in Redis before the journal is acknowledged (`wait:` in the processor's file).
///
/// Without it, a chunk counts as delivered once the Redis primary has it in memory: a failover before the primary
/// replicated it, or a restart before it reached disk, loses it — and the journal has moved on. With
/// `replicas: N`, the processor sends `WAIT N timeout` after each chunk and acknowledges only when N replicas have
/// it (a failover to one of them loses nothing acknowledged). With `append_only: true` it sends `WAITAOF 1 N
/// timeout` instead (Redis 7.2 and later): the chunk is also fsynced to the primary's append-only file (and to N
/// replicas'), so it survives a restart of them. When fewer answer in time, the chunk is not acknowledged: the
/// processor holds and tries again (rewriting nothing: the delivered positions are there already).
public struct RedisWait: Sendable, Equatable {
    /// Replicas that must have each chunk.
    public var replicas: Int
    /// How long to wait for them, per chunk.
    public var timeout: Duration
    /// Also wait for the append-only file's fsync (`WAITAOF`).
    public var appendOnly: Bool

    public init(replicas: Int, timeout: Duration = .seconds(1), appendOnly: Bool = false) {
        self.replicas = replicas
        self.timeout = timeout
        self.appendOnly = appendOnly
    }

    /// Waits for the writes since the last wait — on a cluster, on each primary that was written to (a primary left
    /// without a replica holds only the chunks that wrote to it); throws `RedisError` (an outage: hold and retry)
    /// when fewer replicas than asked answered in time, and `ProcessorError` when the server has no `WAITAOF`.
    public func wait(on redis: RedisSink) async throws {
        for server in await redis.serversWritten() { try await wait(on: server) }
    }

    /// Waits for the writes of this connection so far.
    public func wait(on redis: RedisConnection) async throws {
        let milliseconds = RedisArgument(timeout.inMilliseconds)
        if appendOnly {
            let reply: RedisReply
            do {
                reply = try await redis.command("WAITAOF", "1", RedisArgument(replicas), milliseconds)
            } catch {
                // command throws RedisError only (a catch with a pattern crashes this compiler on typed throws).
                guard error.serverErrorPrefix == "ERR", error.message.contains("unknown command") else { throw error }
                throw ProcessorError(
                    code: .invalidConfiguration,
                    message: "wait.append_only needs WAITAOF, which this Redis does not have (Redis 7.2 or later): \(error.message)")
            }
            let counts = reply.array?.compactMap(\.integer) ?? []
            guard counts.count == 2, counts[0] >= 1, counts[1] >= Int64(replicas) else {
                throw RedisError(
                    code: .timeout,
                    message:
                        "WAITAOF: the chunk reached the append-only file of \(counts.first ?? 0) primary and \(counts.last ?? 0) of \(replicas) replica(s) within \(timeout); not acknowledged, trying again",
                    command: "WAITAOF")
            }
        } else {
            let acknowledged = try await redis.command("WAIT", RedisArgument(replicas), milliseconds).integer ?? 0
            guard acknowledged >= Int64(replicas) else {
                throw RedisError(
                    code: .timeout,
                    message:
                        "WAIT: \(acknowledged) of \(replicas) replica(s) had the chunk within \(timeout); not acknowledged, trying again",
                    command: "WAIT")
            }
        }
    }
}
