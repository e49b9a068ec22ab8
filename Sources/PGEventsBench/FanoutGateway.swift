import Foundation
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `pgevents serve` run by `bench fanout` as a child process, so that its resident size is its own: a
/// configuration of one stream in a private temporary directory, the URLs and the secret in its environment (never
/// on its command line), a port of its own; stopped with SIGTERM (graceful), then SIGKILL.
final class FanoutGateway: Sendable {
    let port: Int
    let child: ChildProcess
    let directory: String

    private init(port: Int, child: ChildProcess, directory: String) {
        self.port = port
        self.child = child
        self.directory = directory
    }

    /// Starts the gateway fanning out `stream` and waits (at most 30 s) until it answers `/ping`.
    static func start(
        executable: String, stream: String, database: PostgresConfiguration, redis: RedisConfiguration, secret: String,
        maxConnections: Int
    ) async throws -> FanoutGateway {
        var template = Array("\(temporaryDirectory)/pgevents-bench-fanout-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SystemError(call: "mkdtemp", errno: errno)
        }
        let directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        do {
            let port = try freePort()
            let configuration = """
                listen: {host: 127.0.0.1, port: \(port)}
                streams:
                  - key: "\(stream)"
                auth:
                  algorithm: HS256
                  key: {env: PGEVENTS_JWT_SECRET}
                clients: {queue: 1024, max_connections: \(maxConnections), ping_interval: 600, block: 1}
                """
            try configuration.write(toFile: directory + "/serve.yml", atomically: true, encoding: .utf8)
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = database.conninfoIncludingSecrets
            environment["REDIS_URL"] = redis.urlIncludingSecrets
            environment["PGEVENTS_JWT_SECRET"] = secret
            let child = try ChildProcess.spawn(
                executable, ["serve", "--config", directory + "/serve.yml", "--log-level", "warning"], outputPath: directory + "/serve.log",
                outputMode: 0o600, environment: environment)
            let gateway = FanoutGateway(port: port, child: child, directory: directory)
            let deadline = ContinuousClock.now + .seconds(30)
            while (try? await gateway.get("/ping")) != "pong" {
                if let termination = child.poll() {
                    throw GatewayFailure(
                        description:
                            "pgevents serve exited at start (\(termination)): \(tailOfFile(directory + "/serve.log", maxLines: 10))")
                }
                guard ContinuousClock.now < deadline else {
                    await gateway.stop()
                    throw GatewayFailure(description: "pgevents serve did not answer /ping within 30 s")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            return gateway
        } catch {
            _ = try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    struct GatewayFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// The gateway's resident size (`VmRSS` of /proc/<pid>/status), in kB.
    func residentKilobytes() -> Int? {
        guard let status = try? readFile("/proc/\(child.pid)/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    /// `/metrics`, by name; empty when it does not answer.
    func metrics() async -> [String: Double] {
        guard let text = try? await get("/metrics") else { return [:] }
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
        }
        return values
    }

    /// Waits until the gateway counts `count` connected clients.
    func waitForConnections(_ count: Int, within seconds: Double) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            let now = await metrics()["pgevents_serve_connections"].map { Int($0) }
            if now == count { return }
            guard ContinuousClock.now < deadline else {
                throw GatewayFailure(
                    description: "the gateway counted \(now.map(String.init) ?? "?") clients, not \(count), after \(seconds) s")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Stops the gateway (SIGTERM; SIGKILL after 10 s) and removes its directory.
    func stop() async {
        let child = self.child
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                child.kill(SIGTERM)
                let deadline = DispatchTime.now().uptimeNanoseconds + 10_000_000_000
                while child.poll() == nil {
                    if DispatchTime.now().uptimeNanoseconds > deadline {
                        child.kill(SIGKILL)
                        _ = child.wait()
                        break
                    }
                    usleep(10_000)
                }
                continuation.resume()
            }
        }
        _ = try? FileManager.default.removeItem(atPath: directory)
    }

    /// The body of a GET on the gateway (blocking socket, 5 s timeouts, on a Dispatch thread).
    func get(_ path: String) async throws -> String {
        let port = self.port
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Self.blockingGet(port: port, path: path) })
            }
        }
    }

    private static func blockingGet(port: Int, path: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemError(call: "socket", errno: errno) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw SystemError(call: "connect", errno: errno) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { break }
            response += chunk[0..<received]
        }
        guard let end = response.firstRange(of: [13, 10, 13, 10]), response.starts(with: Array("HTTP/1.1 200".utf8)) else {
            throw GatewayFailure(description: "GET \(path): no 200 answer")
        }
        let head = String(decoding: response[..<end.lowerBound], as: UTF8.self).lowercased()
        let body = Array(response[end.upperBound...])
        // Hummingbird answers small bodies with Content-Length; a chunked one is undone here.
        guard head.contains("transfer-encoding: chunked") else { return String(decoding: body, as: UTF8.self) }
        var text: [UInt8] = []
        var rest = body[...]
        while let line = rest.firstRange(of: [13, 10]),
            let size = Int(String(decoding: rest[..<line.lowerBound], as: UTF8.self), radix: 16),
            size > 0
        {
            let start = line.upperBound
            text += rest[start..<min(start + size, rest.endIndex)]
            rest = rest[min(start + size + 2, rest.endIndex)...]
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func loopback(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A TCP port of 127.0.0.1 that was free a moment ago.
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemError(call: "socket", errno: errno) }
        defer { close(fd) }
        var address = loopback(0)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw SystemError(call: "bind", errno: errno) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
