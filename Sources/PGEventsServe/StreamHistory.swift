import Logging
import PGEvents
import PGEventsRedis

/// The entries a resuming client missed, read with `XRANGE` on a connection opened for that client and closed
/// when its replay ends.
struct StreamHistory: Sendable {
    let redis: RedisConfiguration
    let streams: [ServeConfiguration.Stream]
    let logger: Logger

    /// Something a replay hands to the client.
    enum Replayed: Sendable {
        case event(GatewayEvent)
        /// Entries after `since` may have been trimmed from `stream` (its MAXLEN) before the client came back.
        case gap(stream: String, since: StreamID)
    }

    /// Calls `deliver` for every entry after `since` up to and including `through` (the live feed's starting
    /// point), stream by stream in the configured order, and first with `.gap` for a stream whose missed entries
    /// were partly trimmed away.
    func replay(
        since: [String: StreamID], through: [String: StreamID], deliver: (Replayed) async throws -> Void
    ) async throws {
        let wanted = streams.filter { stream in
            guard let from = since[stream.key], let to = through[stream.key] else { return false }
            return from < to
        }
        guard !wanted.isEmpty else { return }
        let connection = try await RedisSink.connect(redis, logger: logger)
        do {
            for stream in wanted {
                guard var after = since[stream.key], let end = through[stream.key] else { continue }
                if try await Self.mayHaveLost(connection, stream.key, after: after) {
                    try await deliver(.gap(stream: stream.key, since: after))
                }
                while after < end {
                    let reply = try await connection.command(
                        ["XRANGE", RedisArgument(stream.key), RedisArgument("(\(after)"), RedisArgument(end.description), "COUNT", "500"],
                        slotOf: stream.key)
                    let entries = try StreamEntry.entries(stream: stream.key, from: reply)
                    guard let last = entries.last else { break }
                    for entry in entries { try await deliver(.event(GatewayEvent(entry: entry, stream: stream))) }
                    after = last.id
                }
            }
            await connection.close()
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Whether entries after `after` may have been trimmed away (MAXLEN): the stream no longer holds `after`
    /// itself and its oldest entry is younger. (Redis does not record what MAXLEN trimmed, only what XDEL
    /// deleted, so "may": the entry right after `after` could be the oldest kept.) `0-0` asks for everything kept.
    static func mayHaveLost(_ connection: RedisSink, _ key: String, after: StreamID) async throws -> Bool {
        guard after != .zero else { return false }
        let oldest = try StreamEntry.entries(
            stream: key, from: try await connection.command(["XRANGE", RedisArgument(key), "-", "+", "COUNT", "1"], slotOf: key))
        guard let first = oldest.first?.id, first > after else { return false }
        let kept = try await connection.command(
            ["XRANGE", RedisArgument(key), RedisArgument(after.description), RedisArgument(after.description)], slotOf: key)
        return try StreamEntry.entries(stream: key, from: kept).isEmpty
    }
}
