import CoreMetrics
import Testing

@testable import PGEventsOps

/// The processor's swift-prometheus backend, with a factory of the test's own (the global `MetricsSystem` is never
/// bootstrapped here).
@Suite("ProcessMetrics")
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
}
