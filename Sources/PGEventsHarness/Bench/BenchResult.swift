public import Foundation
import PGEventsSystem

/// One scenario run in the benchmark result format (DESIGN.md): what ran, what it measured, on what.
public struct BenchResult: Sendable, Codable {
    public struct Latency: Sendable, Codable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
    }

    public struct Machine: Sendable, Codable {
        public var cores: Int
        public var memoryGB: Double
        public var os: String

        enum CodingKeys: String, CodingKey {
            case cores, os
            case memoryGB = "memory_gb"
        }

        /// This machine.
        public static var current: Machine {
            let release = (try? readFile("/etc/os-release")) ?? ""
            let name = release.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
                .map { String($0.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            return Machine(
                cores: ProcessInfo.processInfo.activeProcessorCount,
                memoryGB: (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
                os: name ?? ProcessInfo.processInfo.operatingSystemVersionString)
        }
    }

    public var scenario: String
    public var events: Int
    public var durationSeconds: Double
    public var eventsPerSecond: Double
    /// Microseconds, end to end; nil when the scenario does not measure latency.
    public var latencyMicroseconds: Latency?
    /// Per-stage latency (microseconds), e.g. `commit→notified`.
    public var stages: [String: Latency]
    public var lost: Int
    public var duplicated: Int
    public var errors: Int
    public var postgresVersion: String
    public var redisVersion: String
    public var machine: Machine
    public var gitCommit: String?
    public var startedAt: Date
    /// Scenario-specific figures (a fault's recovery and detection times, say).
    public var extra: [String: Double]
    public var note: String?

    enum CodingKeys: String, CodingKey {
        case scenario, events, stages, lost, duplicated, errors, machine, extra, note
        case durationSeconds = "duration_s"
        case eventsPerSecond = "events_per_s"
        case latencyMicroseconds = "latency_us"
        case postgresVersion = "postgres_version"
        case redisVersion = "redis_version"
        case gitCommit = "git_commit"
        case startedAt = "started_at"
    }

    public init(scenario: String, events: Int, durationSeconds: Double, eventsPerSecond: Double, latencyMicroseconds: Latency? = nil,
                stages: [String: Latency] = [:], lost: Int, duplicated: Int, errors: Int, postgresVersion: String, redisVersion: String,
                machine: Machine = .current, gitCommit: String? = BenchResult.gitCommit(), startedAt: Date, extra: [String: Double] = [:], note: String? = nil) {
        self.scenario = scenario
        self.events = events
        self.durationSeconds = durationSeconds
        self.eventsPerSecond = eventsPerSecond
        self.latencyMicroseconds = latencyMicroseconds
        self.stages = stages
        self.lost = lost
        self.duplicated = duplicated
        self.errors = errors
        self.postgresVersion = postgresVersion
        self.redisVersion = redisVersion
        self.machine = machine
        self.gitCommit = gitCommit
        self.startedAt = startedAt
        self.extra = extra
        self.note = note
    }

    /// The commit of the working directory's repository, if it is one (`git rev-parse HEAD`).
    public static func gitCommit() -> String? {
        guard let git = ["/usr/bin/git", "/usr/local/bin/git"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              let (termination, output) = try? ChildProcess.run(git, ["rev-parse", "HEAD"]), termination == .exited(0) else { return nil }
        let commit = output.trimmed()
        return commit.count == 40 ? commit : nil
    }

    /// Several results as a JSON array (pretty-printed, sorted keys, ISO-8601 dates).
    public static func json(_ results: [BenchResult]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(results), as: UTF8.self)
    }
}
