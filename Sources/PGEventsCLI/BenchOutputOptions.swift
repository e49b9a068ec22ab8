import ArgumentParser
import Foundation
import PGEventsHarness

/// Where `pgevents bench` writes its results besides the table on stdout.
///
/// (A minimal version: only `--json`; the full one, with `--html`, `--baseline` and `--max-regression`,
/// replaces it.)
struct BenchOutputOptions: ParsableArguments {
    @Option(help: "Also write the results as JSON (the DESIGN.md benchmark format) to this file.")
    var json: String?

    /// Writes the results where asked; returns the exit status (0: written and no regression).
    func emit(_ results: [BenchResult]) throws -> Int32 {
        if let json {
            do {
                try BenchResult.json(results).write(toFile: json, atomically: true, encoding: .utf8)
            } catch {
                throw ValidationError("cannot write the JSON results to \(json): \(error.localizedDescription)")
            }
        }
        return 0
    }
}
