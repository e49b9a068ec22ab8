public import Synchronization

/// The gateway's counters, read by `GET /metrics` (Prometheus text format) and by tests.
public final class GatewayMetrics: Sendable {
    /// Clients connected now (WebSocket and SSE).
    public let connections = Atomic<Int>(0)
    /// Messages written to clients.
    public let messagesSent = Atomic<Int>(0)
    /// Clients disconnected because their queue was full.
    public let slowClientsDropped = Atomic<Int>(0)
    /// Connections refused for a missing or invalid token, a missing rel or a relation not allowed.
    public let authFailures = Atomic<Int>(0)
    /// Connections refused because `max_connections` were connected.
    public let connectionsRefused = Atomic<Int>(0)
    /// Stream entries read from Redis.
    public let entriesRead = Atomic<Int>(0)
    /// Clients disconnected when their token expired.
    public let tokensExpired = Atomic<Int>(0)

    /// Counters at zero.
    public init() {}

    /// The counters in Prometheus' text format.
    public var prometheusText: String {
        let rows: [(String, String, String, Int)] = [
            ("pgevents_serve_connections", "gauge", "Clients connected now.", connections.load(ordering: .relaxed)),
            ("pgevents_serve_messages_sent_total", "counter", "Messages written to clients.", messagesSent.load(ordering: .relaxed)),
            (
                "pgevents_serve_slow_clients_dropped_total", "counter", "Clients disconnected because their queue was full.",
                slowClientsDropped.load(ordering: .relaxed)
            ),
            (
                "pgevents_serve_auth_failures_total", "counter", "Connections refused for their token or relations.",
                authFailures.load(ordering: .relaxed)
            ),
            (
                "pgevents_serve_connections_refused_total", "counter", "Connections refused at max_connections.",
                connectionsRefused.load(ordering: .relaxed)
            ),
            ("pgevents_serve_entries_read_total", "counter", "Stream entries read from Redis.", entriesRead.load(ordering: .relaxed)),
            (
                "pgevents_serve_tokens_expired_total", "counter", "Clients disconnected when their token expired.",
                tokensExpired.load(ordering: .relaxed)
            ),
        ]
        return rows.map { "# HELP \($0.0) \($0.2)\n# TYPE \($0.0) \($0.1)\n\($0.0) \($0.3)\n" }.joined()
    }
}
