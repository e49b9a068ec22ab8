import PGEventsRedis

/// One entry of a Redis stream: its key, its ID and its fields.
public struct StreamEntry: Sendable, Equatable {
    /// The stream's key.
    public var stream: String
    /// The entry's ID.
    public var id: StreamID
    /// Its fields, by name (the processor writes each name once).
    public var fields: [String: String]

    /// An entry from its parts.
    public init(stream: String, id: StreamID, fields: [String: String]) {
        self.stream = stream
        self.id = id
        self.fields = fields
    }

    /// The entries of one stream as `XRANGE` returns them (`[[id, [field, value, …]], …]`).
    static func entries(stream: String, from reply: RedisReply) throws(StreamReplyError) -> [StreamEntry] {
        if reply.isNull { return [] }
        guard let items = reply.array else { throw StreamReplyError(description: "expected an array of entries, got \(reply)") }
        return try items.map { item throws(StreamReplyError) in
            guard let parts = item.array, parts.count == 2, let idText = parts[0].string, let id = StreamID(idText) else {
                throw StreamReplyError(description: "an entry of \(stream) is not [id, fields]")
            }
            var fields: [String: String] = [:]
            if let list = parts[1].array {
                guard list.count % 2 == 0 else {
                    throw StreamReplyError(description: "entry \(id) of \(stream) has an odd number of field items")
                }
                for index in stride(from: 0, to: list.count, by: 2) {
                    guard let name = list[index].string else { continue }
                    fields[name] = list[index + 1].string
                }
            }
            return StreamEntry(stream: stream, id: id, fields: fields)
        }
    }

    /// The entries of an `XREAD` reply (`[[key, entries], …]`, or null when the wait ended with nothing new).
    static func entries(fromRead reply: RedisReply) throws(StreamReplyError) -> [StreamEntry] {
        if reply.isNull { return [] }
        guard let streams = reply.array else { throw StreamReplyError(description: "expected an array of streams, got \(reply)") }
        var all: [StreamEntry] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let key = pair[0].string else {
                throw StreamReplyError(description: "a stream of the XREAD reply is not [key, entries]")
            }
            all += try entries(stream: key, from: pair[1])
        }
        return all
    }
}

/// A reply from Redis that is not shaped as a stream reply should be.
struct StreamReplyError: Error, CustomStringConvertible {
    var description: String
}
