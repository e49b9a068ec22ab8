public import CoreMetrics
import Synchronization

/// A swift-metrics backend that keeps every metric in memory and renders it in the Prometheus text
/// exposition format (version 0.0.4), for a `/metrics` endpoint to serve as it is.
///
/// How metrics map to Prometheus types:
/// - `Counter` and `FloatingPointCounter`: `counter` (negative, NaN and infinite increments are ignored;
///   `reset()` sets the series back to 0, which Prometheus reads as a restart).
/// - `Gauge` (a recorder without aggregation) and `Meter`: `gauge`, the last value set.
/// - `Recorder` with aggregation: `histogram` over `recorderBuckets`.
/// - `Timer`: `histogram` in seconds over `timerBuckets`; `_sum` is kept in whole nanoseconds, so it does
///   not drift. Negative durations count as 0.
///
/// Every metric created with the same label and dimensions feeds one series (swift-metrics creates a handler
/// per `Counter(label:)`, and code may create one per use); the series leaves the output once every handler
/// made for it has been destroyed, and a later one starts it again from zero. Labels are sanitised into
/// metric names (`[a-zA-Z_:][a-zA-Z0-9_:]*`, anything else becomes `_`, a leading digit gets a `_` before it)
/// and dimension names into label names (`[a-zA-Z_][a-zA-Z0-9_]*`); a dimension given twice keeps its last
/// value. A name already taken by another type (a counter `x` and a gauge `x`) is not reused: the later
/// metric is exposed as `x_gauge` (`_counter`, `_gauge`, `_timer`, `_histogram`), so neither is lost and the
/// output stays valid.
///
/// `render()` lists families by name and each family's series by their labels (dimensions sorted by name,
/// `le` last), so the same state always renders the same text. Thread-safe: metrics may be updated from any
/// task or thread while another renders.
///
/// `MetricsSystem.bootstrap` may be called only once per process (a second call traps), so create the
/// factory once, at startup, bootstrap with it and hand that same instance to whatever serves `/metrics`
/// — `PrometheusMetrics.shared` does exactly that. Tests create their own instance and pass it to metrics
/// explicitly (`Counter(label:dimensions:factory:)`), never bootstrapping the global system.
public final class PrometheusMetrics: MetricsFactory, Sendable {
    /// The upper bounds (seconds) of timer histograms: 0.5 ms to 10 s; `+Inf` is always added.
    public static let defaultTimerBuckets: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// The upper bounds of histograms of aggregating recorders (unitless: batch sizes, lags, …) from 0.005
    /// to 10,000; `+Inf` is always added.
    public static let defaultRecorderBuckets: [Double] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000,
    ]
    /// The `Content-Type` of `render()`'s text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The process-wide factory, created and passed to `MetricsSystem.bootstrap` the first time it is used
    /// (exactly once, whichever thread gets there first). Use it, or bootstrap with an instance of your own —
    /// not both: that would bootstrap twice, which traps.
    public static let shared: PrometheusMetrics = {
        let metrics = PrometheusMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    /// Timer histogram bounds in seconds: finite, ascending, without repeats.
    public let timerBuckets: [Double]
    /// Recorder histogram bounds: finite, ascending, without repeats.
    public let recorderBuckets: [Double]

    private let registry = Mutex(Registry())

    /// Creates an empty registry. Bucket bounds are sorted, and repeated or non-finite ones dropped
    /// (`+Inf` is always the last bucket).
    public init(
        timerBuckets: [Double] = PrometheusMetrics.defaultTimerBuckets, recorderBuckets: [Double] = PrometheusMetrics.defaultRecorderBuckets
    ) {
        self.timerBuckets = Self.normalised(timerBuckets)
        self.recorderBuckets = Self.normalised(recorderBuckets)
    }

    // MARK: MetricsFactory

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        let (series, registration) = acquire(label, dimensions, kind: .counter) { CounterSeries() }
        return CounterHandle(series: series, registration: registration)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        let (series, registration) = acquire(label, dimensions, kind: .counter) { CounterSeries() }
        return FloatingPointCounterHandle(series: series, registration: registration)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        let (series, registration) = acquire(label, dimensions, kind: .gauge) { GaugeSeries() }
        return MeterHandle(series: series, registration: registration)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate {
            let buckets = recorderBuckets
            let (series, registration) = acquire(label, dimensions, kind: .histogram) {
                HistogramSeries(bounds: buckets, nanoseconds: false)
            }
            return HistogramHandle(series: series, registration: registration)
        }
        let (series, registration) = acquire(label, dimensions, kind: .gauge) { GaugeSeries() }
        return GaugeHandle(series: series, registration: registration)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = timerBuckets
        let (series, registration) = acquire(label, dimensions, kind: .timer) { HistogramSeries(bounds: buckets, nanoseconds: true) }
        return TimerHandle(series: series, registration: registration)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let handle = handler as? CounterHandle { release(handle.registration) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let handle = handler as? FloatingPointCounterHandle { release(handle.registration) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let handle = handler as? MeterHandle { release(handle.registration) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let handle = handler as? HistogramHandle { release(handle.registration) }
        if let handle = handler as? GaugeHandle { release(handle.registration) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let handle = handler as? TimerHandle { release(handle.registration) }
    }

    // MARK: Rendering

    /// Every metric in the Prometheus text format 0.0.4: one `# TYPE` line per family, then its samples;
    /// families sorted by name, series by labels. Empty when nothing has been created.
    public func render() -> String {
        let families = registry.withLock { registry in
            registry.families.sorted { $0.key < $1.key }.map { name, family in
                (
                    name: name, kind: family.kind,
                    series: family.series.sorted { $0.key < $1.key }.map { (labels: $0.key, storage: $0.value.storage) }
                )
            }
        }
        var out = ""
        for family in families where !family.series.isEmpty {
            out += "# TYPE \(family.name) \(family.kind.typeName)\n"
            for series in family.series {
                series.storage.render(name: family.name, labels: series.labels, into: &out)
            }
        }
        return out
    }

    // MARK: Registry

    /// The Prometheus type a metric is exposed as, told apart further where two kinds of histogram would
    /// otherwise share a family with different buckets.
    enum Kind: Sendable {
        case counter, gauge, timer, histogram

        var typeName: String {
            switch self {
            case .counter: "counter"
            case .gauge: "gauge"
            case .timer, .histogram: "histogram"
            }
        }

        /// Appended to the name of a metric whose name another kind already took.
        var conflictSuffix: String {
            switch self {
            case .counter: "_counter"
            case .gauge: "_gauge"
            case .timer: "_timer"
            case .histogram: "_histogram"
            }
        }
    }

    private struct Registry {
        var families: [String: Family] = [:]
    }

    private struct Family {
        let kind: Kind
        /// Keyed by the series' rendered labels.
        var series: [String: Entry] = [:]
    }

    private struct Entry {
        let storage: any SeriesStorage
        /// Handles made for this series and not destroyed yet.
        var handles: Int
    }

    /// The series for `label` and `dimensions`, created by `make` if it does not exist yet, counted as used
    /// by one more handle.
    private func acquire<Series: SeriesStorage>(
        _ label: String, _ dimensions: [(String, String)], kind: Kind, make: () -> Series
    ) -> (Series, Registration) {
        let baseName = Self.metricName(label)
        let labels = Self.labels(dimensions, histogram: kind == .timer || kind == .histogram)
        return registry.withLock { registry in
            var name = baseName
            while let family = registry.families[name], family.kind != kind { name += kind.conflictSuffix }
            let series: Series
            if let entry = registry.families[name]?.series[labels], let existing = entry.storage as? Series {
                series = existing
                registry.families[name]?.series[labels]?.handles += 1
            } else {
                series = make()
                registry.families[name, default: Family(kind: kind)].series[labels] = Entry(storage: series, handles: 1)
            }
            return (series, Registration(name: name, labels: labels, storage: series))
        }
    }

    /// Drops one handle's use of its series (once per handle), and the series when it was the last.
    private func release(_ registration: Registration) {
        guard registration.markReleased() else { return }
        registry.withLock { registry in
            guard let entry = registry.families[registration.name]?.series[registration.labels],
                entry.storage === registration.storage
            else { return }
            if entry.handles > 1 {
                registry.families[registration.name]?.series[registration.labels]?.handles -= 1
                return
            }
            registry.families[registration.name]?.series[registration.labels] = nil
            if registry.families[registration.name]?.series.isEmpty == true { registry.families[registration.name] = nil }
        }
    }

    // MARK: Names, labels and values

    /// `label` as a Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    static func metricName(_ label: String) -> String {
        sanitised(label, allowingColon: true)
    }

    /// `name` as a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
    static func labelName(_ name: String) -> String {
        sanitised(name, allowingColon: false)
    }

    private static func sanitised(_ text: String, allowingColon: Bool) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "_": out.unicodeScalars.append(scalar)
            case "0"..."9":
                if out.isEmpty { out += "_" }
                out.unicodeScalars.append(scalar)
            case ":" where allowingColon: out.unicodeScalars.append(scalar)
            default: out += "_"
            }
        }
        return out.isEmpty ? "_" : out
    }

    /// A label value with `\`, `"` and newlines escaped.
    static func escaped(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The inside of a series' braces: `a="x",b="y"`, sorted by name, a name given twice keeping its last
    /// value. A histogram's own `le` label is reserved, so a dimension named `le` becomes `_le`.
    static func labels(_ dimensions: [(String, String)], histogram: Bool) -> String {
        var byName: [String: String] = [:]
        for (name, value) in dimensions {
            var label = labelName(name)
            if histogram && label == "le" { label = "_le" }
            byName[label] = value
        }
        return byName.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(escaped($0.value))\"" }.joined(separator: ",")
    }

    /// A sample value as Prometheus writes it: whole numbers without a fraction (`3`), others in the
    /// shortest form that reads back exactly (`0.25`, `1e-05`), and `+Inf`, `-Inf`, `NaN`.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value == .infinity { return "+Inf" }
        if value == -.infinity { return "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return value.description
    }

    private static func normalised(_ bounds: [Double]) -> [Double] {
        var seen = Set<Double>()
        return bounds.filter { $0.isFinite }.sorted().filter { seen.insert($0).inserted }
    }
}

