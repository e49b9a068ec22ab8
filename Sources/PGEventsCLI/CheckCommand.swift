import ArgumentParser
import Foundation
import PGEventsCheck

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

    @Option(
        name: .customLong("define"),
        help: "A placeholder's value, NAME=VALUE (repeatable): Flyway's ${NAME}, psql's :NAME / :'NAME' / :\"NAME\".")
    var defines: [String] = []

    @Option(
        name: .customLong("database-url"),
        help:
            "Check on this existing server instead of throwaway clusters: scratch databases with unique names, dropped afterwards (the role needs CREATEDB)."
    )
    var databaseURL: String?

    @Option(help: "Also write a JUnit XML report to this file.")
    var junit: String?

    enum ReportFormat: String, ExpressibleByArgument {
        case text, json, tap
    }

    func run() async throws {
        let exit = CommandExit(command: "check")
        // On a terminal, for runs longer than 2 s: a bar on stderr, erased before the report is written.
        let bar = ProgressBar()
        defer { bar.clear() }
        let report = try await exit.mappingInputErrors(cleanup: bar.clear) {
            let options = try CheckRunner.Options(
                path: path, spec: spec, postgresBinDirectories: postgresBin, layout: layout, defines: defines, databaseURL: databaseURL)
            var runner = CheckRunner(options: options)
            runner.progress = { bar.show(step: "check", fraction: $0.fraction, message: $0.message) }
            return try await runner.run()
        }
        bar.clear()
        switch format {
        case .text: print(report.text(color: isatty(STDOUT_FILENO) == 1))
        case .json: print(try report.json())
        case .tap: print(report.tap())
        }
        if let junit {
            do {
                try report.junit().write(toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                throw exit.badInput("cannot write the JUnit report to \(junit): \(error.localizedDescription)")
            }
        }
        if let unavailable = report.unavailable {
            // A server that lacks an extension the migrations need: a problem of the machine, not of the migrations.
            throw exit.badInput(each: unavailable)
        }
        try CommandExit.failed(if: !report.passed)
    }
}
