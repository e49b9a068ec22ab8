public import Foundation
import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
public import PGEventsRedis
public import ServiceLifecycle
import Synchronization

/// `pgevents serve` as a service-lifecycle `Service`: the HTTP server (`/broadcast` WebSocket, `/events` SSE,
/// `/ping`, `/healthz`, `/metrics`, the page at `/`) and the stream reader feeding it. Graceful shutdown stops
/// accepting, closes the WebSockets (1000, each from its ``SocketConnectionHandler`` on the server's quiesce event) and
/// ends the reader within one XREAD wait.
///
/// ```swift
/// let service = try await ServeService(configuration: config, databaseURL: url, redis: RedisConfiguration(redisURL), logger: logger)
/// try await ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
public final class ServeService: Service, Sendable {
    /// The shared state of every connection, with the metrics.
    public let gateway: Gateway
    private let redis: RedisConfiguration
    private let onListening: @Sendable (Int) async -> Void

    /// Loads the signing keys and checks the configuration; the database URL may hold `{database}`, replaced by
    /// each token's database claim. `onListening` is told the port once the server listens (useful with port 0).
    public init(
        configuration: ServeConfiguration, databaseURL: String, redis: RedisConfiguration, logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let verifier = try await TokenVerifier.make(configuration.auth, environment: environment)
        let authorizer = RelationAuthorizer(urlTemplate: databaseURL, privilege: configuration.auth.privilege, logger: logger)
        self.gateway = Gateway(
            configuration: configuration, verifier: verifier, authorizer: authorizer, redis: redis, metrics: GatewayMetrics(),
            logger: logger)
        self.redis = redis
        self.onListening = onListening
    }

    public func run() async throws {
        let configuration = gateway.configuration
        let reader = StreamReader(
            redis: redis, streams: configuration.streams, block: configuration.clients.block, hub: gateway.hub, logger: gateway.logger,
            count: min(1000, configuration.clients.queue))
        let start = try await reader.start()
        let stopping = StopFlag()
        let application = makeApplication()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await withGracefulShutdownHandler {
                    await reader.run(from: start) { stopping.isSet }
                } onGracefulShutdown: {
                    stopping.set()
                }
            }
            group.addTask { try await application.run() }
            let hub = gateway.hub
            group.addTask { await hub.runClock() }
            try await group.next()
            // One ended (the server on shutdown, or with an error): stop the other.
            stopping.set()
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    private func makeApplication() -> some ApplicationProtocol {
        let gateway = self.gateway
        let configuration = gateway.configuration
        let router = Router(context: ServeRequestContext.self)
        router.get("/ping") { _, _ in "pong" }
        router.get("/healthz") { _, _ in "ok" }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: gateway.metrics.prometheusText)))
        }
        router.get("/events") { request, context in try await EventStreamSession(gateway: gateway).respond(to: request, context: context) }
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: ServePage.html)))
        }
        let onListening = self.onListening
        return Application(
            router: router,
            server: HTTPServerBuilder { responder in GatewayChannel(gateway: gateway, responder: responder) },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "pgevents"),
            onServerRunning: { channel in
                await onListening(channel.localAddress?.port ?? configuration.port)
            },
            logger: gateway.logger
        )
    }
}

/// Tells the stream reader to stop (set on graceful shutdown, read after every XREAD); the atomic synchronises it.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() { value.store(true, ordering: .releasing) }
}