// MARK: Series

/// The values of one series (one metric name and one set of labels).
private protocol SeriesStorage: AnyObject, Sendable {
    /// Appends this series' sample lines.
    func render(name: String, labels: String, into out: inout String)
}

extension SeriesStorage {
    /// `name{labels}`, or just `name` without labels.
    func sample(_ name: String, _ labels: String) -> String {
        labels.isEmpty ? name : "\(name){\(labels)}"
    }
}

/// A counter's total: whole increments exactly, fractional ones (from `FloatingPointCounter`) beside them.
private final class CounterSeries: SeriesStorage {
    private struct Value {
        var whole: Int64 = 0
        var fractional: Double = 0
    }
    private let value = Mutex(Value())

    func add(_ amount: Int64) {
        guard amount > 0 else { return }
        value.withLock { value in
            let (sum, overflow) = value.whole.addingReportingOverflow(amount)
            value.whole = overflow ? .max : sum
        }
    }

    func add(_ amount: Double) {
        guard amount.isFinite, amount > 0 else { return }
        value.withLock { $0.fractional += amount }
    }

    func reset() {
        value.withLock { $0 = Value() }
    }

    func render(name: String, labels: String, into out: inout String) {
        let current = value.withLock { $0 }
        let text = current.fractional == 0 ? String(current.whole) : PrometheusMetrics.format(Double(current.whole) + current.fractional)
        out += "\(sample(name, labels)) \(text)\n"
    }
}

