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
/// A processor of several databases (`databases:`) is reported as a whole: `/healthz` 200 while it runs, `/readyz`
/// 200 when Redis answers and every database's processor is ready as above (503 naming those that are not: a
/// database that is down makes the instance unready, not unhealthy), `/status` one object per database.
///
/// Every answer is small and says in its first line what it found, so `curl -f` works as a probe. A service-lifecycle
/// `Service`: on graceful shutdown the server stops accepting connections and finishes the requests in flight. Run it
/// in the same `ServiceGroup` as the processor, before it, so that it answers while the processor stops.
public struct ProcessHTTPService: Service {
    /// Where to listen.
    public var host: String
    /// The port; 0 takes a free one (logged, and passed to `onListening`).
    public var port: Int
    /// Whose state the endpoints report.
    public enum Subject: Sendable {
        /// One processor.
        case processor(ProcessorStatus)
        /// A processor of several databases.
        case databases(DatabaseStatuses)
    }

    public let subject: Subject
    public let metrics: ProcessMetrics
    /// The Redis `/readyz` sends its `PING` to: the processor's.
    public let redis: RedisConfiguration
    private let logger: Logger
    private let onListening: @Sendable (Int) async -> Void

    public init(
        host: String, port: Int, status: ProcessorStatus, metrics: ProcessMetrics, redis: RedisConfiguration, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.init(
            host: host, port: port, subject: .processor(status), metrics: metrics, redis: redis, logger: logger, onListening: onListening)
    }

    public init(
        host: String, port: Int, subject: Subject, metrics: ProcessMetrics, redis: RedisConfiguration, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.subject = subject
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
        let subject = subject
        let metrics = metrics
        let router = Router()
        router.get("/metrics") { _, _ in
            Self.response(.ok, metrics.render(), contentType: ProcessMetrics.contentType)
        }
        router.get("/healthz") { _, _ in
            let (healthy, text) = Self.health(subject)
            return Self.response(healthy ? .ok : .serviceUnavailable, text)
        }
        router.get("/readyz") { _, _ in
            let (ready, reason) = Self.readiness(subject, redis: await probe.ping())
            return Self.response(ready ? .ok : .serviceUnavailable, reason)
        }
        router.get("/status") { _, _ in
            let redis = await probe.ping()
            let text: String
            switch subject {
            case .processor(let status): text = Self.statusJSON(status.snapshot, redis: redis)
            case .databases(let statuses): text = Self.statusJSON(statuses, redis: redis)
            }
            return Self.response(.ok, text, contentType: "application/json")
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

    /// `/healthz`: whether the service runs, and what it is doing.
    static func health(_ subject: Subject) -> (healthy: Bool, text: String) {
        switch subject {
        case .processor(let status):
            let snapshot = status.snapshot
            switch snapshot.role {
            case .stopped, .failed: return (false, "\(snapshot.role.rawValue)" + (snapshot.problem.map { ": \($0)" } ?? ""))
            default: return (true, "ok: \(snapshot.role.rawValue)")
            }
        case .databases(let statuses):
            switch statuses.state {
            case .stopped, .failed: return (false, statuses.state.rawValue)
            case .starting, .running:
                let roles = statuses.snapshots.map { "\($0.database) \($0.snapshot.role.rawValue)" }
                return (true, "ok: \(roles.count) database(s)" + (roles.isEmpty ? "" : ": " + roles.joined(separator: ", ")))
            }
        }
    }

    /// `/readyz`: whether the instance is ready, and why (or why not).
    static func readiness(_ subject: Subject, redis: Result<Void, any Error>?) -> (ready: Bool, reason: String) {
        switch subject {
        case .processor(let status):
            return status.snapshot.readiness(redis: redis)
        case .databases(let statuses):
            let snapshots = statuses.snapshots
            guard !snapshots.isEmpty else { return (false, "no database served yet") }
            let unready = snapshots.compactMap { entry -> String? in
                let (ready, reason) = entry.snapshot.readiness(redis: redis)
                return ready ? nil : "\(entry.database): \(reason)"
            }
            guard unready.isEmpty else { return (false, "not ready: " + unready.joined(separator: "; ")) }
            return (true, "\(snapshots.count) database(s) ready")
        }
    }

    /// `/status` of one processor: `{"state", "ready", "reason", "consumer", "source", "listener", "reconnects",
    /// "delivered", "last_delivered", "backlog", "backlog_sampled_at", "problem", "leader_holder", "redis"}`; absent
    /// values are null.
    static func statusJSON(_ snapshot: ProcessorStatus.Snapshot, redis: Result<Void, any Error>?) -> String {
        json(statusObject(snapshot, redis: redis))
    }

    /// `/status` of a processor of several databases: `{"state", "ready", "reason", "databases": {name: the object
    /// above, without "redis"}, "redis"}`.
    static func statusJSON(_ statuses: DatabaseStatuses, redis: Result<Void, any Error>?) -> String {
        let (ready, reason) = readiness(.databases(statuses), redis: redis)
        var databases: [String: Any] = [:]
        for entry in statuses.snapshots {
            var object = statusObject(entry.snapshot, redis: redis)
            object.removeValue(forKey: "redis")
            databases[entry.database] = object
        }
        return json([
            "state": statuses.state.rawValue, "ready": ready, "reason": reason, "databases": databases, "redis": redisText(redis),
        ])
    }

    private static func redisText(_ redis: Result<Void, any Error>?) -> String {
        switch redis {
        case .none: "not checked"
        case .success: "ok"
        case .failure(let error): "error: \(error)"
        }
    }

    private static func statusObject(_ snapshot: ProcessorStatus.Snapshot, redis: Result<Void, any Error>?) -> [String: Any] {
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
        return [
            "state": snapshot.role.rawValue, "ready": ready, "reason": reason, "consumer": snapshot.consumer, "source": snapshot.source,
            "listener": listener, "reconnects": snapshot.reconnects, "delivered": snapshot.delivered, "last_delivered": lastDelivered,
            "backlog": optional(snapshot.backlog), "backlog_sampled_at": optional(snapshot.backlogSampledAt.map { dates.string(from: $0) }),
            "problem": optional(snapshot.problem), "leader_holder": optional(snapshot.leaderHolder), "redis": redisText(redis),
        ]
    }

    private static func json(_ object: [String: Any]) -> String {
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
    private var connection: RedisSink?

    init(configuration: RedisConfiguration, logger: Logger) {
        var configuration = configuration
        configuration.connectTimeout = min(configuration.connectTimeout, 2)
        configuration.commandTimeout = 2
        self.configuration = configuration
        self.logger = logger
    }

    /// Whether Redis (every primary of a cluster) answers `PING` now.
    func ping() async -> Result<Void, any Error> {
        do {
            let connection: RedisSink
            if let existing = self.connection, await existing.isUsable {
                connection = existing
            } else {
                await self.connection?.close()
                connection = try await RedisSink.connect(configuration, logger: logger)
                self.connection = connection
            }
            for server in try await connection.servers() { try await server.command("PING") }
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
