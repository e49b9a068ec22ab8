import Foundation
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal WebSocket client on a blocking socket, run on a Dispatch thread (never on Swift's cooperative pool,
/// which the gateway under test shares): what a browser does, frame by frame. The tests use it for refusals —
/// swift-websocket's client (1.6.2) can lose frames that arrive in the same read as the 101 response, which is
/// exactly when a refused client's error message arrives.
final class RawWebSocket: @unchecked Sendable {
    // Used by one Dispatch thread at a time (`run`), so nothing is shared.
    private let socket: Int32
    private var buffer: [UInt8] = []

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Connects to 127.0.0.1:`port`, sends the upgrade for `pathAndQuery`, and checks the 101.
    init(port: Int, pathAndQuery: String, timeoutSeconds: Int = 30) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket: \(errno)") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            throw Failure(description: "connect: \(errno)")
        }
        let request =
            "GET \(pathAndQuery) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try write(Array(request.utf8))
        let head = try readHead()
        guard head.hasPrefix("HTTP/1.1 101") else {
            close(socket)
            throw Failure(description: "no upgrade: \(head.prefix(200))")
        }
    }

    deinit { close(socket) }

    /// Reads text messages until the server closes (answering pings, unless `answerPings` is false: a client whose
    /// side hung), or `until` says it has enough.
    func transcript(answerPings: Bool = true, until done: ([String]) -> Bool = { _ in false }) throws -> WebSocketTranscript {
        var transcript = WebSocketTranscript(messages: [])
        while !done(transcript.messages) {
            let (opcode, payload) = try readFrame()
            switch opcode {
            case 0x1: transcript.messages.append(String(decoding: payload, as: UTF8.self))
            case 0x8:
                if payload.count >= 2 {
                    transcript.closeCode = Int(payload[0]) << 8 | Int(payload[1])
                    transcript.closeReason = String(decoding: payload.dropFirst(2), as: UTF8.self)
                }
                try? sendFrame(opcode: 0x8, payload: Array(payload.prefix(2)))
                return transcript
            case 0x9 where answerPings:
                try sendFrame(opcode: 0xA, payload: payload)
                transcript.pingsAnswered += 1
            case 0x9:
                transcript.pingsIgnored += 1
            default: continue
            }
        }
        try? sendFrame(opcode: 0x8, payload: [0x03, 0xE8])
        return transcript
    }

    /// Sends a text message.
    func send(_ text: String) throws { try sendFrame(opcode: 0x1, payload: Array(text.utf8)) }

    /// The next text message (pings answered on the way); nil when the server closes.
    func receiveText() throws -> String? {
        while true {
            let (opcode, payload) = try readFrame()
            switch opcode {
            case 0x1: return String(decoding: payload, as: UTF8.self)
            case 0x8:
                try? sendFrame(opcode: 0x8, payload: Array(payload.prefix(2)))
                return nil
            case 0x9: try sendFrame(opcode: 0xA, payload: payload)
            default: continue
            }
        }
    }

    /// Runs `body` with a connection on a Dispatch thread.
    static func run<T: Sendable>(port: Int, pathAndQuery: String, _ body: @escaping @Sendable (RawWebSocket) throws -> T) async throws -> T
    {
        try await onBlockingThread { try body(try RawWebSocket(port: port, pathAndQuery: pathAndQuery)) }
    }

    /// Runs `body` on a thread of its own (the socket calls block).
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await onBlockingThread(body)
    }

    /// Ends the connection at once, without a close frame (a client that goes away).
    func closeNow() { shutdown(socket, Int32(SHUT_RDWR)) }

    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65_536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xFF)) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try write(frame)
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw Failure(description: "send: \(errno)") }
            offset += sent
        }
    }

    private func fill(_ count: Int) throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while buffer.count < count {
            let received = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            guard received > 0 else {
                throw Failure(description: received == 0 ? "the server closed the connection" : "recv: \(errno) (timed out?)")
            }
            buffer += chunk[..<received]
        }
    }

    private func take(_ count: Int) throws -> [UInt8] {
        try fill(count)
        defer { buffer.removeFirst(count) }
        return Array(buffer[..<count])
    }

    private func readHead() throws -> String {
        while true {
            if let end = buffer.indices.dropLast(3).first(where: {
                buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10
            }) {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                return head
            }
            try fill(buffer.count + 1)
        }
    }

    private func readFrame() throws -> (UInt8, [UInt8]) {
        let header = try take(2)
        var length = Int(header[1] & 0x7F)
        if length == 126 {
            let bytes = try take(2)
            length = Int(bytes[0]) << 8 | Int(bytes[1])
        } else if length == 127 {
            length = try take(8).reduce(0) { $0 << 8 | Int($1) }
        }
        return (header[0] & 0x0F, try take(length))
    }
}
