import Foundation
import Testing

@testable import PGEventsServe

/// The hub's clock (`tick`), driven by hand: keep-alives when due, and an expired token's client ended once and
/// counted once, whether or not its session is still reading.
@Suite("serve: the hub's clock")
struct ClientHubClockTests {
    @Test("an expired client is ended and counted once; a live one gets its keep-alive when due and nothing before")
    func expiryAndKeepalive() async throws {
        let metrics = GatewayMetrics()
        let hub = ClientHub(capacity: 8, maxConnections: 4, metrics: metrics)
        let filter = ClientFilter(database: "app", relations: nil, channels: nil)
        let start = ContinuousClock.now
        let expiresAt = Date(timeIntervalSince1970: 1_000)
        let outcome = try await hub.withSubscription(filter, expiresAt: expiresAt) { expiring in
            try await hub.withSubscription(filter, expiresAt: .distantFuture, keepaliveEvery: .seconds(1)) { live in
                hub.tick(now: Date(timeIntervalSince1970: 999), instant: start)
                #expect(metrics.tokensExpired.load(ordering: .relaxed) == 0)
                // The session has not read yet: the ending waits for it, and the expiry is counted already.
                hub.tick(now: Date(timeIntervalSince1970: 1_000), instant: start + .seconds(2))
                hub.tick(now: Date(timeIntervalSince1970: 1_001), instant: start + .seconds(2.5))
                #expect(metrics.tokensExpired.load(ordering: .relaxed) == 1)
                var ended = expiring.ended.makeAsyncIterator()
                #expect(await ended.next() == .expired)
                // Its queue ends; the live client's holds one keep-alive (the second tick was 0.5 s after it).
                var expiringEvents = expiring.events.makeAsyncIterator()
                #expect(await expiringEvents.next() == nil)
                live.outbox.finish()
                var keepalives = 0
                for await outgoing in live.events {
                    if case .keepalive = outgoing { keepalives += 1 }
                }
                return keepalives
            }
        }
        #expect(outcome == 1)
        #expect(metrics.tokensExpired.load(ordering: .relaxed) == 1)
        #expect(hub.count == 0)
    }
}
