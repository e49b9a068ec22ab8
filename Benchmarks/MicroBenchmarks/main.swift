// Micro-benchmarks of the processor's hot paths, one operation at a time, reported as `BenchResult`s (scenario
// `micro/<name>`: `events_per_s` is operations per second, `latency_us` the time of one operation), so that
// `--baseline FILE --max-regression PCT` compares them exactly as `pgevents bench` compares its scenarios.
//
//   decode-json     PayloadDecoder(.json) of a journal event's payload (a table, an op and a row of 7 columns)
//   parse-csv       CSVRecord.parse of a GC2 record (`OP,SCHEMA,TABLE,KEY,VALUE`), one field quoted
//   decode-csv      PayloadDecoder(.csv) of the same record into an object of 5 columns
//   condition       Condition.evaluate: `all` of an `eq`, a `gte` and an `in` over event and row fields
//   render-job      JobTemplate.render of a job of 4 fields (placeholders typed and in text)
//   rules           RuleSet.evaluate: 3 rules, all_matches, the second and third match (conditions + 2 jobs)
//   redis-lpush     RedisConnection: one LPUSH per round trip, against a TemporaryRedis
//   redis-pipeline  RedisConnection.pipeline: LPUSHes 100 at a time; the time of one is the batch's / 100
//
// Each runs a warm-up, then batches of operations for --seconds (default 1): a batch is as many operations as
// take about 20 µs (one for Redis round trips), and an operation's time is its batch's time divided by the batch
// size, so percentiles are of batch averages (tails are smoothed for the fastest operations).
//
//   PGEVENTS_BENCHMARKS=1 swift run -c release pgevents-micro-bench [--only NAME,…] [--seconds S] [--no-redis]
//       [--json FILE] [--html FILE] [--baseline FILE [--max-regression PCT]]
//
// Exit status: 0, 1 when a figure is worse than the baseline's by more than PCT (default 10), 2 on wrong input.
import Foundation
import PGEvents
import PGEventsBench
import PGEventsHarness
import PGEventsMicroWorkloads
import PGEventsRedis

// MARK: Arguments

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("pgevents-micro-bench: \(message)\n".utf8))
    exit(2)
}

/// `text` as a number, or exit 2 naming `flag`.
func number(_ text: String, for flag: String) -> Double {
    guard let value = Double(text) else { fail("\(flag) takes a number, got '\(text)'") }
    return value
}

var arguments = Array(CommandLine.arguments.dropFirst())
@MainActor func takeValue(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name) else { return nil }
    guard arguments.indices.contains(index + 1) else { fail("\(name) needs a value") }
    let value = arguments[index + 1]
    arguments.removeSubrange(index...index + 1)
    return value
}
@MainActor func takeFlag(_ name: String) -> Bool {
    guard let index = arguments.firstIndex(of: name) else { return false }
    arguments.remove(at: index)
    return true
}
let secondsText = takeValue("--seconds")
let seconds = secondsText.map { number($0, for: "--seconds") } ?? 1
let only = takeValue("--only").map { Set($0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }) }
let noRedis = takeFlag("--no-redis")
let maxRegressionText = takeValue("--max-regression")
let output = BenchOutput(
    jsonPath: takeValue("--json"), htmlPath: takeValue("--html"), baselinePath: takeValue("--baseline"),
    maxRegressionPercent: maxRegressionText.map { number($0, for: "--max-regression") } ?? 10)
if !arguments.isEmpty { fail("unknown arguments: \(arguments.joined(separator: " "))") }
if !(seconds.isFinite && seconds > 0 && seconds <= 600) { fail("--seconds must be more than 0 and at most 600") }
if maxRegressionText != nil, output.baselinePath == nil { fail("--max-regression needs --baseline FILE") }
if !(0...1000).contains(output.maxRegressionPercent) { fail("--max-regression must be a percentage from 0 to 1000") }

let names = ["decode-json", "parse-csv", "decode-csv", "condition", "render-job", "rules", "redis-lpush", "redis-pipeline"]
if let only, let unknown = only.first(where: { !names.contains($0) }) {
    fail("unknown benchmark '\(unknown)'; the benchmarks are: \(names.joined(separator: ", "))")
}
@MainActor func wanted(_ name: String) -> Bool { only?.contains(name) ?? true }

