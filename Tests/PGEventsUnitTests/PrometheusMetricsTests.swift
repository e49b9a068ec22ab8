import Metrics
import PGEvents
import Testing

/// Each test makes its own factory and passes it to its metrics: the global `MetricsSystem` is never
/// bootstrapped here (tests run in parallel, and it can be bootstrapped once per process).
@Suite("PrometheusMetrics")
struct PrometheusMetricsTests {
    @Test("nothing created renders nothing")
    func empty() {
        #expect(PrometheusMetrics().render() == "")
    }

    @Test("a counter without dimensions")
    func counterWithoutDimensions() {
        let metrics = PrometheusMetrics()
        let counter = Counter(label: "pgevents_jobs_total", factory: metrics)
        counter.increment()
        counter.increment(by: 2)
        counter.increment(by: -5)  // a counter never goes down
        #expect(
            metrics.render() == """
                # TYPE pgevents_jobs_total counter
                pgevents_jobs_total 3

                """)
    }

    @Test("counters with dimensions: one series per label set, dimensions sorted, handles of one series shared")
    func counterWithDimensions() {
        let metrics = PrometheusMetrics()
        Counter(label: "delivered_total", dimensions: [("source", "notify"), ("consumer", "a")], factory: metrics).increment(by: 2)
        // Created again per use, as EventListener does for state changes: the same series.
        Counter(label: "delivered_total", dimensions: [("consumer", "a"), ("source", "notify")], factory: metrics).increment(by: 3)
        Counter(label: "delivered_total", dimensions: [("consumer", "b"), ("source", "notify")], factory: metrics).increment()
        Counter(label: "delivered_total", factory: metrics).increment(by: 7)
        #expect(
            metrics.render() == """
                # TYPE delivered_total counter
                delivered_total 7
                delivered_total{consumer="a",source="notify"} 5
                delivered_total{consumer="b",source="notify"} 1

                """)
    }

    @Test("counter reset, floating-point counters, and both kinds in one series")
    func floatingPointCounter() {
        let metrics = PrometheusMetrics()
        let seconds = FloatingPointCounter(label: "busy_seconds_total", factory: metrics)
        seconds.increment(by: 0.5)
        seconds.increment(by: 0.25)
        seconds.increment(by: -1.0)
        seconds.increment(by: Double.nan)
        seconds.increment(by: Double.infinity)
        Counter(label: "busy_seconds_total", factory: metrics).increment(by: 2)
        let resets = Counter(label: "resets_total", factory: metrics)
        resets.increment(by: 9)
        resets.reset()
        resets.increment()
        #expect(
            metrics.render() == """
                # TYPE busy_seconds_total counter
                busy_seconds_total 2.75
                # TYPE resets_total counter
                resets_total 1

                """)
    }

    @Test("gauges and meters keep their last value")
    func gauges() {
        let metrics = PrometheusMetrics()
        let gauge = Gauge(label: "queue_usage", factory: metrics)
        gauge.record(5)
        gauge.record(0.125)
        let meter = Meter(label: "connections", dimensions: [("server", "redis")], factory: metrics)
        meter.set(10)
        meter.increment(by: 3)
        meter.decrement(by: 5)
        meter.decrement()
        let state = Gauge(label: "listener_state", factory: metrics)
        state.record(-2)
        #expect(
            metrics.render() == """
                # TYPE connections gauge
                connections{server="redis"} 7
                # TYPE listener_state gauge
                listener_state -2
                # TYPE queue_usage gauge
                queue_usage 0.125

                """)
    }

    @Test("timers are histograms in seconds: cumulative buckets, sum and count")
    func timerHistogram() {
        let metrics = PrometheusMetrics()
        let timer = Timer(label: "commit_to_queued_seconds", dimensions: [("consumer", "app")], factory: metrics)
        timer.recordMilliseconds(1)  // on a bound: counts in le="0.001"
        timer.recordMicroseconds(3_000)
        timer.recordSeconds(2)
        timer.recordNanoseconds(-5)  // clock skew: counts as 0
        timer.recordSeconds(60)  // only +Inf
        #expect(
            metrics.render() == """
                # TYPE commit_to_queued_seconds histogram
                commit_to_queued_seconds_bucket{consumer="app",le="0.0005"} 1
                commit_to_queued_seconds_bucket{consumer="app",le="0.001"} 2
                commit_to_queued_seconds_bucket{consumer="app",le="0.002"} 2
                commit_to_queued_seconds_bucket{consumer="app",le="0.005"} 3
                commit_to_queued_seconds_bucket{consumer="app",le="0.01"} 3
                commit_to_queued_seconds_bucket{consumer="app",le="0.025"} 3
                commit_to_queued_seconds_bucket{consumer="app",le="0.05"} 3
                commit_to_queued_seconds_bucket{consumer="app",le="0.1"} 3
                commit_to_queued_seconds_bucket{consumer="app",le="0.25"} 3
                commit_to_queued_seconds_bucket{consumer="app",le="0.5"} 3
                commit_to_queued_seconds_bucket{consumer="app",le="1"} 3
                commit_to_queued_seconds_bucket{consumer="app",le="2.5"} 4
                commit_to_queued_seconds_bucket{consumer="app",le="5"} 4
                commit_to_queued_seconds_bucket{consumer="app",le="10"} 4
                commit_to_queued_seconds_bucket{consumer="app",le="+Inf"} 5
                commit_to_queued_seconds_sum{consumer="app"} 62.004
                commit_to_queued_seconds_count{consumer="app"} 5

                """)
    }

    @Test("a timer without dimensions has only le in braces")
    func timerWithoutDimensions() {
        let metrics = PrometheusMetrics(timerBuckets: [1, 0.5, 1, .infinity])
        Timer(label: "t", factory: metrics).recordMilliseconds(750)
        #expect(metrics.timerBuckets == [0.5, 1])
        #expect(
            metrics.render() == """
                # TYPE t histogram
                t_bucket{le="0.5"} 0
                t_bucket{le="1"} 1
                t_bucket{le="+Inf"} 1
                t_sum 0.75
                t_count 1

                """)
    }

    @Test("aggregating recorders are histograms over the recorder buckets")
    func recorderHistogram() {
        let metrics = PrometheusMetrics(recorderBuckets: [10, 100, 1_000])
        let sizes = Recorder(label: "chunk_events", dimensions: [("le", "x")], factory: metrics)
        sizes.record(1)
        sizes.record(100)
        sizes.record(250.5)
        sizes.record(5_000)
        #expect(
            metrics.render() == """
                # TYPE chunk_events histogram
                chunk_events_bucket{_le="x",le="10"} 1
                chunk_events_bucket{_le="x",le="100"} 2
                chunk_events_bucket{_le="x",le="1000"} 3
                chunk_events_bucket{_le="x",le="+Inf"} 4
                chunk_events_sum{_le="x"} 5351.5
                chunk_events_count{_le="x"} 4

                """)
    }

    @Test("label values are escaped")
    func escaping() {
        let metrics = PrometheusMetrics()
        Counter(label: "errors_total", dimensions: [("message", "C:\\dir \"quoted\"\nnext line")], factory: metrics).increment()
        #expect(
            metrics.render() == """
                # TYPE errors_total counter
                errors_total{message="C:\\\\dir \\"quoted\\"\\nnext line"} 1

                """)
    }

    @Test("metric and label names are sanitised")
    func nameSanitising() {
        let metrics = PrometheusMetrics()
        Counter(label: "pgevents.redis-commands/total", dimensions: [("command-name", "LPUSH"), ("9th", "x")], factory: metrics).increment()
        Counter(label: "2xx:responses", factory: metrics).increment()
        Counter(label: "", factory: metrics).increment()
        Gauge(label: "température", dimensions: [("a:b", "ok")], factory: metrics).record(1)
        #expect(
            metrics.render() == """
                # TYPE _ counter
                _ 1
                # TYPE _2xx:responses counter
                _2xx:responses 1
                # TYPE pgevents_redis_commands_total counter
                pgevents_redis_commands_total{_9th="x",command_name="LPUSH"} 1
                # TYPE temp_rature gauge
                temp_rature{a_b="ok"} 1

                """)
    }

    @Test("families are sorted by name whatever the order they were created in")
    func stableOrder() {
        let metrics = PrometheusMetrics()
        Counter(label: "zeta_total", factory: metrics).increment()
        Gauge(label: "alpha", factory: metrics).record(1)
        Counter(label: "mid_total", dimensions: [("k", "b")], factory: metrics).increment()
        Counter(label: "mid_total", dimensions: [("k", "a")], factory: metrics).increment()
        let first = metrics.render()
        #expect(
            first == """
                # TYPE alpha gauge
                alpha 1
                # TYPE mid_total counter
                mid_total{k="a"} 1
                mid_total{k="b"} 1
                # TYPE zeta_total counter
                zeta_total 1

                """)
        #expect(metrics.render() == first)
    }

    @Test("a name taken by another type is exposed with the kind as a suffix")
    func typeConflict() {
        let metrics = PrometheusMetrics()
        Counter(label: "x", factory: metrics).increment()
        Gauge(label: "x", factory: metrics).record(4)
        Gauge(label: "x", factory: metrics).record(5)
        #expect(
            metrics.render() == """
                # TYPE x counter
                x 1
                # TYPE x_gauge gauge
                x_gauge 5

                """)
    }

    @Test("a series leaves the output when every handler made for it is destroyed")
    func destroy() {
        let metrics = PrometheusMetrics()
        let first = Counter(label: "c_total", factory: metrics)
        let second = Counter(label: "c_total", factory: metrics)
        first.increment(by: 4)
        first.destroy()
        first.destroy()  // once per handler: does not release `second`'s use
        second.increment()
        #expect(metrics.render() == "# TYPE c_total counter\nc_total 5\n")
        second.destroy()
        #expect(metrics.render() == "")
        Counter(label: "c_total", factory: metrics).increment()  // starts again from zero
        #expect(metrics.render() == "# TYPE c_total counter\nc_total 1\n")

        let gauge = Gauge(label: "g", factory: metrics)
        let timer = Timer(label: "t", factory: metrics)
        let meter = Meter(label: "m", factory: metrics)
        let float = FloatingPointCounter(label: "f", factory: metrics)
        let recorder = Recorder(label: "r", factory: metrics)
        gauge.destroy()
        timer.destroy()
        meter.destroy()
        float.destroy()
        recorder.destroy()
        #expect(metrics.render() == "# TYPE c_total counter\nc_total 1\n")
    }

    @Test("increments from many tasks at once add up exactly")
    func concurrentIncrements() async {
        let metrics = PrometheusMetrics()
        let tasks = 64
        let increments = 2_000
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    // Half share one handler per task, half create one per increment; all feed one series.
                    let shared = Counter(label: "events_total", dimensions: [("source", "journal")], factory: metrics)
                    let timer = Timer(label: "latency_seconds", factory: metrics)
                    for index in 0..<increments {
                        if task.isMultiple(of: 2) {
                            shared.increment()
                        } else {
                            Counter(label: "events_total", dimensions: [("source", "journal")], factory: metrics).increment()
                        }
                        timer.recordNanoseconds(Int64(index))
                    }
                }
            }
            group.addTask {
                for _ in 0..<50 { _ = metrics.render() }  // rendering while they count
            }
        }
        let lines = metrics.render().split(separator: "\n")
        #expect(lines.contains("events_total{source=\"journal\"} \(tasks * increments)"))
        #expect(lines.contains("latency_seconds_count \(tasks * increments)"))
        #expect(lines.contains("latency_seconds_bucket{le=\"0.0005\"} \(tasks * increments)"))
    }
}
