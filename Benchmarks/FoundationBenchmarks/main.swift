// Measures the foundation: time to a ready TemporaryPostgres (cold initdb and warm from the cache), time per
// makeDatabase(), and the NOTIFY receive rate of PostgresConnection against a minimal C libpq loop, both in
// this one process and run, interleaved, so the ratio holds on a shared machine.
//
//   PGEVENTS_BENCHMARKS=1 swift run -c release pgevents-foundation-bench [--json FILE] [--notifications N]
//       [--rounds N] [--receive-only] [--swift-only]
//       [--late-consumer]   start consuming only after everything was read from the socket, to see the
//                           listener thread's own read rate without a consumer competing for the cores
import CRawListen
import Dispatch
import Foundation
import PGEventsHarness
import PGEventsPostgres

struct Figures: Codable {
    var name: String
    var unit: String
    var samples: [Double]
    var median: Double { samples.sorted()[samples.count / 2] }
    var min: Double { samples.min() ?? 0 }
    var max: Double { samples.max() ?? 0 }
    var mean: Double { samples.reduce(0, +) / Double(samples.count) }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil }
}
let notificationCount = Int(option("--notifications") ?? "") ?? 200_000
let rounds = Int(option("--rounds") ?? "") ?? 5
var results: [Figures] = []

let receiveOnly = arguments.contains("--receive-only")
// Cold start: initdb every time.
var cold = Figures(name: "TemporaryPostgres.start, cold (initdb)", unit: "ms", samples: [])
for _ in 0..<(receiveOnly ? 0 : 3) {
    let start = ContinuousClock.now
    let server = try await TemporaryPostgres.start(.init(reuseInitializedDataDirectory: false))
    cold.samples.append(seconds(ContinuousClock.now - start) * 1000)
    await server.shutdown()
}
if !receiveOnly { results.append(cold) }

// Warm start: copy of the cached data directory (the first start fills the cache if it is empty).
await (try TemporaryPostgres.start()).shutdown()
var warm = Figures(name: "TemporaryPostgres.start, warm (cached data directory)", unit: "ms", samples: [])
var stop = Figures(name: "TemporaryPostgres.shutdown", unit: "ms", samples: [])
for _ in 0..<(receiveOnly ? 0 : 10) {
    let start = ContinuousClock.now
    let server = try await TemporaryPostgres.start()
    warm.samples.append(seconds(ContinuousClock.now - start) * 1000)
    let stopStart = ContinuousClock.now
    await server.shutdown()
    stop.samples.append(seconds(ContinuousClock.now - stopStart) * 1000)
}
if !receiveOnly { results += [warm, stop] }

let server = try await TemporaryPostgres.start()
try await server.makeTemplate { connection in
    try await connection.execute(
        """
        CREATE TABLE events (id bigserial PRIMARY KEY, chain_id int NOT NULL, payload jsonb NOT NULL, created_at timestamptz DEFAULT now());
        CREATE FUNCTION notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('new_event', json_build_object('id', NEW.id)::text); RETURN NEW; END $$;
        CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION notify_event();
        """)
}
var makeDatabase = Figures(name: "makeDatabase() from a migrated template", unit: "ms", samples: [])
for _ in 0..<(receiveOnly ? 0 : 50) {
    let start = ContinuousClock.now
    _ = try await server.makeDatabase()
    makeDatabase.samples.append(seconds(ContinuousClock.now - start) * 1000)
}
if !receiveOnly { results.append(makeDatabase) }

// Receive rate: one transaction sends N notifications; the listener's rate from the first to the last read.
let database = try await server.makeDatabase()
let sender = try await database.connect()
let payloadSQL = "SELECT count(pg_notify('bench', g::text)) FROM generate_series(1, \(notificationCount)) g"

