import CoreMetrics
public import Prometheus

/// The processor's metrics backend: swift-metrics handlers kept by swift-prometheus, rendered in the Prometheus
/// text exposition format (0.0.4) for `GET /metrics` and for `pgevents process --metrics FILE`.
///
/// The processor library only ever uses the swift-metrics API (`Counter`, `Gauge`, `Timer`); whichever backend the
/// process bootstraps receives them. This one maps them as swift-prometheus does: `Counter` → `counter`, `Gauge` and
/// `Meter` → `gauge`, `Timer` → `histogram` in seconds, an aggregating `Recorder` → `histogram`. The bucket bounds
/// are the ones the processor's histograms had before (0.5 ms to 10 s for timers), so dashboards keep working.
///
/// `MetricsSystem.bootstrap` may be called once per process (a second call traps): use `shared`, which bootstraps
/// the first time it is read, or make an instance of your own and pass its `factory` to metrics explicitly (tests).
public struct ProcessMetrics: Sendable {
    /// The `Content-Type` of `render()`'s text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The upper bounds of timer histograms: 0.5 ms to 10 s (`+Inf` is always added).
    public static let timerBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2_500),
        .seconds(5), .seconds(10),
    ]

    /// The upper bounds of aggregating recorders' histograms (unitless: batch sizes, lags, …), 0.005 to 10,000.
    public static let recorderBuckets: [Double] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000,
    ]

    /// The process-wide backend, bootstrapped into `MetricsSystem` the first time it is read (exactly once).
    public static let shared: ProcessMetrics = {
        let metrics = ProcessMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        return metrics
    }()

    /// Where the metrics live.
    public let registry: PrometheusCollectorRegistry

    /// The swift-metrics factory that feeds `registry`, with the processor's bucket bounds.
    public var factory: PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.timerBuckets
        factory.defaultValueHistogramBuckets = Self.recorderBuckets
        return factory
    }

    /// A backend with an empty registry of its own.
    public init() {
        registry = PrometheusCollectorRegistry()
    }

    /// Every metric in the Prometheus text format: a `# TYPE` line per family, then its samples.
    public func render() -> String {
        registry.emitToString()
    }
}
