import ArgumentParser
import Foundation
import PGEventsBench

/// `pgevents bench baseline`: record, show and compare stored benchmark results.
struct BenchBaselineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Record, show and compare baselines: stored results that `--baseline FILE` compares with.",
        discussion: """
            A baseline is a results file (the --json format) kept under Benchmarks/baselines/, one per kind of \
            machine: figures only compare on like machines. See Benchmarks/baselines/README.md.
            """,
        subcommands: [Update.self, Show.self, Compare.self]
    )

    /// `Benchmarks/baselines/NAME.json`.
    static func defaultPath(name: String) -> String { "Benchmarks/baselines/\(name).json" }

    /// `pgevents bench baseline update --from RESULTS.json [--to FILE | --name NAME] [--merge]`.
    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a baseline from a results file.",
            discussion: """
                Results that lost or duplicated events are refused (a broken run is no baseline). With --merge, \
                the scenarios in RESULTS replace those of the same name in the existing baseline and the others are kept.
                """
        )

        @Option(
            help: ArgumentHelp(
                "The results to record (written by --json); repeat it to record several files as one baseline.", valueName: "results.json"))
        var from: [String]

        @Option(help: ArgumentHelp("The baseline file to write (default: Benchmarks/baselines/NAME.json).", valueName: "file"))
        var to: String?

        @Option(help: "The baseline's name, for the default --to: the kind of machine it was recorded on.")
        var name: String = "default"

        @Flag(help: "Keep the existing baseline's other scenarios.")
        var merge = false

        func validate() throws {
            if from.isEmpty { throw ValidationError("give the results to record: --from RESULTS.json") }
            if to != nil, name != "default" { throw ValidationError("give --to FILE or --name NAME, not both") }
            guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else {
                throw ValidationError("--name must be a plain file name (no '/', not starting with '.'), got '\(name)'")
            }
        }

        func run() throws {
            let destination = to ?? BenchBaselineCommand.defaultPath(name: name)
            var results = try BenchBaselineCommand.readAll(from)
            let broken = results.filter { $0.lost > 0 || $0.duplicated > 0 }
            if !broken.isEmpty {
                throw BenchOutputOptions.failure(
                    "\(from.joined(separator: ", ")): refusing to record a baseline from results that lost or duplicated events: "
                        + broken.map { "\($0.scenario) (lost \($0.lost), duplicated \($0.duplicated))" }.joined(separator: ", "))
            }
            if merge, FileManager.default.fileExists(atPath: destination) {
                let existing = try BenchOutputOptions.readResults(destination, role: "baseline")
                let replaced = Set(results.map(\.scenario))
                results = existing.filter { !replaced.contains($0.scenario) } + results
            }
            let directory = URL(fileURLWithPath: destination).deletingLastPathComponent().path
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw BenchOutputOptions.failure("cannot create \(directory): \(error.localizedDescription)")
            }
            try BenchOutputOptions.write(try BenchResult.json(results) + "\n", to: destination, what: "the baseline")
            print("pgevents bench: wrote \(results.count) scenario\(results.count == 1 ? "" : "s") to \(destination)")
            print(BenchResult.table(results))
            if results.contains(where: { $0.gitCommit == nil }) {
                FileHandle.standardError.write(
                    Data("pgevents bench: note: some results carry no git commit (not run in a git checkout)\n".utf8))
            }
        }
    }

    /// `pgevents bench baseline show [FILE …]`.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a baseline (or any results file) as a table.")

        @Argument(help: ArgumentHelp("Baseline or results files (default: Benchmarks/baselines/default.json).", valueName: "file"))
        var files: [String] = []

        func run() throws {
            let paths = files.isEmpty ? [BenchBaselineCommand.defaultPath(name: "default")] : files
            print(BenchResult.table(try paths.flatMap { try BenchOutputOptions.readResults($0, role: "results") }))
        }
    }

    /// `pgevents bench baseline compare RESULTS.json --baseline FILE [--max-regression PCT] [--html FILE]`.
    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare a results file with a baseline, as --baseline does after a run.",
            discussion:
                "Exit status: 0 no regression, 1 a regression beyond the threshold or lost or duplicated events, 2 a file is missing or wrong."
        )

        @Argument(help: ArgumentHelp("The results to compare (written by --json), one file or several.", valueName: "results.json"))
        var results: [String]

        @OptionGroup var output: BenchOutputOptions

        func validate() throws {
            if results.isEmpty { throw ValidationError("give the results to compare: RESULTS.json …") }
            if output.baseline == nil { throw ValidationError("give the baseline to compare with: --baseline FILE") }
        }

        func run() throws {
            let current = try BenchBaselineCommand.readAll(results)
            print(BenchResult.table(current))
            try CommandExit.failed(if: try output.emit(current) != 0)
        }
    }

    /// The results of several files, in order (a scenario in two files is kept twice; the comparison uses the first).
    static func readAll(_ paths: [String]) throws -> [BenchResult] {
        try paths.flatMap { try BenchOutputOptions.readResults($0, role: "results") }
    }
}
