import Foundation
import Histogram
import PGEventsSystem
import Synchronization

/// Wall-clock time in nanoseconds (`CLOCK_REALTIME`): the clock the stages of a scenario are compared on
/// (notifications carry their receive time as a `Date`, i.e. on this clock).
func benchWallNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// This process's CPU time (user + system), in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// This process's resident set size in MB (`VmRSS` of /proc/self/status), nil where that is not available.
func residentMegabytes() -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
    else { return nil }
    return kilobytes / 1024
}

/// The row id in a journal payload (`{"op": …, "row": {"id": 42, …}, …}`) or a job made from one: the
/// integer after the first `"id":`. Nil when there is none.
func rowID<Bytes: Collection<UInt8>>(in bytes: Bytes) -> Int64? where Bytes.Index == Int {
    let key: [UInt8] = Array("\"id\":".utf8)
    var index = bytes.startIndex
    let end = bytes.endIndex
    while index + key.count <= end {
        if bytes[index] == key[0], bytes[index + 1] == key[1], bytes[index + 2] == key[2], bytes[index + 3] == key[3],
            bytes[index + 4] == key[4]
        {
            var position = index + key.count
            while position < end, bytes[position] == UInt8(ascii: " ") { position += 1 }
            var value: Int64 = 0
            var digits = 0
            while position < end, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9"), digits < 18 {
                value = value * 10 + Int64(bytes[position] - UInt8(ascii: "0"))
                position += 1
                digits += 1
            }
            return digits > 0 ? value : nil
        }
        index += 1
    }
    return nil
}

/// Every `"id":<digits>` in `bytes`, in order (the jobs of a batch message).
func rowIDs(in bytes: [UInt8]) -> [Int64] {
    var ids: [Int64] = []
    var rest = bytes[...]
    let key = Array("\"id\":".utf8)
    while let start = rest.firstRange(of: key) {
        let tail = rest[start.lowerBound...]
        if let id = rowID(in: tail) { ids.append(id) }
        rest = rest[start.upperBound...]
    }
    return ids
}

/// Latencies of one stage, in microseconds, in an HDR histogram (1 µs to 1 h, 3 significant digits).
///
/// Negative intervals (the notification can reach the listener before the commit's acknowledgement reaches
/// the writer: both leave the server at commit) are recorded as 0 and counted in `clamped`.
struct StageHistogram {
    private(set) var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    private(set) var clamped = 0

    var count: Int { Int(histogram.totalCount) }

    /// Records the interval from `start` to `end` (wall-clock nanoseconds).
    mutating func record(from start: Int64, to end: Int64) {
        let nanoseconds = end - start
        if nanoseconds < 0 { clamped += 1 }
        _ = histogram.record(UInt64(Swift.max(0, Swift.min(nanoseconds / 1_000, 3_600_000_000))))
    }

    /// p50, p90, p99, p99.9 and max, in microseconds; nil when nothing was recorded.
    var latency: BenchResult.Latency? {
        guard histogram.totalCount > 0 else { return nil }
        return BenchResult.Latency(
            p50: Double(histogram.valueAtPercentile(50)), p90: Double(histogram.valueAtPercentile(90)),
            p99: Double(histogram.valueAtPercentile(99)), p999: Double(histogram.valueAtPercentile(99.9)),
            max: Double(histogram.max))
    }

    /// Points for a plot: percentiles spaced evenly on a log scale of 1/(1 − p), from p0 to p99.999 (denser
    /// toward the tail), and the maximum; about 70 points.
    var distribution: [BenchResult.LatencyPoint]? {
        guard histogram.totalCount > 0 else { return nil }
        var points: [BenchResult.LatencyPoint] = []
        for step in 0...69 {
            // 1/(1 − p) from 1 to 10^5 in 70 steps of 10^(5/69).
            let percentile = (1 - pow(10, -Double(step) * 5 / 69)) * 100
            points.append(
                .init(
                    percentile: (percentile * 10_000).rounded() / 10_000,
                    value: Double(step == 0 ? histogram.min : histogram.valueAtPercentile(percentile))))
        }
        points.append(.init(percentile: 100, value: Double(histogram.max)))
        return points
    }
}

/// Per-event timestamps of a run, by row id (ids start at 1 in the scenario's fresh table): when the commit
/// was acknowledged, the notification received, the event handed to the sink, the job taken by the
/// consumer. Flat arrays of 8 bytes per event and stage, so a long run's records stay small (their size is
/// reported with the memory figures).
final class StageRecords: Sendable {
    enum Stage: Int, CaseIterable {
        case scheduled, committed, notified, queued, consumed
    }

    private let stages = Mutex<[[Int64]]>(Stage.allCases.map { _ in [] })

    /// Sets `stage` of `id` to `nanoseconds`, unless it is set already (the first occurrence counts).
    func set(_ stage: Stage, _ id: Int64, _ nanoseconds: Int64) {
        set(stage, [id], nanoseconds)
    }

    /// Sets `stage` for several ids at one time.
    func set(_ stage: Stage, _ ids: [Int64], _ nanoseconds: Int64) {
        stages.withLock { stages in
            for id in ids where id > 0 {
                let index = Int(id - 1)
                if stages[stage.rawValue].count <= index {
                    stages[stage.rawValue].append(contentsOf: repeatElement(0, count: index + 1 - stages[stage.rawValue].count))
                }
                if stages[stage.rawValue][index] == 0 { stages[stage.rawValue][index] = nanoseconds }
            }
        }
    }

    /// Every stage's values, indexed by id − 1 (0: not recorded).
    func snapshot() -> [Stage: [Int64]] {
        let values = stages.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: Stage.allCases.map { ($0, values[$0.rawValue]) })
    }

    /// The records' size in MB.
    var megabytes: Double {
        Double(stages.withLock { $0.reduce(0) { $0 + $1.capacity } } * 8) / 1_048_576
    }
}

/// Stage latencies from a run's records: the histograms of `commit→notified`, `notified→queued`,
/// `queued→consumed`, `commit→queued`, `commit→consumed`, and of the end-to-end latency (from the
/// scheduled send time when there is one, else from the commit) to consumption.
struct StageReport {
    var stages: [String: StageHistogram] = [:]
    var endToEnd = StageHistogram()

    init(_ records: [StageRecords.Stage: [Int64]], ids: some Sequence<Int64>) {
        let pairs: [(String, StageRecords.Stage, StageRecords.Stage)] = [
            ("commit→notified", .committed, .notified), ("notified→queued", .notified, .queued),
            ("queued→consumed", .queued, .consumed), ("commit→queued", .committed, .queued),
            ("commit→consumed", .committed, .consumed),
        ]
        func value(_ stage: StageRecords.Stage, _ index: Int) -> Int64 {
            guard let values = records[stage], index < values.count else { return 0 }
            return values[index]
        }
        for id in ids where id > 0 {
            let index = Int(id - 1)
            for (name, from, to) in pairs {
                let start = value(from, index)
                let end = value(to, index)
                if start > 0, end > 0 { stages[name, default: StageHistogram()].record(from: start, to: end) }
            }
            let start = value(.scheduled, index) > 0 ? value(.scheduled, index) : value(.committed, index)
            let end = value(.consumed, index)
            if start > 0, end > 0 { endToEnd.record(from: start, to: end) }
        }
    }

    var latencies: [String: BenchResult.Latency] { stages.compactMapValues(\.latency) }
    var clamped: Int { stages.values.reduce(0) { $0 + $1.clamped } }
}

/// An atomic counter that tasks share (an `Atomic` cannot be captured by a task's closure).
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)

    /// Adds one; returns the value before.
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
}