/// A gauge's last value.
private final class GaugeSeries: SeriesStorage {
    private let value = Mutex<Double>(0)

    func set(_ newValue: Double) {
        value.withLock { $0 = newValue }
    }

    func add(_ amount: Double) {
        value.withLock { $0 += amount }
    }

    func render(name: String, labels: String, into out: inout String) {
        let current = value.withLock { $0 }
        out += "\(sample(name, labels)) \(PrometheusMetrics.format(current))\n"
    }
}

/// A histogram: counts per bucket, their number and their sum. Timers record whole nanoseconds (compared
/// with the bounds in nanoseconds, summed exactly, rendered in seconds); recorders record plain values.
private final class HistogramSeries: SeriesStorage {
    /// Finite upper bounds, ascending; `+Inf` follows them.
    let bounds: [Double]
    /// `bounds` in nanoseconds, for timers.
    private let nanosecondBounds: [Int64]
    /// Whether values are nanoseconds (timers), rendered in seconds.
    let nanoseconds: Bool

    private struct State {
        /// Observations per bucket (not cumulative); the last is `+Inf`'s own.
        var counts: [UInt64]
        var count: UInt64 = 0
        var sum: Double = 0
        var nanosecondSum: Int64 = 0
    }
    private let state: Mutex<State>

    init(bounds: [Double], nanoseconds: Bool) {
        self.bounds = bounds
        self.nanoseconds = nanoseconds
        self.nanosecondBounds = nanoseconds ? bounds.map { Int64(min(($0 * 1e9).rounded(), 9.2e18)) } : []
        self.state = Mutex(State(counts: Array(repeating: 0, count: bounds.count + 1)))
    }

