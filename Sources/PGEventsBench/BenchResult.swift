public import Foundation
import PGEventsSystem

/// One scenario run in the benchmark results file (its format is in Benchmarks/README.md): what ran, what it
/// measured, on what.
public struct BenchResult: Sendable, Codable {
    public struct Latency: Sendable, Codable, Equatable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double

        public init(p50: Double, p90: Double, p99: Double, p999: Double, max: Double) {
            self.p50 = p50
            self.p90 = p90
            self.p99 = p99
            self.p999 = p999
            self.max = max
        }
    }

    /// One point of a latency distribution, for plots: `percentile` in 0…100, `value` in microseconds.
    public struct LatencyPoint: Sendable, Codable, Equatable {
        public var percentile: Double
        public var value: Double

        public init(percentile: Double, value: Double) {
            self.percentile = percentile
            self.value = value
        }
    }

    /// One sample of a time series (a soak's): `elapsed` seconds since the load started, and named figures.
    /// In JSON one flat object: `{"t_s": 10, "journal_rows": 1234, "rss_mb": 48.2, …}`.
    public struct SeriesPoint: Sendable, Codable, Equatable {
        public var elapsedSeconds: Double
        public var values: [String: Double]

        public init(elapsedSeconds: Double, values: [String: Double]) {
            self.elapsedSeconds = elapsedSeconds
            self.values = values
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        static let elapsedKey = "t_s"

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            var values: [String: Double] = [:]
            var elapsed: Double?
            for key in container.allKeys {
                let value = try container.decode(Double.self, forKey: key)
                if key.stringValue == Self.elapsedKey { elapsed = value } else { values[key.stringValue] = value }
            }
            guard let elapsed else {
                throw DecodingError.keyNotFound(
                    Key(stringValue: Self.elapsedKey), .init(codingPath: decoder.codingPath, debugDescription: "a series point needs t_s"))
            }
            self.elapsedSeconds = elapsed
            self.values = values
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(elapsedSeconds, forKey: Key(stringValue: Self.elapsedKey))
            for (name, value) in values where name != Self.elapsedKey { try container.encode(value, forKey: Key(stringValue: name)) }
        }
    }

    public struct Machine: Sendable, Codable, Equatable {
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
    /// What the scenario ran with (rate, writers, duration, synchronous_commit, …), as given.
    public var settings: [String: String]
    /// The end-to-end latency distribution (percentile → microseconds), for plots; nil when not measured.
    public var distribution: [LatencyPoint]?
    /// Figures sampled over the run (a soak's memory, journal and delivery counts), for plots; nil when not sampled.
    public var series: [SeriesPoint]?

    enum CodingKeys: String, CodingKey {
        case scenario, events, stages, lost, duplicated, errors, machine, extra, note, settings, distribution, series
        case durationSeconds = "duration_s"
        case eventsPerSecond = "events_per_s"
        case latencyMicroseconds = "latency_us"
        case postgresVersion = "postgres_version"
        case redisVersion = "redis_version"
        case gitCommit = "git_commit"
        case startedAt = "started_at"
    }

    public init(
        scenario: String, events: Int, durationSeconds: Double, eventsPerSecond: Double, latencyMicroseconds: Latency? = nil,
        stages: [String: Latency] = [:], lost: Int, duplicated: Int, errors: Int, postgresVersion: String, redisVersion: String,
        machine: Machine = .current, gitCommit: String? = BenchResult.gitCommit(), startedAt: Date, extra: [String: Double] = [:],
        note: String? = nil,
        settings: [String: String] = [:], distribution: [LatencyPoint]? = nil, series: [SeriesPoint]? = nil
    ) {
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
        self.settings = settings
        self.distribution = distribution
        self.series = series
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        scenario = try container.decode(String.self, forKey: .scenario)
        events = try container.decode(Int.self, forKey: .events)
        durationSeconds = try container.decode(Double.self, forKey: .durationSeconds)
        eventsPerSecond = try container.decode(Double.self, forKey: .eventsPerSecond)
        latencyMicroseconds = try container.decodeIfPresent(Latency.self, forKey: .latencyMicroseconds)
        stages = try container.decodeIfPresent([String: Latency].self, forKey: .stages) ?? [:]
        lost = try container.decode(Int.self, forKey: .lost)
        duplicated = try container.decode(Int.self, forKey: .duplicated)
        errors = try container.decodeIfPresent(Int.self, forKey: .errors) ?? 0
        postgresVersion = try container.decodeIfPresent(String.self, forKey: .postgresVersion) ?? ""
        redisVersion = try container.decodeIfPresent(String.self, forKey: .redisVersion) ?? ""
        machine = try container.decode(Machine.self, forKey: .machine)
        gitCommit = try container.decodeIfPresent(String.self, forKey: .gitCommit)
        startedAt = try container.decode(Date.self, forKey: .startedAt)
        extra = try container.decodeIfPresent([String: Double].self, forKey: .extra) ?? [:]
        note = try container.decodeIfPresent(String.self, forKey: .note)
        settings = try container.decodeIfPresent([String: String].self, forKey: .settings) ?? [:]
        distribution = try container.decodeIfPresent([LatencyPoint].self, forKey: .distribution)
        series = try container.decodeIfPresent([SeriesPoint].self, forKey: .series)
    }

    /// Results read back from `json(_:)`'s output (an array, or one object).
    public static func decode(json data: Data) throws -> [BenchResult] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let first = data.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        if first == UInt8(ascii: "[") { return try decoder.decode([BenchResult].self, from: data) }
        return [try decoder.decode(BenchResult.self, from: data)]
    }

    /// The commit of the working directory's repository, if it is one (`git rev-parse HEAD`).
    public static func gitCommit() -> String? {
        guard let git = ["/usr/bin/git", "/usr/local/bin/git"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
            let (termination, output) = try? ChildProcess.run(git, ["rev-parse", "HEAD"]), termination == .exited(0)
        else { return nil }
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
