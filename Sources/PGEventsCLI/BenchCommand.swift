import ArgumentParser
import Foundation
import PGEventsHarness

/// `pgevents bench`: measurements on throwaway servers.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the pipeline on throwaway servers.",
        discussion: "Scenarios so far: faults. (The throughput, latency, burst and writers scenarios are in Benchmarks/ until they move here.)",
        subcommands: [FaultsCommand.self]
    )
}

/// `pgevents bench faults`: every fault under load, with a ledger of what was lost or duplicated.
struct FaultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract: "Inject each fault under load against the reference processor and count what is lost or duplicated.",
        discussion: """
            Faults: \(FaultBench.Fault.allCases.map(\.rawValue).joined(separator: ", ")). \
            Exit status 1 when any fault lost or duplicated a job.
            """
    )

    @Option(help: "Only these faults (comma-separated).")
    var only: String?

    @Option(help: "Committed events per second during the run.")
    var rate: Double = 500

    @Option(name: .customLong("heartbeat-timeout"), help: "The processor's heartbeat timeout in seconds (the freeze lasts this plus 1.5 s).")
    var heartbeatTimeout: Double = 1

    @Option(help: "The journal migrations (default: sql/pgevents of this checkout).")
    var sql: String?

    @Option(help: "Also write the results as JSON (the DESIGN.md benchmark format) to this file.")
    var json: String?

    func run() async throws {
        guard let directory = sql ?? Self.findSQLDirectory() else {
            FileHandle.standardError.write(Data("pgevents bench: cannot find sql/pgevents; give it with --sql DIR\n".utf8))
            throw ExitCode(2)
        }
        var options = FaultBench.Options(sqlDirectory: directory, processorExecutable: Self.executablePath())
        options.rate = rate
        options.heartbeatTimeout = heartbeatTimeout
        if let only {
            options.faults = try only.split(separator: ",").map { name in
                guard let fault = FaultBench.Fault(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("unknown fault '\(name)'; the faults are: \(FaultBench.Fault.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return fault
            }
        }
        let started = Date()
        let outcome: FaultBench.Outcome
        do {
            outcome = try await FaultBench(options: options).run { line in
                FileHandle.standardError.write(Data("… \(line)\n".utf8))
            }
        } catch let error as HarnessError {
            FileHandle.standardError.write(Data("pgevents bench: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let rows = outcome.rows
        print(Self.table(rows, rate: rate))
        if let json {
            let results = rows.map { row in
                var extra: [String: Double] = ["write_errors": Double(row.writeErrors)]
                if let recovery = row.recoverySeconds { extra["recovery_s"] = recovery }
                if let detection = row.detectionSeconds { extra["detection_s"] = detection }
                return BenchResult(
                    scenario: "faults/\(row.fault.rawValue)", events: row.sent, durationSeconds: row.durationSeconds,
                    eventsPerSecond: Double(row.sent) / max(row.durationSeconds, 0.001), lost: row.lost, duplicated: row.duplicated,
                    errors: row.writeErrors, postgresVersion: outcome.postgresVersion, redisVersion: outcome.redisVersion,
                    startedAt: started, extra: extra, note: row.note)
            }
            try BenchResult.json(results).write(toFile: json, atomically: true, encoding: .utf8)
        }
        if rows.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }

    static func table(_ rows: [FaultBench.Row], rate: Double) -> String {
        var lines = [String(format: "faults under load (%.0f events/s); lost and duplicated must be 0", rate),
                     "fault                        sent  delivered  lost  dup  recovery  detection  note"]
        for row in rows {
            let recovery = row.recoverySeconds.map { String(format: "%6.2f s", $0) } ?? "     - "
            let detection = row.detectionSeconds.map { String(format: "%6.2f s", $0) } ?? "     - "
            let name = row.fault.rawValue.padding(toLength: 26, withPad: " ", startingAt: 0)
            lines.append(name + String(format: " %6d %10d %5d %4d  ", row.sent, row.delivered, row.lost, row.duplicated) + "\(recovery)  \(detection)  \(row.note)")
            if row.lost > 0 { lines.append("    lost keys: \(row.lostKeys.map(String.init).joined(separator: ", "))\(row.lost > row.lostKeys.count ? ", …" : "")") }
            if row.duplicated > 0 { lines.append("    duplicated keys: \(row.duplicatedKeys.map(String.init).joined(separator: ", "))") }
        }
        lines.append(rows.allSatisfy(\.passed) ? "PASSED: nothing lost, nothing duplicated" : "FAILED")
        return lines.joined(separator: "\n")
    }

    /// This executable (for the fault that kills the processor's process and starts it again).
    static func executablePath() -> String? {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// `sql/pgevents` of this checkout: from `PGEVENTS_SQL_DIR`, the working directory, or next to the
    /// executable's build directory.
    static func findSQLDirectory() -> String? {
        var candidates: [String] = []
        if let fromEnvironment = ProcessInfo.processInfo.environment["PGEVENTS_SQL_DIR"] { candidates.append(fromEnvironment) }
        candidates.append(FileManager.default.currentDirectoryPath + "/sql/pgevents")
        if let executable = executablePath() {
            var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
            for _ in 0..<5 {
                directory = directory.deletingLastPathComponent()
                candidates.append(directory.appendingPathComponent("sql/pgevents").path)
            }
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/001_journal.sql") }
    }
}