    func observe(_ value: Double) {
        guard !value.isNaN else { return }
        let bucket = bounds.firstIndex { value <= $0 } ?? bounds.count
        state.withLock { state in
            state.counts[bucket] += 1
            state.count += 1
            state.sum += value
        }
    }

    func observe(nanoseconds duration: Int64) {
        let duration = max(duration, 0)
        let bucket = nanosecondBounds.firstIndex { duration <= $0 } ?? nanosecondBounds.count
        state.withLock { state in
            state.counts[bucket] += 1
            state.count += 1
            let (sum, overflow) = state.nanosecondSum.addingReportingOverflow(duration)
            state.nanosecondSum = overflow ? .max : sum
        }
    }

    func render(name: String, labels: String, into out: inout String) {
        let current = state.withLock { $0 }
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative: UInt64 = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += current.counts[index]
            out += "\(name)_bucket{\(prefix)le=\"\(PrometheusMetrics.format(bound))\"} \(cumulative)\n"
        }
        out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(current.count)\n"
        let sum = nanoseconds ? Double(current.nanosecondSum) / 1e9 : current.sum
        out += "\(sample(name + "_sum", labels)) \(PrometheusMetrics.format(sum))\n"
        out += "\(sample(name + "_count", labels)) \(current.count)\n"
    }
}

// MARK: Handles

/// Where a handle's series is registered, and whether this handle has been destroyed.
private final class Registration: Sendable {
    let name: String
    let labels: String
    let storage: any SeriesStorage
    private let released = Atomic<Bool>(false)

    init(name: String, labels: String, storage: any SeriesStorage) {
        self.name = name
        self.labels = labels
        self.storage = storage
    }

    /// True the first time only.
    func markReleased() -> Bool {
        !released.exchange(true, ordering: .relaxed)
    }
}

private final class CounterHandle: CounterHandler {
    let series: CounterSeries
    let registration: Registration

    init(series: CounterSeries, registration: Registration) {
        self.series = series
        self.registration = registration
    }

    func increment(by amount: Int64) { series.add(amount) }
    func reset() { series.reset() }
}

private final class FloatingPointCounterHandle: FloatingPointCounterHandler {
    let series: CounterSeries
    let registration: Registration

    init(series: CounterSeries, registration: Registration) {
        self.series = series
        self.registration = registration
    }

    func increment(by amount: Double) { series.add(amount) }
    func reset() { series.reset() }
}

private final class GaugeHandle: RecorderHandler {
    let series: GaugeSeries
    let registration: Registration

    init(series: GaugeSeries, registration: Registration) {
        self.series = series
        self.registration = registration
    }

    func record(_ value: Int64) { series.set(Double(value)) }
    func record(_ value: Double) { series.set(value) }
}

private final class MeterHandle: MeterHandler {
    let series: GaugeSeries
    let registration: Registration

    init(series: GaugeSeries, registration: Registration) {
        self.series = series
        self.registration = registration
    }

    func set(_ value: Int64) { series.set(Double(value)) }
    func set(_ value: Double) { series.set(value) }

    func increment(by amount: Double) {
        guard amount.isFinite, amount > 0 else { return }
        series.add(amount)
    }

    func decrement(by amount: Double) {
        guard amount.isFinite, amount > 0 else { return }
        series.add(-amount)
    }
}

private final class HistogramHandle: RecorderHandler {
    let series: HistogramSeries
    let registration: Registration

    init(series: HistogramSeries, registration: Registration) {
        self.series = series
        self.registration = registration
    }

    func record(_ value: Int64) { series.observe(Double(value)) }
    func record(_ value: Double) { series.observe(value) }
}

private final class TimerHandle: TimerHandler {
    let series: HistogramSeries
    let registration: Registration

    init(series: HistogramSeries, registration: Registration) {
        self.series = series
        self.registration = registration
    }

    func recordNanoseconds(_ duration: Int64) { series.observe(nanoseconds: duration) }
}
