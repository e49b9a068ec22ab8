import Logging
import PGEvents
import PGEventsRedis

/// Reads the configured streams with blocking `XREAD` on a connection of its own and publishes every entry to
/// the hub, in order. It starts at each stream's last entry (clients that want older ones ask with `since`), and
/// after a Redis failure reconnects and goes on from the last entry it read, so live clients miss nothing.
///
/// On a Redis Cluster one `XREAD` names keys of one hash slot only, so the streams are read in groups of one slot
/// each, every group on its own blocking connection (a stream's own order is kept; across groups, entries go out
/// as they are read).
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
        let connection = try await RedisSink.connect(readerConfiguration, logger: logger)
        do {
            var positions: [String: StreamID] = [:]
            for stream in streams {
                let reply = try await connection.command(
                    ["XREVRANGE", RedisArgument(stream.key), "+", "-", "COUNT", "1"], slotOf: stream.key)
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

    /// The streams one `XREAD` reads together: all of them on one server, those of one hash slot on a cluster.
    var readGroups: [[ServeConfiguration.Stream]] {
        guard redis.isCluster else { return [streams] }
        var groups: [Int: [ServeConfiguration.Stream]] = [:]
        for stream in streams { groups[RedisHashSlot.of(stream.key), default: []].append(stream) }
        return groups.keys.sorted().compactMap { groups[$0] }
    }

    /// Reads and publishes until `isStopping` says so (checked after every XREAD, so within `block` seconds).
    func run(from start: [String: StreamID], isStopping: @escaping @Sendable () -> Bool) async {
        let groups = readGroups
        guard groups.count > 1 else { return await read(groups[0], from: start, isStopping: isStopping) }
        await withTaskGroup(of: Void.self) { group in
            for streams in groups {
                group.addTask { await read(streams, from: start, isStopping: isStopping) }
            }
        }
    }

    /// Reads `streams` together (one `XREAD` names them all) and publishes what it reads.
    private func read(
        _ streams: [ServeConfiguration.Stream], from start: [String: StreamID], isStopping: @Sendable () -> Bool
    ) async {
        var positions = start
        var connection: RedisSink?
        var backoff = 0.1
        let byKey = Dictionary(uniqueKeysWithValues: streams.map { ($0.key, $0) })
        while !isStopping() && !Task.isCancelled {
            do {
                if connection == nil {
                    connection = try await RedisSink.connect(readerConfiguration, logger: logger)
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
                let reply = try await redis.command(arguments, slotOf: streams[0].key)
                let entries = try StreamEntry.entries(fromRead: reply).sorted { $0.id < $1.id }
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
