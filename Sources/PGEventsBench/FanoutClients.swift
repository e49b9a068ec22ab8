import CEpoll
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// WebSocket clients of `pgevents serve` inside the bench process, over real sockets: one thread, non-blocking
/// sockets and epoll, so 10,000 clients cost one thread and their buffers (a thread per client would not scale).
/// Each client connects to `path`, reads text messages and stamps the wall-clock time each was read at; pings
/// are answered. A slow client stops reading once connected (its receive buffer kept small), so the gateway's
/// writes to it back up while the others read.
final class FanoutClients: @unchecked Sendable {
    // `clients` belongs to the loop's thread while it runs; `stop()` waits for the thread to end before it
    // hands them out (the semaphore orders the two).
    private var clients: [Client]
    private let port: Int
    private let request: [UInt8]
    private let stopping = Atomic<Bool>(false)
    private let ended = DispatchSemaphore(value: 0)
    /// Clients whose upgrade was answered with 101.
    let connected = Atomic<Int>(0)
    /// Clients that could not connect (refused, reset, not upgraded), or that the gateway closed.
    let failed = Atomic<Int>(0)
    /// Text messages read, by every client but the slow ones.
    let messages = Atomic<Int>(0)

    private enum State {
        case waiting, connecting, upgrading, open, closed
    }

    private struct Client {
        var fd: Int32 = -1
        var state = State.waiting
        var slow: Bool
        var inbox: [UInt8] = []
        /// When each text message was read (wall clock, ns).
        var times: [Int64] = []
        var closeCode: Int?
    }

    /// What the clients saw, once stopped.
    struct Outcome {
        /// Per client, when each text message was read (wall clock, ns); slow clients' are left out.
        var times: [[Int64]]
        /// The slow clients': messages read before they stopped reading.
        var slowMessages: [Int]
        /// Close codes the gateway sent, by code.
        var closeCodes: [Int: Int]
    }

    /// `count` clients of 127.0.0.1:`port` at `path` (`/broadcast?token=…`), of which the first `slow` stop
    /// reading once connected; each expects about `expected` messages (room is reserved for them).
    init(port: Int, path: String, count: Int, slow: Int = 0, expected: Int = 0) {
        self.port = port
        request = Array(
            ("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8)
        clients = (0..<count).map { index in
            var client = Client(slow: index < slow)
            client.times.reserveCapacity(expected)
            return client
        }
    }

    /// Starts the thread that connects the clients (at most 200 handshakes at a time) and reads.
    func start() {
        let thread = Thread { [self] in
            loop()
            ended.signal()
        }
        thread.name = "pgevents-bench-fanout-clients"
        thread.start()
    }

    /// Stops reading, closes every socket, and returns what the clients saw.
    func stop() async -> Outcome {
        stopping.store(true, ordering: .releasing)
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { [self] in
                ended.wait()
                continuation.resume()
            }
        }
        var codes: [Int: Int] = [:]
        for client in clients { if let code = client.closeCode { codes[code, default: 0] += 1 } }
        return Outcome(
            times: clients.filter { !$0.slow }.map(\.times), slowMessages: clients.filter(\.slow).map(\.times.count), closeCodes: codes)
    }

    // MARK: The loop (its own thread)

    private func loop() {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else {
            failed.add(clients.count, ordering: .relaxed)
            return
        }
        defer {
            for index in clients.indices where clients[index].fd >= 0 { close(clients[index].fd) }
            close(epoll)
        }
        var next = 0
        var handshaking = 0
        var events = [epoll_event](repeating: epoll_event(), count: 1024)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while !stopping.load(ordering: .acquiring) {
            while handshaking < 200, next < clients.count {
                if open(next, epoll: epoll) { handshaking += 1 }
                next += 1
            }
            let ready = epoll_wait(epoll, &events, Int32(events.count), 50)
            guard ready > 0 else { continue }
            let now = wallNanoseconds()
            for event in events[0..<Int(ready)] {
                let index = Int(event.data.u64)
                let before = clients[index].state
                handle(index, events: event.events, epoll: epoll, chunk: &chunk, now: now)
                let after = clients[index].state
                if before == .connecting || before == .upgrading, after == .open || after == .closed { handshaking -= 1 }
            }
        }
    }

    private func open(_ index: Int, epoll: Int32) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            clients[index].state = .closed
            failed.add(1, ordering: .relaxed)
            return false
        }
        if clients[index].slow {
            var size: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 || errno == EINPROGRESS else {
            close(fd)
            clients[index].state = .closed
            failed.add(1, ordering: .relaxed)
            return false
        }
        clients[index].fd = fd
        clients[index].state = .connecting
        var event = epoll_event()
        event.events = EPOLLOUT.rawValue | EPOLLIN.rawValue
        event.data.u64 = UInt64(index)
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
        return true
    }

