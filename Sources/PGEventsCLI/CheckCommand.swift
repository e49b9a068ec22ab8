import ArgumentParser
import Foundation
import PGEventsHarness

/// `pgevents check`: validate notification migrations before deploy.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Apply migrations to a throwaway PostgreSQL, exercise every notifying trigger, and judge what it sends.",
        discussion: """
            PATH is a spec file (pgevents.yml), a directory holding one, or a directory of *.sql migrations \
            without one (then every notifying trigger is discovered and judged by what is wrong whatever the \
            intent). Exit status: 0 every check passed, 1 a check failed (a migration that does not apply is \
            a failed check), 2 the input or the machine is wrong.
            """
    )

    @Argument(help: "A spec file, a directory with pgevents.yml, or a directory of *.sql migrations.")
    var path: String = "."

    @Option(help: "The spec file (default: PATH, or PATH/pgevents.yml). With --spec, a PATH directory is the migrations directory.")
    var spec: String?

    @Option(name: .customLong("postgres-bin"), help: "A PostgreSQL bin directory to check on (repeatable: the checks run on each).")
    var postgresBin: [String] = []

    @Option(help: "Report format on standard output: text, json or tap (TAP 13, as pg_prove reads it).")
    var format: ReportFormat = .text

    @Option(help: "The migrations' layout: plain, flyway, dbmate, goose, golang-migrate or sqitch (default: detected).")
    var layout: String?

    @Option(name: .customLong("define"), help: "A placeholder's value, NAME=VALUE (repeatable): Flyway's ${NAME}, psql's :NAME / :'NAME' / :\"NAME\".")
    var defines: [String] = []

    @Option(name: .customLong("database-url"), help: "Check on this existing server instead of throwaway clusters: scratch databases with unique names, dropped afterwards (the role needs CREATEDB).")
    var databaseURL: String?

    @Option(help: "Also write a JUnit XML report to this file.")
    var junit: String?

    enum ReportFormat: String, ExpressibleByArgument {
        case text, json, tap
    }

    func run() async throws {
        let report: CheckReport
        // On a terminal, for runs longer than 2 s: a bar on stderr, erased before the report is written.
        let bar = ProgressBar()
        defer { bar.clear() }
        do {
            var runner = CheckRunner(options: try options())
            runner.progress = { bar.show(step: "check", fraction: $0.fraction, message: $0.message) }
            report = try await runner.run()
            bar.clear()
        } catch let error as HarnessError {
            bar.clear()
            FileHandle.standardError.write(Data("pgevents check: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as MigrationError {
            bar.clear()
            // A file that cannot even be split into statements (an unterminated string), or an undefined
            // placeholder: bad input.
            FileHandle.standardError.write(Data("pgevents check: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let problem as Placeholders.Problem {
            bar.clear()
            FileHandle.standardError.write(Data("pgevents check: \(problem.message)\n".utf8))
            throw ExitCode(2)
        }
        switch format {
        case .text: print(report.text(color: isatty(STDOUT_FILENO) == 1))
        case .json: print(try report.json())
        case .tap: print(report.tap())
        }
        if let junit {
            do {
                try report.junit().write(toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                FileHandle.standardError.write(Data("pgevents check: cannot write the JUnit report to \(junit): \(error.localizedDescription)\n".utf8))
                throw ExitCode(2)
            }
        }
        if let unavailable = report.unavailable {
            // A server that lacks an extension the migrations need: a problem of the machine, not of the migrations.
            for reason in unavailable { FileHandle.standardError.write(Data("pgevents check: \(reason)\n".utf8)) }
            throw ExitCode(2)
        }
        if !report.passed { throw ExitCode(1) }
    }

    /// What PATH and --spec say: the spec (if any) and the migrations directory.
    private func options() throws -> CheckRunner.Options {
        var options = try specAndMigrations()
        if let layout {
            guard let known = MigrationLayout(rawValue: layout) else {
                throw HarnessError(code: .invalidInput, message: "--layout \(layout): unknown layout", hint: "one of \(MigrationLayout.names)")
            }
            options.layout = known
        }
        options.placeholders = try Placeholders(definitions: defines)
        if let databaseURL {
            guard postgresBin.isEmpty else {
                throw HarnessError(code: .invalidInput, message: "--database-url and --postgres-bin exclude each other: check runs on the given server, or on throwaway clusters")
            }
            options.databaseURL = databaseURL
        }
        return options
    }

    private func specAndMigrations() throws -> CheckRunner.Options {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard manager.fileExists(atPath: absolute, isDirectory: &isDirectory) else {
            throw HarnessError(code: .invalidInput, message: "\(path) does not exist", hint: "give a spec file, a directory with pgevents.yml, or a directory of *.sql migrations")
        }
        if let spec {
            let loaded = try CheckSpec(contentsOf: spec)
            return .init(spec: loaded, migrations: isDirectory.boolValue && path != "." ? absolute : nil, postgresBinDirectories: postgresBin)
        }
        if !isDirectory.boolValue {
            return .init(spec: try CheckSpec(contentsOf: absolute), postgresBinDirectories: postgresBin)
        }
        for name in ["pgevents.yml", "pgevents.yaml"] where manager.fileExists(atPath: absolute + "/" + name) {
            return .init(spec: try CheckSpec(contentsOf: absolute + "/" + name), postgresBinDirectories: postgresBin)
        }
        return .init(spec: nil, migrations: absolute, postgresBinDirectories: postgresBin)
    }
}
