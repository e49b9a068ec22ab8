import Foundation
public import Logging
import PGEventsRedis

/// What every connection shares: the configuration, the token verifier, the relation authorizer, the hub of
/// clients, the streams' history and the metrics.
public final class Gateway: Sendable {
    let configuration: ServeConfiguration
    let verifier: TokenVerifier
    let authorizer: RelationAuthorizer
    let hub: ClientHub
    let history: StreamHistory
    let sql: SQLRunner
    /// The gateway's counters.
    public let metrics: GatewayMetrics
    let logger: Logger

    init(
        configuration: ServeConfiguration, verifier: TokenVerifier, authorizer: RelationAuthorizer, redis: RedisConfiguration,
        metrics: GatewayMetrics, logger: Logger
    ) {
        self.configuration = configuration
        self.verifier = verifier
        self.authorizer = authorizer
        self.metrics = metrics
        self.hub = ClientHub(capacity: configuration.clients.queue, maxConnections: configuration.clients.maxConnections, metrics: metrics)
        self.history = StreamHistory(redis: redis, streams: configuration.streams, logger: logger)
        self.sql = SQLRunner(settings: configuration.sql, authorizer: authorizer, logger: logger)
        self.logger = logger
    }

    /// A client that passed the checks.
    struct Admitted: Sendable {
        var identity: TokenIdentity
        var filter: ClientFilter
        var since: StreamCursor?
    }

    /// The checks GC2's `/broadcast` makes, in its order: a token, a valid token, `rel` for sub-users, each
    /// relation allowed by PostgreSQL. `since` is a resume cursor; `channels` limits the processor channels.
    func admit(token: String?, rel: String?, channels: String?, since: String?) async -> Result<Admitted, GatewayError> {
        let result = await check(token: token, rel: rel, channels: channels, since: since)
        if case .failure(let error) = result, error.code != GatewayError.unavailable.code {
            metrics.authFailures.add(1, ordering: .relaxed)
            logger.info("client refused", metadata: ["error": "\(error.code)", "reason": "\(error.message)"])
        }
        return result
    }

    private func check(token: String?, rel: String?, channels: String?, since: String?) async -> Result<Admitted, GatewayError> {
        guard let token, !token.isEmpty else { return .failure(.missingToken) }
        let identity: TokenIdentity
        do {
            identity = try await verifier.verify(token)
        } catch {
            return .failure(.invalidToken(error.message))
        }
        let relations = Self.list(rel)
        if relations.count > 100 { return .failure(.invalidParameter("rel names \(relations.count) relations; at most 100 are accepted")) }
        if !identity.superuser && relations.isEmpty { return .failure(.missingRel) }
        var cursor: StreamCursor?
        if let since, !since.isEmpty {
            do {
                cursor = try StreamCursor(parsing: since, streams: configuration.streamKeys)
            } catch {
                return .failure(.invalidParameter("since: \(error.description)"))
            }
        }
        var allowed: Set<String>?
        if !relations.isEmpty {
            do {
                switch try await authorizer.check(
                    relations, role: identity.role, database: identity.database, checkPrivileges: !identity.superuser)
                {
                case .allowed(let names): allowed = names
                case .notAllowed(let relation): return .failure(.notAllowed(relation))
                }
            } catch {
                logger.warning("relation check failed", metadata: ["database": "\(identity.database)", "error": "\(error)"])
                return .failure(.unavailable)
            }
        }
        let channelList = Self.list(channels)
        let filter = ClientFilter(database: identity.database, relations: allowed, channels: channelList.isEmpty ? nil : Set(channelList))
        return .success(Admitted(identity: identity, filter: filter, since: cursor))
    }

    /// A comma-separated query parameter's items, trimmed, without empty ones.
    static func list(_ text: String?) -> [String] {
        guard let text else { return [] }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    var feed: ClientFeed { ClientFeed(history: history, streamKeys: configuration.streamKeys) }
}
