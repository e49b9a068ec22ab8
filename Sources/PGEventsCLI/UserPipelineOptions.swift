import ArgumentParser
import Foundation
import PGEvents
import PGEventsBench
import PGEventsHarness

/// `pgevents bench --migrations DIR --statement SQL|--script FILE --processor-config FILE`: the user's own
/// pipeline, for `writers` and `latency` (and `all`, which then runs those two).
struct UserPipelineOptions: ParsableArguments {
    @Option(
        help:
            "Your migrations (the layouts of `pgevents check`): writers and latency run your trigger and processor instead of the bench's table."
    )
    var migrations: String?

    @Option(help: "With --migrations: their layout, as for check (default: detected).")
    var layout: String?

    @Option(name: .customLong("define"), help: "With --migrations: a placeholder's value, NAME=VALUE (repeatable), as for check.")
    var defines: [String] = []

    @Option(help: "With --migrations: the transaction each writer commits, e.g. 'INSERT INTO orders (amount) VALUES (10)'.")
    var statement: String?

    @Option(
        help: "With --migrations: a pgbench-style script file (SQL, \\set NAME random(LO, HI), :NAME, :client_id) instead of --statement.")
    var script: String?

    @Option(name: .customLong("processor-config"), help: "With --migrations: your processor.yml (the processor of latency runs it).")
    var processorConfig: String?

    /// The pipeline, or nil when `--migrations` is not given; every mistake is a `ValidationError` naming the option, file and line.
    func pipeline() throws -> ScenarioBench.UserPipeline? {
        guard let migrations else {
            for (name, given) in [
                ("--statement", statement != nil), ("--script", script != nil), ("--processor-config", processorConfig != nil),
                ("--layout", layout != nil), ("--define", !defines.isEmpty),
            ] where given {
                throw ValidationError("\(name) belongs to your pipeline: give your migrations with --migrations DIR too")
            }
            return nil
        }
        guard let processorConfig else {
            throw ValidationError(
                "--migrations needs --processor-config: the processor.yml whose channels are counted and whose processor latency runs")
        }
        let script: BenchScript
        switch (statement, self.script) {
        case (let statement?, nil): script = try problem { try BenchScript(statement: statement) }
        case (nil, let path?): script = try problem { try BenchScript(contentsOf: path) }
        case (nil, nil): throw ValidationError("--migrations needs the transaction your writers commit: --statement SQL or --script FILE")
        case (_?, _?): throw ValidationError("--statement and --script exclude each other")
        }
        var known: MigrationLayout?
        if let layout {
            guard let value = MigrationLayout(rawValue: layout) else {
                throw ValidationError("--layout \(layout): unknown layout; one of \(MigrationLayout.names)")
            }
            known = value
        }
        let set = try problem {
            try MigrationSet(directory: migrations, layout: known, placeholders: try Placeholders(definitions: defines))
        }
        let configuration = try problem { try ProcessorConfiguration(contentsOf: processorConfig) }
        return ScenarioBench.UserPipeline(migrations: set, script: script, processor: configuration, processorPath: processorConfig)
    }

    private func problem<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
