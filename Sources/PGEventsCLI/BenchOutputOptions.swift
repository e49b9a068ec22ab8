import ArgumentParser
import Foundation
import PGEventsBench

/// What every `pgevents bench` scenario does with its results besides printing them: `--json FILE` (the
/// the results file of Benchmarks/README.md), `--html FILE` (a self-contained report with a latency plot), and `--baseline FILE
/// --max-regression PCT` (a comparison with stored results that fails on a regression).
///
/// A scenario command takes these with `@OptionGroup var output: BenchOutputOptions` and ends with
/// `try CommandExit.failed(if: try output.emit(results) != 0)`.
struct BenchOutputOptions: ParsableArguments {
    /// The default threshold: a figure may be this much worse (percent) before it is a regression.
    static let defaultMaxRegression = 10.0

    @Option(
        name: .customLong("json"),
        help: ArgumentHelp("Write the results as JSON (the format of Benchmarks/README.md) to this file.", valueName: "file"))
    var json: String?

    @Option(
        name: .customLong("html"),
        help: ArgumentHelp(
            "Write an HTML report (results table and latency distribution plot, no network resources) to this file.", valueName: "file"))
    var html: String?

    @Option(
        name: .customLong("baseline"),
        help: ArgumentHelp("Compare throughput and p99 with the results in this JSON file; exit 1 on a regression.", valueName: "file"))
    var baseline: String?

    @Option(
        name: .customLong("max-regression"),
        help: ArgumentHelp(
            "With --baseline: how much worse, in percent, a figure may be before it is a regression (0…1000; default \(Int(defaultMaxRegression))).",
            valueName: "pct"))
    var maxRegression: Double?

    /// The threshold in force.
    var maxRegressionPercent: Double { maxRegression ?? Self.defaultMaxRegression }

    func validate() throws {
        if let maxRegression {
            guard baseline != nil else { throw ValidationError("--max-regression needs --baseline FILE (the results to compare with)") }
            guard maxRegression.isFinite, (0...1000).contains(maxRegression) else {
                throw ValidationError("--max-regression must be a percentage from 0 to 1000, got \(maxRegression)")
            }
        }
        for (flag, path) in [("--json", json), ("--html", html), ("--baseline", baseline)] {
            if let path, path.isEmpty { throw ValidationError("\(flag) needs a file name") }
        }
    }

    /// Reads the baseline before anything runs, so that a wrong path fails at once rather than after the scenarios
    /// (`ExitCode(2)` naming the file); nothing to do without `--baseline`.
    func checkBaseline() throws {
        guard let baseline else { return }
        do {
            _ = try BenchOutput.readResults(
                baseline, role: "baseline",
                missingHint: "; record one with: pgevents bench baseline update --from RESULTS.json --to \(baseline)")
        } catch {
            throw Self.failure(error.message)
        }
    }

    /// The library's view of these options.
    var output: BenchOutput {
        BenchOutput(jsonPath: json, htmlPath: html, baselinePath: baseline, maxRegressionPercent: maxRegressionPercent)
    }

    /// Writes the files asked for, then compares `results` with the baseline if one was given and prints the
    /// comparison. Returns the exit status: 0, or 1 on a regression beyond the threshold or on a result that lost
    /// or duplicated events (with or without a baseline). A baseline that cannot be read, or is not results JSON, and a file that cannot be
    /// written, are `ExitCode(2)` with the file named on standard error (the baseline is read before anything is
    /// written).
    func emit(_ results: [BenchResult]) throws -> Int32 {
        let comparison: BenchComparison?
        do {
            comparison = try output.emit(results)
        } catch {
            throw Self.failure(error.message)
        }
        guard let comparison, let baseline else {
            let broken = results.filter { $0.lost > 0 || $0.duplicated > 0 }
            for result in broken { print("LOST OR DUPLICATED: \(result.scenario) lost \(result.lost), duplicated \(result.duplicated)") }
            return broken.isEmpty ? 0 : 1
        }
        print("\nBaseline: \(baseline)")
        print(comparison.text())
        return comparison.passed ? 0 : 1
    }

    /// The results in `path` (a missing, unreadable, malformed or empty file is `ExitCode(2)` naming it).
    static func readResults(_ path: String, role: String) throws -> [BenchResult] {
        do {
            return try BenchOutput.readResults(path, role: role)
        } catch {
            throw failure(error.message)
        }
    }

    /// Writes `text` to `path` (a failure is `ExitCode(2)` naming it).
    static func write(_ text: String, to path: String, what: String) throws {
        do {
            try BenchOutput.write(text, to: path, what: what)
        } catch {
            throw failure(error.message)
        }
    }

    /// Prints `pgevents bench: message` on standard error; the error to throw is exit status 2 (the input or the
    /// machine is wrong), as the other commands do.
    static func failure(_ message: String) -> ExitCode {
        CommandExit(command: "bench").badInput(message)
    }
}