// MARK: Measuring

/// Keeps a result alive so the optimizer cannot drop the work that made it.
@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

func nanoseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
}

/// Per-operation times (ns, one per batch) and the totals.
struct Samples {
    var perOperation: [Double] = []
    var operations = 0
    var nanoseconds = 0.0
    var batch = 1
}

/// Runs `body` for `warmUp` seconds, then in batches of about 20 µs for `seconds`.
func measure<T>(_ body: () throws -> T) rethrows -> Samples {
    let clock = ContinuousClock()
    // Warm-up (and calibration): a quarter of the run, at least 0.1 s.
    var operations = 0
    let warmUpStart = clock.now
    while clock.now - warmUpStart < .seconds(max(0.1, seconds / 4)) {
        for _ in 0..<100 { blackHole(try body()) }
        operations += 100
    }
    let perOperation = nanoseconds(clock.now - warmUpStart) / Double(operations)
    var samples = Samples()
    samples.batch = max(1, Int(20_000 / max(perOperation, 0.01)))
    samples.perOperation.reserveCapacity(Int(seconds * 1e9 / 20_000) + 16)
    let end = clock.now.advanced(by: .seconds(seconds))
    while clock.now < end {
        let start = clock.now
        for _ in 0..<samples.batch { blackHole(try body()) }
        let elapsed = nanoseconds(clock.now - start)
        samples.perOperation.append(elapsed / Double(samples.batch))
        samples.operations += samples.batch
        samples.nanoseconds += elapsed
    }
    return samples
}

/// As `measure`, for an asynchronous operation that does `operationsPerCall` operations (a pipeline).
func measure(operationsPerCall: Int, _ body: () async throws -> Void) async throws -> Samples {
    let clock = ContinuousClock()
    let warmUpStart = clock.now
    while clock.now - warmUpStart < .seconds(max(0.1, seconds / 4)) { try await body() }
    var samples = Samples()
    samples.batch = operationsPerCall
    let end = clock.now.advanced(by: .seconds(seconds))
    while clock.now < end {
        let start = clock.now
        try await body()
        let elapsed = nanoseconds(clock.now - start)
        samples.perOperation.append(elapsed / Double(operationsPerCall))
        samples.operations += operationsPerCall
        samples.nanoseconds += elapsed
    }
    return samples
}

/// The points of the distribution plot: these percentiles, where there are enough samples to tell them apart.
let plotPercentiles: [Double] = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100]

let started = Date()
let machine = BenchResult.Machine.current
let commit = BenchResult.gitCommit()
var redisVersion = ""

@MainActor func result(_ name: String, _ samples: Samples, settings: [String: String] = [:]) -> BenchResult {
    let sorted = samples.perOperation.sorted()
    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p / 100).rounded(.up)) - 1))]
    }
    let microseconds = { (p: Double) in percentile(p) / 1000 }
    let distribution =
        plotPercentiles
        .filter { $0 == 100 || $0 == 0 || Double(sorted.count) * (1 - $0 / 100) >= 1 }
        .map { BenchResult.LatencyPoint(percentile: $0, value: $0 == 0 ? (sorted.first ?? 0) / 1000 : microseconds($0)) }
    var settings = settings
    settings["seconds"] = String(seconds)
    settings["batch"] = String(samples.batch)
    settings["samples"] = String(sorted.count)
    return BenchResult(
        scenario: "micro/\(name)", events: samples.operations, durationSeconds: samples.nanoseconds / 1e9,
        eventsPerSecond: samples.nanoseconds > 0 ? Double(samples.operations) / (samples.nanoseconds / 1e9) : 0,
        latencyMicroseconds: .init(
            p50: microseconds(50), p90: microseconds(90), p99: microseconds(99), p999: microseconds(99.9),
            max: (sorted.last ?? 0) / 1000),
        lost: 0, duplicated: 0, errors: 0, postgresVersion: "", redisVersion: redisVersion, machine: machine, gitCommit: commit,
        startedAt: started, note: "per-operation times: averages of batches of \(samples.batch)",
        settings: settings, distribution: distribution)
}

