// Everything `pgevents check` found. Rendering is in CheckReport+Rendering.swift and CheckReport+TAP.swift.

/// Everything `check` found.
public struct CheckReport: Sendable, Hashable, Codable {
    /// The spec file or migrations directory checked.
    public var source: String
    /// The PostgreSQL versions the checks ran on.
    public var postgresVersions: [String]
    public var results: [CheckResult]
    /// The triggers seen notifying, with a sample payload each.
    public var observed: [ObservedChannel]
    /// Seconds the whole check took.
    public var durationSeconds: Double
    /// Server versions the check could not run on, each with the reason (an extension the server lacks) and
    /// what to do; nil when it ran on every version. Any makes `pgevents check` exit with status 2.
    public var unavailable: [String]?
    /// The migration layout the files were read as (`flyway`, `dbmate`, `goose`, `golang-migrate`, `sqitch`,
    /// `plain`); nil for reports made before layouts were detected.
    public var layout: String?

    public init(
        source: String, postgresVersions: [String] = [], results: [CheckResult] = [], observed: [ObservedChannel] = [],
        durationSeconds: Double = 0
    ) {
        self.source = source
        self.postgresVersions = postgresVersions
        self.results = results
        self.observed = observed
        self.durationSeconds = durationSeconds
    }

    /// True when no check failed, on every version asked for.
    public var passed: Bool { !results.contains { $0.status == .failed } && unavailable == nil }
    public var failures: [CheckResult] { results.filter { $0.status == .failed } }
    /// The warnings: facts reported that do not fail the check.
    public var warnings: [CheckResult] { results.filter { $0.status == .warning } }
}
