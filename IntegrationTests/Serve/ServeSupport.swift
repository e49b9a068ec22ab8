import Foundation
import HummingbirdWSClient
import JWTKit
import Logging
import NIOWebSocket
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import ServiceLifecycle
import Synchronization
import Testing

@testable import PGEventsServe

/// The HMAC secret the tests sign with (the gateway reads it from the environment it is given).
let testSecret = "a test secret that is long enough for HS256!"

/// A running gateway in this process, on a port of its own.
struct RunningGateway: Sendable {
    let port: Int
    let service: ServeService
    /// Starts the gateway's graceful shutdown (as SIGTERM would); `withGateway` waits for it to end.
    let shutDown: @Sendable () async -> Void

    var metrics: GatewayMetrics { service.gateway.metrics }

    func url(_ path: String, _ query: [String: String] = [:]) -> String {
        var components = URLComponents()
        components.scheme = "ws"
        components.host = "127.0.0.1"
        components.port = port
        components.path = path
        if !query.isEmpty { components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) } }
        // '+' is a space in a query; encode it, as browsers' encodeURIComponent does.
        return components.string!.replacingOccurrences(of: "+", with: "%2B")
    }

    /// Waits (checking every 10 ms, at most 30 s) until `condition` holds for the metrics; throws naming `what`.
    func waitFor(_ what: String, _ condition: @escaping @Sendable (GatewayMetrics) -> Bool) async throws {
        let metrics = self.metrics
        do {
            try await withTimeout(30) {
                while !condition(metrics) { try await Task.sleep(for: .milliseconds(10)) }
            }
        } catch is TimeoutError {
            Issue.record("waited 30 s for \(what); metrics: \(metrics.prometheusText)")
            throw TimeoutError(seconds: 30, awaited: what, seen: [])
        }
    }

    /// The path and query of `url(path, query)`, for a raw request.
    func pathAndQuery(_ path: String, _ query: [String: String] = [:]) -> String {
        let full = url(path, query)
        return String(
            full[full.range(of: "/", options: [], range: full.index(full.startIndex, offsetBy: 5)..<full.endIndex)!.lowerBound...])
    }

    func httpURL(_ path: String, _ query: [String: String] = [:]) -> URL {
        URL(string: "http" + url(path, query).dropFirst(2))!
    }
}

/// A serve.yml for tests: one stream, a short XREAD wait, the HMAC secret from `PGEVENTS_TEST_SECRET`.
func testConfiguration(
    streams: [ServeConfiguration.Stream], queue: Int = 1024, sql: ServeConfiguration.SQL = .init(), closeTimeout: Double = 10
) -> ServeConfiguration {
    ServeConfiguration(
        host: "127.0.0.1", port: 0, streams: streams,
        auth: .init(algorithm: .hs256, key: .environment("PGEVENTS_TEST_SECRET")),
        clients: .init(queue: queue, maxConnections: 100, maxMessageBytes: 4096, pingInterval: 5, block: 0.2, closeTimeout: closeTimeout),
        sql: sql)
}

/// Starts a gateway, runs `body` with it, then shuts it down gracefully (and waits until it has stopped).
func withGateway<T: Sendable>(
    _ configuration: ServeConfiguration, databaseURL: String, redis: RedisConfiguration,
    _ body: @Sendable (RunningGateway) async throws -> T
) async throws -> T {
    var logger = Logger(label: "test.serve")
    logger.logLevel = ProcessInfo.processInfo.environment["PGEVENTS_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
    let (ports, portContinuation) = AsyncStream<Int>.makeStream()
    let service = try await ServeService(
        configuration: configuration, databaseURL: databaseURL, redis: redis, logger: logger,
        environment: ["PGEVENTS_TEST_SECRET": testSecret]
    ) { port in
        portContinuation.yield(port)
    }
    let group = ServiceGroup(configuration: .init(services: [.init(service: service)], logger: logger))
    return try await withThrowingTaskGroup(of: T?.self) { tasks in
        tasks.addTask {
            try await group.run()
            return nil
        }
        do {
            let port = try await withTimeout(30) {
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else { throw CancellationError() }
                return port
            }
            let value = try await body(RunningGateway(port: port, service: service, shutDown: { await group.triggerGracefulShutdown() }))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return value
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

/// Signs a token with `testSecret` (HS256 unless another key is given): `exp` an hour ahead unless given.
func makeToken(_ claims: [String: JSONValue], keys: JWTKeyCollection? = nil) async throws -> String {
    var claims = claims
    if claims["exp"] == nil { claims["exp"] = .number(Date().timeIntervalSince1970 + 3600) }
    let collection: JWTKeyCollection
    if let keys {
        collection = keys
    } else {
        collection = JWTKeyCollection()
        await collection.add(hmac: HMACKey(from: testSecret), digestAlgorithm: .sha256)
    }
    return try await collection.sign(ClaimsPayload(claims: claims))
}

/// What a WebSocket client saw: the text messages, in order, and the close frame the server sent.
struct WebSocketTranscript: Sendable {
    var messages: [String]
    var closeCode: Int?
    var closeReason: String?
    /// Pings the server sent and the client answered (the raw client only).
    var pingsAnswered = 0
    /// Pings the server sent that the client did not answer (the raw client only).
    var pingsIgnored = 0

    var json: [JSONValue] { messages.compactMap(JSONValue.parse) }
}

/// Connects to `url`, optionally sends `send`, and reads text messages until `until` says it has enough (then
/// closes) or the server closes. Bounded by `within` seconds so it cannot hang.
func webSocket(
    _ url: String, send: [String] = [], within seconds: Double = 30,
    until done: @escaping @Sendable ([String]) -> Bool = { _ in false }
) async throws -> WebSocketTranscript {
    let received = Mutex<[String]>([])
    var configuredLogger = Logger(label: "test.ws")
    configuredLogger.logLevel =
        ProcessInfo.processInfo.environment["PGEVENTS_TEST_CLIENT_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
    let clientLogger = configuredLogger
    let close = try await withTimeout(seconds) {
        try await WebSocketClient.connect(
            url: url, configuration: .init(maxFrameSize: 1 << 22), logger: clientLogger
        ) { inbound, outbound, _ in
            for text in send { try await outbound.write(.text(text)) }
            if done([]) { return }
            for try await message in inbound.messages(maxSize: 1 << 24) {
                guard case .text(let text) = message else { continue }
                let all = received.withLock {
                    $0.append(text)
                    return $0
                }
                if done(all) { return }
            }
        }
    }
    return WebSocketTranscript(
        messages: received.withLock { $0 }, closeCode: close.map { Int(UInt16(webSocketErrorCode: $0.closeCode)) },
        closeReason: close?.reason)
}

/// Appends an entry to a stream as the processor's `sink: stream` does for a single job.
@discardableResult
func addJob(_ redis: RedisConnection, stream: String, channel: String = "changes", payload: String, maxLength: Int? = nil) async throws
    -> String
{
    try #require(try await redis.command(jobEntry(stream: stream, channel: channel, payload: payload, maxLength: maxLength)).string)
}

/// The `XADD` of a single job's entry, as the processor's `sink: stream` writes it.
func jobEntry(stream: String, channel: String = "changes", payload: String, maxLength: Int? = nil) -> [RedisArgument] {
    var arguments: [RedisArgument] = ["XADD", RedisArgument(stream)]
    if let maxLength { arguments += ["MAXLEN", RedisArgument(maxLength)] }
    return arguments + [
        "*", "seq", "1", "channel", RedisArgument(channel), "payload", RedisArgument(payload), "created_at", "2026-01-01T00:00:00Z",
    ]
}
