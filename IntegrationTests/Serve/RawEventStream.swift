import Foundation
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal SSE client on a blocking socket, run on a Dispatch thread: the response status, and the events
/// (ID, name, data) until `until` says it has enough or the server ends the response.
enum RawEventStream {
    struct Event: Sendable, Equatable {
        var id: String?
        var name: String?
        var data: String
    }

    struct Response: Sendable {
        var status: Int
        var events: [Event]
        /// The body, for a response that is not an event stream.
        var body: String
    }

    static func get(
        port: Int, pathAndQuery: String, headers: [String: String] = [:],
        until done: @escaping @Sendable ([Event]) -> Bool = { _ in false }
    ) async throws -> Response {
        try await onBlockingThread { try read(port: port, pathAndQuery: pathAndQuery, headers: headers, until: done) }
    }

    private static func read(port: Int, pathAndQuery: String, headers: [String: String], until done: ([Event]) -> Bool) throws -> Response {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawWebSocket.Failure(description: "socket: \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw RawWebSocket.Failure(description: "connect: \(errno)") }
        var request = "GET \(pathAndQuery) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        _ = request.utf8CString.withUnsafeBytes { send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        var text = ""
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var events: [Event] = []
        while true {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received <= 0 { break }
            text += String(decoding: chunk[..<received], as: UTF8.self)
            events = parse(text)
            if done(events) { break }
            // A refusal's body is complete once its Content-Length is.
            if !text.contains("text/event-stream"), let split = text.range(of: "\r\n\r\n"),
                let length = text[..<split.lowerBound].split(separator: "\r\n").first(where: {
                    $0.lowercased().hasPrefix("content-length:")
                })
                .flatMap({ Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }),
                text[split.upperBound...].utf8.count >= length
            {
                break
            }
        }
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Response(status: status, events: events, body: body)
    }

    /// Events in a (chunked) SSE body: `id:`, `event:` and `data:` lines; an event ends with its data line
    /// (the gateway writes one data line per event, last).
    static func parse(_ text: String) -> [Event] {
        var events: [Event] = []
        var id: String?
        var name: String?
        for line in text.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("id: ") {
                id = String(line.dropFirst(4))
            } else if line.hasPrefix("event: ") {
                name = String(line.dropFirst(7))
            } else if line.hasPrefix("data: ") {
                events.append(Event(id: id, name: name, data: String(line.dropFirst(6))))
                id = nil
                name = nil
            }
        }
        return events
    }
}
