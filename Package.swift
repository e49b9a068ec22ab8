// swift-tools-version: 6.1
// pgevents: test, run and benchmark PostgreSQL LISTEN/NOTIFY event pipelines.
import PackageDescription

import class Foundation.ProcessInfo

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "pgevents",
    // Linux only (README, "Platforms"): the OS plumbing is Glibc's and Linux's, so no Apple platform is claimed.
    products: [
        .library(name: "PGEventsPostgres", targets: ["PGEventsPostgres"]),
        .library(name: "PGEventsRedis", targets: ["PGEventsRedis"]),
        .library(name: "PGEvents", targets: ["PGEvents"]),
        .library(name: "PGEventsHarness", targets: ["PGEventsHarness"]),
        .library(name: "PGEventsCheck", targets: ["PGEventsCheck"]),
        .library(name: "PGEventsBench", targets: ["PGEventsBench"]),
        .library(name: "PGEventsServe", targets: ["PGEventsServe"]),
        .library(name: "PGEventsOps", targets: ["PGEventsOps"]),
        .executable(name: "pgevents", targets: ["PGEventsCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        // System libraries: libpq and hiredis are the reference clients of their servers.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        // hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM refuses; the header is on the default path.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]
        ),
        // Linux's epoll (in libc; Swift's Glibc module leaves it out), for `pgevents bench fanout`'s clients.
        .systemLibrary(name: "CEpoll"),
        // Threads, processes and errno: the small amount of OS plumbing both clients share.
        .target(
            name: "PGEventsSystem",
            swiftSettings: strict
        ),
        .target(
            name: "PGEventsPostgres",
            dependencies: [
                "CLibPQ", "PGEventsSystem",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "PGEventsRedis",
            dependencies: [
                "CHiredis", "PGEventsSystem",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The reference processor: listen, catch up from a durable cursor, deliver to Redis.
        .target(
            name: "PGEvents",
            dependencies: [
                "PGEventsSystem", "PGEventsPostgres", "PGEventsRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The test kit users add to their test target: throwaway servers and databases, migrations, the
        // replication pair, faults, expectations. Below the processor: it never imports PGEvents.
        .target(
            name: "PGEventsHarness",
            dependencies: [
                "PGEventsSystem", "PGEventsPostgres", "PGEventsRedis",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // `pgevents check`: runs migrations on throwaway servers and judges what their triggers send. It reads
        // its spec with the processor's YAML nodes, hence PGEvents.
        .target(
            name: "PGEventsCheck",
            dependencies: [
                "PGEventsSystem", "PGEventsPostgres", "PGEvents", "PGEventsHarness",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // `pgevents bench`: the processor's scenarios and faults on throwaway servers, results and baselines.
        .target(
            name: "PGEventsBench",
            dependencies: [
                "PGEventsSystem", "PGEventsPostgres", "PGEventsRedis", "PGEvents", "PGEventsHarness", "CEpoll",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        // The gateway to browsers: Redis streams out over WebSocket and SSE, with JWT. Its own module, so the
        // processor and the test kit never depend on Hummingbird.
        .target(
            name: "PGEventsServe",
            dependencies: [
                "PGEventsSystem", "PGEventsPostgres", "PGEventsRedis", "PGEvents",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strict
        ),
        // Running the processor in production: its metrics backend (swift-prometheus) and its HTTP endpoints (`--http`:
        // /metrics, /healthz, /readyz, /status). A module of its own, so the processor library depends on neither.
        .target(
            name: "PGEventsOps",
            dependencies: [
                "PGEvents", "PGEventsRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "PGEventsCLI",
            dependencies: [
                "PGEvents", "PGEventsHarness", "PGEventsCheck", "PGEventsBench", "PGEventsServe", "PGEventsOps", "PGEventsPostgres",
                "PGEventsRedis",
                "PGEventsSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // What every parser of outside input must do with any input: shared by the seeded random-input tests
        // (FuzzTests) and the libFuzzer targets in Benchmarks/Fuzz/.
        .target(
            name: "PGEventsFuzzOracles",
            dependencies: ["PGEventsPostgres", "PGEventsRedis", "PGEvents", "PGEventsHarness", "PGEventsCheck"],
            path: "Tests/PGEventsFuzzOracles",
            swiftSettings: strict
        ),
        // Unit tests: pure logic, no server.
        .testTarget(
            name: "PGEventsUnitTests",
            dependencies: [
                "PGEventsSystem", "PGEventsPostgres", "PGEventsRedis", "PGEvents", "PGEventsHarness", "PGEventsCheck",
                "PGEventsBench", "PGEventsFuzzOracles",
                "PGEventsServe", "PGEventsOps",
                "PGEventsCLI",  // the bench output options' validation
                .product(name: "Metrics", package: "swift-metrics"),
                // NIO's in-memory channel, for serve's WebSocket feed.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Tests/PGEventsUnitTests",
            swiftSettings: strict
        ),
        // Integration tests: real PostgreSQL and Redis servers started through the harness.
        .testTarget(
            name: "PGEventsIntegrationTests",
            dependencies: [
                "PGEventsSystem", "PGEventsPostgres", "PGEventsRedis", "PGEvents", "PGEventsHarness", "PGEventsCheck",
                "PGEventsBench", "PGEventsCLI",
                "PGEventsServe",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            path: "IntegrationTests",
            exclude: ["CheckCorpus", "BenchPipeline"],  // migration sets `check` and `bench` are run on
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Benchmarks/ is compiled only on request (as Hummingbird does with ENABLE_HB_BENCHMARKS), so ordinary
// builds and CI never spend time on it:  PGEVENTS_BENCHMARKS=1 swift run -c release pgevents-foundation-bench
if ProcessInfo.processInfo.environment["PGEVENTS_BENCHMARKS"] != nil {
    package.targets += [
        .target(
            name: "CRawListen",
            path: "Benchmarks/CRawListen",
            linkerSettings: [.linkedLibrary("pq")]
        ),
        .executableTarget(
            name: "pgevents-processor-bench",
            dependencies: ["PGEventsHarness", "PGEventsBench", "PGEventsPostgres", "PGEventsRedis"],
            path: "Benchmarks/ProcessorBenchmarks",
            swiftSettings: strict
        ),
        // The hot paths one operation at a time (decoding, CSV, rules, job templates, Redis pipelining), as
        // BenchResults compared with a baseline like `pgevents bench`'s scenarios (Benchmarks/README.md).
        .executableTarget(
            name: "pgevents-micro-bench",
            dependencies: ["PGEvents", "PGEventsHarness", "PGEventsBench", "PGEventsRedis", "PGEventsMicroWorkloads"],
            path: "Benchmarks/MicroBenchmarks",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "pgevents-foundation-bench",
            dependencies: ["CRawListen", "PGEventsHarness", "PGEventsPostgres"],
            path: "Benchmarks/FoundationBenchmarks",
            swiftSettings: strict
        ),
    ]
}

// The micro-benchmarks' inputs, for both of their runners.
if ProcessInfo.processInfo.environment["PGEVENTS_BENCHMARKS"] != nil
    || ProcessInfo.processInfo.environment["PGEVENTS_ORDO_BENCHMARKS"] != nil
{
    package.targets.append(
        .target(name: "PGEventsMicroWorkloads", dependencies: ["PGEvents"], path: "Benchmarks/MicroWorkloads", swiftSettings: strict))
}

// The same micro-benchmarks under ordo-one/benchmark (wall clock, allocations, its own thresholds), on request:
//   PGEVENTS_ORDO_BENCHMARKS=1 swift package benchmark
// Its traits are named so that RuntimeInterposer (a default on Linux with Swift 6.3) is off: it needs
// ordo-one/swift-runtime-interposer, which is not among the packages this project can fetch (resolution fails).
// MallocInterposer's package is, and gives the allocation counts.
if ProcessInfo.processInfo.environment["PGEVENTS_ORDO_BENCHMARKS"] != nil {
    package.dependencies.append(.package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]))
    package.targets.append(
        .executableTarget(
            name: "PGEventsMicroBenchmarks",
            dependencies: ["PGEvents", "PGEventsMicroWorkloads", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/PGEventsMicroBenchmarks",
            swiftSettings: strict,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ))
}

// Benchmarks/Fuzz/ holds libFuzzer targets, one per parser of outside input; compiled only on request, with the
// fuzzer's instrumentation (ci/fuzz does this, and runs them):
//   PGEVENTS_FUZZ=1 swift build -c release -Xswiftc -sanitize=fuzzer --product pgevents-fuzz-json
if ProcessInfo.processInfo.environment["PGEVENTS_FUZZ"] != nil {
    package.targets.append(.target(name: "CLibFuzzer", path: "Benchmarks/Fuzz/CLibFuzzer"))
    for name in ["json", "csv", "text", "spec", "config", "resp", "sql"] {
        package.targets.append(
            .executableTarget(
                name: "pgevents-fuzz-\(name)",
                dependencies: ["CLibFuzzer", "PGEventsFuzzOracles"],
                path: "Benchmarks/Fuzz/Targets/\(name)",
                swiftSettings: strict
            ))
    }
}
