import CoreMetrics
import Foundation
import PGEvents
import PGEventsPostgres
import Testing

@testable import PGEventsOps

/// The processor's swift-prometheus backend, with a factory of the test's own (the global `MetricsSystem` is never
/// bootstrapped here), and what `/readyz` and `--http` decide from a status.
@Suite("ProcessMetrics, readiness, --http addresses")
struct ProcessMetricsTests {
    @Test("counters, gauges and timers render as the README's types, with their labels and the processor's timer buckets")
    func rendering() {
        let metrics = ProcessMetrics()
        let factory = metrics.factory
        Counter(label: "pgevents_events_delivered_total", dimensions: [("consumer", "tasks")], factory: factory).increment(by: 3)
        Counter(label: "pgevents_dead_letters_total", dimensions: [("consumer", "tasks"), ("reason", "decode")], factory: factory)
            .increment()
        Gauge(label: "pgevents_journal_backlog_events", dimensions: [("consumer", "tasks")], factory: factory).record(42)
        Timer(label: "pgevents_commit_to_queued_seconds", dimensions: [("consumer", "tasks")], factory: factory)
            .recordNanoseconds(700_000)
        let text = metrics.render()
        #expect(text.contains("# TYPE pgevents_events_delivered_total counter\n"))
        #expect(text.contains(#"pgevents_events_delivered_total{consumer="tasks"} 3"#))
        #expect(text.contains(#"pgevents_dead_letters_total{consumer="tasks",reason="decode"} 1"#))
        #expect(text.contains("# TYPE pgevents_journal_backlog_events gauge\n"))
        #expect(text.contains(#"pgevents_journal_backlog_events{consumer="tasks"} 42"#))
        #expect(text.contains("# TYPE pgevents_commit_to_queued_seconds histogram\n"))
        // 0.7 ms: above the first bound (0.5 ms), within the second (1 ms).
        #expect(text.contains(#"pgevents_commit_to_queued_seconds_bucket{consumer="tasks",le="0.0005"} 0"#), "\(text)")
        #expect(text.contains(#"pgevents_commit_to_queued_seconds_bucket{consumer="tasks",le="0.001"} 1"#), "\(text)")
        #expect(text.contains(#"pgevents_commit_to_queued_seconds_count{consumer="tasks"} 1"#))
    }

    @Test(
        "readiness: leader delivering, healthy standby; not ready while starting, stopping, with the listener down, Redis down or delivery retrying"
    )
    func readiness() {
        var snapshot = ProcessorStatus.Snapshot(consumer: "tasks", source: "journal")
        struct Down: Error, CustomStringConvertible { var description: String { "connection refused" } }
        #expect(snapshot.readiness(redis: .success(())) == (false, "starting: not yet leader or standby"))
        snapshot.role = .leader
        #expect(snapshot.readiness(redis: .success(())).ready == false)  // no listener yet
        snapshot.listener = .listening(generation: 1)
        #expect(snapshot.readiness(redis: .success(())) == (true, "leader: delivering"))
        snapshot.role = .standby
        snapshot.leaderHolder = "pid 7 (pgevents, local)"
        #expect(
            snapshot.readiness(redis: .success(())) == (
                true, "standby: healthy, waiting for the leader lock (held by pid 7 (pgevents, local))"
            ))
        #expect(snapshot.readiness(redis: .failure(Down())) == (false, "Redis does not answer: connection refused"))
        snapshot.listener = .reconnecting(
            attempt: 2, lastError: PostgresError(code: .connectionLost, message: "server closed the connection"))
        #expect(snapshot.readiness(redis: .success(())).reason.hasPrefix("listener reconnecting(attempt: 2"))
        snapshot.listener = .listening(generation: 2)
        snapshot.role = .leader
        snapshot.problem = "delivery failed: Redis down"
        #expect(snapshot.readiness(redis: .success(())) == (false, "leader, but delivery is retrying: delivery failed: Redis down"))
        snapshot.problem = nil
        snapshot.role = .stopping
        #expect(snapshot.readiness(redis: .success(())) == (false, "stopping"))
        var wal = ProcessorStatus.Snapshot(consumer: "tasks", source: "wal")
        wal.hasListener = false
        wal.role = .leader
        #expect(wal.readiness(redis: .success(())) == (true, "leader: delivering"))
    }

    @Test("--http takes HOST:PORT and [v6]:PORT, and refuses anything else")
    func addresses() {
        #expect(ProcessHTTPService.address("127.0.0.1:9464")! == ("127.0.0.1", 9464))
        #expect(ProcessHTTPService.address("[::1]:0")! == ("::1", 0))
        #expect(ProcessHTTPService.address("localhost:65535")! == ("localhost", 65535))
        for bad in ["", "9464", ":9464", "host:", "host:port", "host:65536", "host:-1", "a b:1"] {
            #expect(ProcessHTTPService.address(bad) == nil, "\(bad)")
        }
    }

    @Test("/status is one JSON object with every field, absent values as null")
    func statusJSON() throws {
        var snapshot = ProcessorStatus.Snapshot(consumer: "tasks", source: "journal")
        snapshot.role = .leader
        snapshot.listener = .listening(generation: 3)
        snapshot.reconnects = 2
        snapshot.backlog = 5
        let text = ProcessHTTPService.statusJSON(snapshot, redis: .success(()))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["state"] as? String == "leader" && object["ready"] as? Bool == true && object["reconnects"] as? Int == 2)
        #expect(object["backlog"] as? Int == 5 && object["redis"] as? String == "ok" && object["last_delivered"] is NSNull)
        #expect((object["listener"] as? [String: Any])?["state"] as? String == "listening")
    }
}