func receiveWithC() async throws -> Double {
    var error = [CChar](repeating: 0, count: 512)
    guard let listener = raw_listener_open(database.configuration.conninfoIncludingSecrets, "bench", &error, 512) else {
        throw HarnessError(
            code: .startupFailed, message: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    defer { raw_listener_close(listener) }
    nonisolated(unsafe) let handle = listener  // used by the counting thread alone until it returns
    let counted = Task.detached { () -> (Int, Int64, Int64) in
        var first: Int64 = 0
        var last: Int64 = 0
        let received = raw_listener_count(handle, notificationCount, 30_000, &first, &last)
        return (received, first, last)
    }
    try await sender.query(payloadSQL)
    let (received, first, last) = await counted.value
    precondition(received == notificationCount, "C listener received \(received) of \(notificationCount)")
    return Double(notificationCount - 1) / (Double(last - first) / 1e9)
}

nonisolated(unsafe) var readRates: [Double] = []  // written by one counting task at a time

func receiveWithSwift(batches: Bool) async throws -> Double {
    let listener = try await database.connect()
    try await listener.listen("bench")
    let notifications = await listener.notifications()
    let counted = Task { () -> (Int, Int64, Int64) in
        if arguments.contains("--late-consumer") { try await Task.sleep(for: .seconds(2)) }
        var received = 0
        var first: Int64 = 0
        var batchCount = 0
        var firstRead = Date()
        var lastRead = Date()
        var iterator = notifications.makeAsyncIterator()
        if batches {
            while received < notificationCount, let batch = try await iterator.nextBatch() {
                if received == 0 {
                    first = monotonicNanoseconds()
                    firstRead = batch[0].receivedAt
                }
                received += batch.count
                batchCount += 1
                lastRead = batch[batch.count - 1].receivedAt
            }
        } else {
            while received < notificationCount, let notification = try await iterator.next() {
                if received == 0 {
                    first = monotonicNanoseconds()
                    firstRead = notification.receivedAt
                }
                received += 1
                lastRead = notification.receivedAt
            }
        }
        readRates.append(Double(notificationCount - 1) / lastRead.timeIntervalSince(firstRead))
        return (received, first, monotonicNanoseconds())
    }
    try await sender.query(payloadSQL)
    let (received, first, last) = try await counted.value
    await listener.close()
    precondition(received == notificationCount, "Swift listener received \(received) of \(notificationCount)")
    return Double(notificationCount - 1) / (Double(last - first) / 1e9)
}

var cRates = Figures(name: "NOTIFY receive, minimal C libpq loop", unit: "notifications/s", samples: [])
var swiftRates = Figures(name: "NOTIFY receive, PostgresConnection, one by one", unit: "notifications/s", samples: [])
var batchRates = Figures(name: "NOTIFY receive, PostgresConnection, nextBatch()", unit: "notifications/s", samples: [])
// The order within a round changes every round: whichever runs first after a big transaction is measured
// differently (the server is still cleaning up its notification queue), and alternating cancels that out.
for round in 0..<rounds {
    let steps: [() async throws -> Void] = [
        { swiftRates.samples.append(try await receiveWithSwift(batches: false)) },
        { batchRates.samples.append(try await receiveWithSwift(batches: true)) },
        { if !arguments.contains("--swift-only") { cRates.samples.append(try await receiveWithC()) } },
    ]
    for step in (round % 2 == 0 ? steps : steps.reversed()) { try await step() }
}
results += [cRates, swiftRates, batchRates]
results.append(Figures(name: "NOTIFY read from the socket, PostgresConnection", unit: "notifications/s", samples: readRates))
if cRates.samples.isEmpty { cRates.samples = [1] }
results.append(Figures(name: "one by one / C (per round)", unit: "ratio", samples: zip(swiftRates.samples, cRates.samples).map { $0 / $1 }))
results.append(
    Figures(name: "nextBatch() / C (per round)", unit: "ratio", samples: zip(batchRates.samples, cRates.samples).map { $0 / $1 }))
await sender.close()
await server.shutdown()

print(
    "PostgreSQL \(server.binaries.version), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(notificationCount) notifications per receive round, \(rounds) rounds\n"
)
func format(_ value: Double, _ unit: String) -> String {
    switch unit {
    case "ms": String(format: "%.1f", value)
    case "ratio": String(format: "%.3f", value)
    default: String(format: "%.0f", value)
    }
}
print("measurement".padding(toLength: 56, withPad: " ", startingAt: 0) + " median      min      max  unit")
for figure in results where !figure.samples.isEmpty {
    print(
        figure.name.padding(toLength: 56, withPad: " ", startingAt: 0)
            + format(figure.median, figure.unit).leftPad(8) + format(figure.min, figure.unit).leftPad(9)
            + format(figure.max, figure.unit).leftPad(9) + "  " + figure.unit)
}
if let path = option("--json") {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(results).write(to: URL(fileURLWithPath: path))
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