// MARK: Fixtures

let workloads: MicroWorkloads
do {
    workloads = try MicroWorkloads()
} catch {
    fail("the benchmark's own fixtures: \(error)")
}
let jsonPayload = MicroWorkloads.jsonPayload
let csvPayload = MicroWorkloads.csvPayload
let context = workloads.context
let condition = workloads.condition
let job = workloads.job
let rules = workloads.rules

// MARK: Running

var results: [BenchResult] = []
@MainActor func run(_ name: String, _ samples: () throws -> Samples) rethrows {
    guard wanted(name) else { return }
    FileHandle.standardError.write(Data("… \(name)\n".utf8))
    results.append(result(name, try samples()))
}

let jsonDecoder = workloads.jsonDecoder
let csvDecoder = workloads.csvDecoder
run("decode-json") { measure { jsonDecoder.decode(jsonPayload) } }
do {
    try run("parse-csv") { try measure { try CSVRecord.parse(csvPayload) } }
} catch {
    fail("parse-csv: \(error)")
}
run("decode-csv") { measure { csvDecoder.decode(csvPayload) } }
run("condition") { measure { condition.evaluate(context) } }
run("render-job") { measure { job.render(context) } }
run("rules") { measure { rules.evaluate(context) } }

if !noRedis, wanted("redis-lpush") || wanted("redis-pipeline") {
    let redis: TemporaryRedis
    do {
        redis = try await TemporaryRedis.start()
    } catch {
        fail("cannot start Redis for the Redis benchmarks (--no-redis skips them): \(error)")
    }
    redisVersion = redis.version
    for index in results.indices { results[index].redisVersion = redis.version }
    do {
        let connection = try await redis.connect()
        let value = RedisArgument(jsonPayload)
        if wanted("redis-lpush") {
            FileHandle.standardError.write(Data("… redis-lpush\n".utf8))
            let samples = try await measure(operationsPerCall: 1) { _ = try await connection.command("LPUSH", "micro", value) }
            results.append(result("redis-lpush", samples, settings: ["redis": redis.version]))
            _ = try await connection.command("DEL", "micro")
        }
        if wanted("redis-pipeline") {
            FileHandle.standardError.write(Data("… redis-pipeline\n".utf8))
            let depth = 100
            let commands: [[RedisArgument]] = Array(repeating: ["LPUSH", "micro", value], count: depth)
            let samples = try await measure(operationsPerCall: depth) { _ = try await connection.pipeline(commands) }
            results.append(result("redis-pipeline", samples, settings: ["redis": redis.version, "depth": String(depth)]))
            _ = try await connection.command("DEL", "micro")
        }
        await connection.close()
    } catch {
        await redis.shutdown()
        fail("the Redis benchmarks: \(error)")
    }
    await redis.shutdown()
}

// MARK: Output

print(
    "benchmark".padding(toLength: 16, withPad: " ", startingAt: 0) + " "
        + [
            "ops/s".leftPadded(14), "p50 ns".leftPadded(10), "p90 ns".leftPadded(10),
            "p99 ns".leftPadded(10), "p99.9 ns".leftPadded(10), "batch".leftPadded(8),
        ].joined(separator: " "))
for result in results {
    let latency = result.latencyMicroseconds
    let ns = [latency?.p50, latency?.p90, latency?.p99, latency?.p999].map { String(format: "%10.1f", ($0 ?? .nan) * 1000) }
    print(
        result.scenario.dropFirst("micro/".count).padding(toLength: 16, withPad: " ", startingAt: 0) + " "
            + String(format: "%.0f", result.eventsPerSecond).leftPadded(14) + " " + ns.joined(separator: " ") + " "
            + (result.settings["batch"] ?? "").leftPadded(8))
}
print(BenchResult.table(results).split(separator: "\n").first.map(String.init) ?? "")

let comparison: BenchComparison?
do {
    comparison = try output.emit(results)
} catch {
    fail("\(error)")
}
if let comparison {
    print("\nBaseline: \(output.baselinePath ?? "")")
    print(comparison.text())
    if !comparison.passed { exit(1) }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
