import Logging
import PGEventsRedis

/// Reads the configured streams with blocking `XREAD` on a connection of its own and publishes every entry to
/// the hub, in order. It starts at each stream's last entry (clients that want older ones ask with `since`), and
/// after a Redis failure reconnects and goes on from the last entry it read, so live clients miss nothing.
struct StreamReader: Sendable {
    let redis: RedisConfiguration
    let streams: [ServeConfiguration.Stream]
    let block: Double
    let hub: ClientHub
    let logger: Logger
    /// Entries read at most per XREAD.
    let count: Int

    /// Connects and finds where each stream ends (the hub's starting positions); fails if Redis cannot be reached,
    /// so that a misconfigured gateway stops at once instead of serving nothing.
    func start() async throws -> [String: StreamID] {
        let connection = try await RedisConnection.connect(readerConfiguration, logger: logger)
        do {
            var positions: [String: StreamID] = [:]
            for stream in streams {
                let reply = try await connection.command("XREVRANGE", RedisArgument(stream.key), "+", "-", "COUNT", "1")
                positions[stream.key] = try StreamEntry.entries(stream: stream.key, from: reply).first?.id ?? .zero
            }
            await connection.close()
            hub.start(at: positions)
            return positions
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The connection's settings: a command may take as long as one XREAD waits, and then some.
    var readerConfiguration: RedisConfiguration {
        var configuration = redis
        configuration.commandTimeout = block + max(5, redis.commandTimeout ?? 0)
        return configuration
    }

    /// Reads and publishes until `isStopping` says so (checked after every XREAD, so within `block` seconds).
    func run(from start: [String: StreamID], isStopping: @Sendable () -> Bool) async {
        var positions = start
        var connection: RedisConnection?
        var backoff = 0.1
        let byKey = Dictionary(uniqueKeysWithValues: streams.map { ($0.key, $0) })
        while !isStopping() && !Task.isCancelled {
            do {
                if connection == nil {
                    connection = try await RedisConnection.connect(readerConfiguration, logger: logger)
                    logger.info("reading streams", metadata: ["streams": "\(streams.map(\.key))"])
                }
                guard let redis = connection else { continue }
                // At most a queue's worth per read, so that one read alone never overflows a client that keeps up.
                var arguments: [RedisArgument] = [
                    "XREAD", "COUNT", RedisArgument(count), "BLOCK", RedisArgument(Int((block * 1000).rounded())), "STREAMS",
                ]
                arguments += streams.map { RedisArgument($0.key) }
                arguments += streams.map { RedisArgument(positions[$0.key, default: .zero].description) }
                // XREAD answers stream by stream; across streams, the entries of one read go out in ID order (the
                // order Redis added them), each stream's own order unchanged.
                let entries = try StreamEntry.entries(fromRead: try await redis.command(arguments)).sorted { $0.id < $1.id }
                backoff = 0.1
                guard !entries.isEmpty else { continue }
                var events: [GatewayEvent] = []
                events.reserveCapacity(entries.count)
                for entry in entries {
                    guard let stream = byKey[entry.stream] else { continue }
                    events.append(GatewayEvent(entry: entry, stream: stream))
                    positions[entry.stream] = entry.id
                }
                hub.metrics.entriesRead.add(entries.count, ordering: .relaxed)
                hub.publish(events)
            } catch {
                logger.warning("reading streams failed; reconnecting", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
                if let connection { await connection.close() }
                connection = nil
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(backoff * 2, 5)
            }
        }
        if let connection { await connection.close() }
    }
}
