import Foundation
import Hummingbird
public import Logging
import NIOCore
public import PGEvents
public import PGEventsRedis
public import ServiceLifecycle

/// The processor's HTTP endpoints (`pgevents process --http HOST:PORT`), for scrapers and probes:
///
/// - `GET /metrics`: every metric in the Prometheus text format.
/// - `GET /healthz`: 200 while the processor runs (also while it stops gracefully); 503 once it stopped or failed.
/// - `GET /readyz`: 200 when this instance is the leader and delivering, or a healthy standby (the body says which),
///   with its listener connected and Redis answering a `PING`; else 503 with the reason.
/// - `GET /status`: the processor's state as a JSON object.
///
/// Every answer is small and says in its first line what it found, so `curl -f` works as a probe. A service-lifecycle
/// `Service`: on graceful shutdown the server stops accepting connections and finishes the requests in flight. Run it
/// in the same `ServiceGroup` as the processor, before it, so that it answers while the processor stops.
public struct ProcessHTTPService: Service {
    /// Where to listen.
    public var host: String
    /// The port; 0 takes a free one (logged, and passed to `onListening`).
    public var port: Int
    public let status: ProcessorStatus
    public let metrics: ProcessMetrics
    /// The Redis `/readyz` sends its `PING` to: the processor's.
    public let redis: RedisConfiguration
    private let logger: Logger
    private let onListening: @Sendable (Int) async -> Void

    public init(
        host: String, port: Int, status: ProcessorStatus, metrics: ProcessMetrics, redis: RedisConfiguration, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.status = status
        self.metrics = metrics
        self.redis = redis
        self.logger = logger
        self.onListening = onListening
    }

    /// `HOST:PORT` (`[v6]:PORT` for an IPv6 address) as host and port; nil when it is not that.
    public static func address(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0.isWhitespace }) else { return nil }
        return (host, port)
    }

    public func run() async throws {
        let probe = RedisProbe(configuration: redis, logger: logger)
        let status = status
        let metrics = metrics
        let router = Router()
        router.get("/metrics") { _, _ in
            Self.response(.ok, metrics.render(), contentType: ProcessMetrics.contentType)
        }
        router.get("/healthz") { _, _ in
            let snapshot = status.snapshot
            switch snapshot.role {
            case .stopped, .failed:
                return Self.response(.serviceUnavailable, "\(snapshot.role.rawValue)" + (snapshot.problem.map { ": \($0)" } ?? ""))
            default:
                return Self.response(.ok, "ok: \(snapshot.role.rawValue)")
            }
        }
        router.get("/readyz") { _, _ in
            let snapshot = status.snapshot
            let redis = await probe.ping()
            let (ready, reason) = snapshot.readiness(redis: redis)
            return Self.response(ready ? .ok : .serviceUnavailable, reason)
        }
        router.get("/status") { _, _ in
            let snapshot = status.snapshot
            let redis = await probe.ping()
            return Self.response(.ok, Self.statusJSON(snapshot, redis: redis), contentType: "application/json")
        }
        let logger = logger
        let onListening = onListening
        let host = host
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "pgevents"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("http listening", metadata: ["host": "\(host)", "port": "\(port)"])
                await onListening(port)
            },
            logger: logger
        )
        try await application.run()
        await probe.close()
    }

    private static func response(_ status: HTTPResponse.Status, _ text: String, contentType: String = "text/plain; charset=utf-8")
        -> Response
    {
        let body = text.hasSuffix("\n") ? text : text + "\n"
        return Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// `/status`: `{"state", "ready", "reason", "consumer", "source", "listener", "reconnects", "delivered",
    /// "last_delivered", "backlog", "backlog_sampled_at", "problem", "leader_holder", "redis"}`; absent values are null.
    static func statusJSON(_ snapshot: ProcessorStatus.Snapshot, redis: Result<Void, any Error>?) -> String {
        let (ready, reason) = snapshot.readiness(redis: redis)
        let dates = ISO8601DateFormatter()
        dates.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func optional(_ value: Any?) -> Any { value ?? NSNull() }
        let listener: Any =
            snapshot.hasListener
            ? [
                "state": optional(snapshot.listener?.name), "connected": snapshot.listener?.isConnected ?? false,
                "detail": optional(snapshot.listener?.description),
            ] as [String: Any] : NSNull()
        let lastDelivered: Any =
            snapshot.lastDelivered.map { position in
                ["batch": position.batch, "seq": position.seq, "at": dates.string(from: position.at)] as [String: Any]
            } ?? NSNull()
        let redisText: String =
            switch redis {
            case .none: "not checked"
            case .success: "ok"
            case .failure(let error): "error: \(error)"
            }
        let object: [String: Any] = [
            "state": snapshot.role.rawValue, "ready": ready, "reason": reason, "consumer": snapshot.consumer, "source": snapshot.source,
            "listener": listener, "reconnects": snapshot.reconnects, "delivered": snapshot.delivered, "last_delivered": lastDelivered,
            "backlog": optional(snapshot.backlog), "backlog_sampled_at": optional(snapshot.backlogSampledAt.map { dates.string(from: $0) }),
            "problem": optional(snapshot.problem), "leader_holder": optional(snapshot.leaderHolder), "redis": redisText,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// `/readyz`'s view of Redis: a `PING` on a connection of its own, with short time limits, made again after a failure.
actor RedisProbe {
    private let configuration: RedisConfiguration
    private let logger: Logger
    private var connection: RedisConnection?

    init(configuration: RedisConfiguration, logger: Logger) {
        var configuration = configuration
        configuration.connectTimeout = min(configuration.connectTimeout, 2)
        configuration.commandTimeout = 2
        self.configuration = configuration
        self.logger = logger
    }

    /// Whether Redis answers `PING` now.
    func ping() async -> Result<Void, any Error> {
        do {
            let connection: RedisConnection
            if let existing = self.connection, await existing.isUsable {
                connection = existing
            } else {
                await self.connection?.close()
                connection = try await RedisConnection.connect(configuration, logger: logger)
                self.connection = connection
            }
            _ = try await connection.command("PING")
            return .success(())
        } catch {
            await connection?.close()
            connection = nil
            return .failure(error)
        }
    }

    func close() async {
        await connection?.close()
        connection = nil
    }
}
