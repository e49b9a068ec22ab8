/// Where a client is in each stream it reads: the ID of the last entry it was sent, per stream key.
///
/// Written `ID` when the gateway reads a single stream, otherwise `key@ID` items joined by commas
/// (`gc2:changes@1714566896789-0,orders@1714566896790-3`); a stream not named starts at its live end. This is
/// the form of `since=` (WebSocket) and of the SSE event ID the browser sends back as `Last-Event-ID`.
public struct StreamCursor: Sendable, Equatable {
    /// The last entry sent, per stream key.
    public var positions: [String: StreamID]

    /// A cursor from positions.
    public init(_ positions: [String: StreamID] = [:]) {
        self.positions = positions
    }

    /// Why a cursor could not be read.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        /// What is wrong, naming the offending part.
        public var description: String
    }

    /// Parses a cursor for a gateway reading `streams` (the only keys it may name).
    public init(parsing text: String, streams: [String]) throws(ParseError) {
        var positions: [String: StreamID] = [:]
        if !text.contains("@") {
            guard streams.count == 1 else {
                throw ParseError(
                    description: "'\(text.prefix(80))' names no stream; this gateway reads \(streams.count) streams, so write key@ID,key@ID"
                )
            }
            guard let id = StreamID(text) else {
                throw ParseError(description: "'\(text.prefix(80))' is not a stream ID (milliseconds-sequence, e.g. 1714566896789-0)")
            }
            self.init([streams[0]: id])
            return
        }
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            guard let at = item.lastIndex(of: "@") else {
                throw ParseError(description: "'\(item.prefix(80))' is not key@ID")
            }
            let key = String(item[..<at])
            guard streams.contains(key) else {
                throw ParseError(description: "'\(key.prefix(80))' is not a stream this gateway reads (\(streams.joined(separator: ", ")))")
            }
            guard let id = StreamID(item[item.index(after: at)...]) else {
                throw ParseError(description: "'\(item[item.index(after: at)...].prefix(80))' is not a stream ID (milliseconds-sequence)")
            }
            guard positions.updateValue(id, forKey: key) == nil else {
                throw ParseError(description: "stream '\(key.prefix(80))' is named twice")
            }
        }
        self.init(positions)
    }

    /// The cursor's text for a gateway reading `streams` (bare ID when there is one stream).
    public func text(streams: [String]) -> String {
        if streams.count == 1, let id = positions[streams[0]] { return id.description }
        return streams.compactMap { key in positions[key].map { "\(key)@\($0)" } }.joined(separator: ",")
    }
}
