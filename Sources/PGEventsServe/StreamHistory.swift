public import Logging
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
        /// Entries after `since` were trimmed from `stream` (its MAXLEN) before the client came back.
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
        let connection = try await RedisConnection.connect(redis, logger: logger)
        do {
            for stream in wanted {
                guard var after = since[stream.key], let end = through[stream.key] else { continue }
                if let trimmed = try await Self.maxDeletedID(connection, stream.key), trimmed > after {
                    try await deliver(.gap(stream: stream.key, since: after))
                }
                while after < end {
                    let reply = try await connection.command(
                        "XRANGE", RedisArgument(stream.key), RedisArgument("(\(after)"), RedisArgument(end.description), "COUNT", "500")
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

    /// The highest ID ever trimmed or deleted from the stream (`XINFO STREAM`'s `max-deleted-entry-id`).
    static func maxDeletedID(_ connection: RedisConnection, _ key: String) async throws -> StreamID? {
        let reply = try await connection.command("XINFO", "STREAM", RedisArgument(key))
        guard let items = reply.array else { return nil }
        for index in stride(from: 0, to: items.count - 1, by: 2) where items[index].string == "max-deleted-entry-id" {
            return items[index + 1].string.flatMap { StreamID($0) }
        }
        return nil
    }
}
