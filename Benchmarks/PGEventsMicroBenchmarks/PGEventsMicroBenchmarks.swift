// The micro-benchmarks of pgevents-micro-bench under ordo-one/benchmark: wall clock, throughput and allocations
// of the hot paths, with its own baselines and static thresholds (Benchmarks/README.md).
//   PGEVENTS_ORDO_BENCHMARKS=1 swift package benchmark [--filter NAME]
//   PGEVENTS_ORDO_BENCHMARKS=1 swift package --allow-writing-to-package-directory benchmark thresholds update
//   PGEVENTS_ORDO_BENCHMARKS=1 swift package benchmark thresholds check
// (Redis pipelining needs a server and stays in pgevents-micro-bench.)
import Benchmark
import PGEvents
import PGEventsMicroWorkloads

let benchmarks: @Sendable () -> Void = {
    // A figure may be 25% worse at p50 and p90 before a check fails (a shared 2-core machine is noisy).
    let tolerance = BenchmarkThresholds(relative: [.p50: 25, .p90: 25])
    let workloads: MicroWorkloads
    do {
        workloads = try MicroWorkloads()
    } catch {
        print("PGEventsMicroBenchmarks: the fixtures: \(error)")
        return
    }
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1_000,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000,
        thresholds: [.wallClock: tolerance, .throughput: tolerance, .mallocCountTotal: tolerance])

    Benchmark("decode-json") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(workloads.jsonDecoder.decode(MicroWorkloads.jsonPayload)) }
    }
    Benchmark("parse-csv") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? CSVRecord.parse(MicroWorkloads.csvPayload)) }
    }
    Benchmark("decode-csv") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(workloads.csvDecoder.decode(MicroWorkloads.csvPayload)) }
    }
    Benchmark("condition") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(workloads.condition.evaluate(workloads.context)) }
    }
    Benchmark("render-job") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(workloads.job.render(workloads.context)) }
    }
    Benchmark("rules") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(workloads.rules.evaluate(workloads.context)) }
    }
}