    private func fail(_ index: Int) {
        if clients[index].fd >= 0 { close(clients[index].fd) }
        clients[index].fd = -1
        clients[index].state = .closed
        failed.add(1, ordering: .relaxed)
    }

    private func handle(_ index: Int, events: UInt32, epoll: Int32, chunk: inout [UInt8], now: Int64) {
        let fd = clients[index].fd
        guard fd >= 0 else { return }
        switch clients[index].state {
        case .connecting:
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 { return fail(index) }
            guard events & EPOLLOUT.rawValue != 0 else { return }
            let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent == request.count else { return fail(index) }  // a few hundred bytes into an empty buffer
            clients[index].state = .upgrading
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.u64 = UInt64(index)
            epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event)
        case .upgrading, .open:
            while true {
                let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if received < 0, errno == EAGAIN || errno == EWOULDBLOCK { break }
                guard received > 0 else { return fail(index) }
                clients[index].inbox += chunk[0..<received]
                if clients[index].state == .upgrading {
                    guard upgrade(index, epoll: epoll) else { return }
                }
                if clients[index].state == .open { frames(index, now: now) }
                if clients[index].fd < 0 || clients[index].slow || received < chunk.count { break }
            }
        case .waiting, .closed:
            break
        }
    }

    /// Takes the HTTP answer off the inbox once complete; false while incomplete or when refused.
    private func upgrade(_ index: Int, epoll: Int32) -> Bool {
        let inbox = clients[index].inbox
        guard let end = inbox.firstRange(of: [13, 10, 13, 10]) else { return false }
        guard inbox.starts(with: Array("HTTP/1.1 101".utf8)) else {
            fail(index)
            return false
        }
        clients[index].inbox.removeFirst(end.upperBound)
        clients[index].state = .open
        connected.add(1, ordering: .relaxed)
        if clients[index].slow {
            // Reads nothing more: what the gateway sends backs up in the socket's buffers, then in the gateway.
            var ignored = epoll_event()
            epoll_ctl(epoll, EPOLL_CTL_DEL, clients[index].fd, &ignored)
        }
        return true
    }

    /// Reads the complete frames in the inbox: text messages stamped, pings answered, a close noted.
    private func frames(_ index: Int, now: Int64) {
        // Taken out of the array while parsed, so that removing what was read copies nothing.
        var inbox: [UInt8] = []
        swap(&inbox, &clients[index].inbox)
        var offset = 0
        var texts = 0
        var pings: [[UInt8]] = []
        var closeCode: Int?
        while inbox.count - offset >= 2 {
            let opcode = inbox[offset] & 0x0F
            var length = Int(inbox[offset + 1] & 0x7F)
            var header = 2
            if length == 126 {
                guard inbox.count - offset >= 4 else { break }
                length = Int(inbox[offset + 2]) << 8 | Int(inbox[offset + 3])
                header = 4
            } else if length == 127 {
                guard inbox.count - offset >= 10 else { break }
                length = (2..<10).reduce(0) { $0 << 8 | Int(inbox[offset + $1]) }
                header = 10
            }
            guard inbox.count - offset >= header + length else { break }
            let payload = offset + header
            switch opcode {
            case 0x1: texts += 1
            case 0x8: closeCode = length >= 2 ? Int(inbox[payload]) << 8 | Int(inbox[payload + 1]) : 1005
            case 0x9: pings.append(Array(inbox[payload..<payload + length]))
            default: break
            }
            offset = payload + length
        }
        inbox.removeFirst(offset)
        swap(&inbox, &clients[index].inbox)
        for ping in pings { pong(clients[index].fd, ping) }
        if texts > 0 {
            clients[index].times.append(contentsOf: repeatElement(now, count: texts))
            if !clients[index].slow { messages.add(texts, ordering: .relaxed) }
        }
        if let closeCode {
            clients[index].closeCode = closeCode
            fail(index)
        }
    }

    /// Answers a ping (client frames are masked; a zero mask leaves the payload as it is).
    private func pong(_ fd: Int32, _ payload: [UInt8]) {
        guard payload.count < 126 else { return }
        let frame: [UInt8] = [0x8A, 0x80 | UInt8(payload.count), 0, 0, 0, 0] + payload
        _ = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    private func wallNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
