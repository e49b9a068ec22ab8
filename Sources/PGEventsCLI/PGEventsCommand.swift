import ArgumentParser

/// The `pgevents` command: argument parsing and output only; the work is done by the libraries.
@main
struct PGEventsCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "pgevents",
        abstract: "Test, run and benchmark PostgreSQL LISTEN/NOTIFY event pipelines.",
        version: version,
        subcommands: [
            CheckCommand.self, UpCommand.self, ProcessCommand.self, ServeCommand.self, DeadLettersCommand.self, WalCommand.self,
            BenchCommand.self,
        ]
    )
}
