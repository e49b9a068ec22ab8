// The building blocks of the pipeline's latency, one at a time on an idle machine, on throwaway servers:
// a query through PostgresConnection, a Redis PING, and NOTIFY → received by a listening connection.
//
// The processor's scenarios (load-1000, throughput, burst, latency, writers, replication) are `pgevents bench`
// (PGEventsHarness' ScenarioBench); this is what stays outside it.
//
//   PGEVENTS_BENCHMARKS=1 swift run -c release pgevents-processor-bench [--rounds N]
import Foundation
import PGEventsBench
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis

let arguments = CommandLine.arguments
let rounds = arguments.firstIndex(of: "--rounds").flatMap { arguments.indices.contains($0 + 1) ? Int(arguments[$0 + 1]) : nil } ?? 2_000

/// Percentiles of latencies in milliseconds: "p50 … ms, p90 …, p99 …, p99.9 …, max …".
func summary(_ values: [Double]) -> String {
    let sorted = values.sorted()
    func percentile(_ p: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
    return String(
        format: "p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms",
        percentile(0.5), percentile(0.9), percentile(0.99), percentile(0.999), sorted.last ?? .nan)
}

func elapsed(since start: ContinuousClock.Instant) -> Double {
    let duration = ContinuousClock.now - start
    return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

let postgres = try await TemporaryPostgres.start()
let redis = try await TemporaryRedis.start()
print("PostgreSQL \(postgres.binaries.version), Redis \(redis.version), \(ProcessInfo.processInfo.activeProcessorCount) cores")

/// Each building block `rounds` times, one at a time.
func measure() async throws {
    let database = try await postgres.makeDatabase()
    let connection = try await database.connect()
    let listener = try await database.connect()
    let cache = try await redis.connect()
    var query: [Double] = []
    var ping: [Double] = []
    var notify: [Double] = []
    try await listener.listen("rtt")
    var notifications = await listener.notifications().makeAsyncIterator()
    for _ in 0..<rounds {
        var start = ContinuousClock.now
        try await connection.query("SELECT 1")
        query.append(elapsed(since: start) * 1000)
        start = ContinuousClock.now
        _ = try await cache.command("PING")
        ping.append(elapsed(since: start) * 1000)
        start = ContinuousClock.now
        try await connection.notify("rtt", payload: "x")
        _ = try await notifications.next()
        notify.append(elapsed(since: start) * 1000)
    }
    print("SELECT 1:            \(summary(query))")
    print("Redis PING:          \(summary(ping))")
    print("NOTIFY → received:   \(summary(notify))")
    for each in [connection, listener] { await each.close() }
    await cache.close()
}
try await measure()
await redis.shutdown()
await postgres.shutdown()
