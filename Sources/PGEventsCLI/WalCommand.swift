import ArgumentParser
import Foundation
import Logging
import PGEvents
import PGEventsPostgres

/// `pgevents wal setup|status`: the publication and replication slot of `source: wal`.
struct WalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "Create and inspect the publication and replication slot of source: wal.",
        subcommands: [Setup.self, Status.self]
    )

    struct Location: ParsableArguments {
        @Option(name: .customLong("config"), help: "The processor's YAML file (source: wal).")
        var config: String

        @Option(name: .customLong("database-url"), help: "PostgreSQL URL or conninfo (default: $DATABASE_URL).")
        var databaseURL: String?

        func load() throws -> (ProcessorConfiguration, ProcessorConfiguration.Wal, PostgresConfiguration) {
            let configuration: ProcessorConfiguration
            do {
                configuration = try ProcessorConfiguration(contentsOf: config)
            } catch {
                throw ValidationError("\(error)")
            }
            guard let wal = configuration.wal else { throw ValidationError("\(config) does not say source: wal") }
            guard let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] else {
                throw ValidationError("no database: set DATABASE_URL (or give --database-url)")
            }
            do {
                return (configuration, wal, try PostgresConfiguration(url))
            } catch {
                throw ValidationError("\(error)")
            }
        }
    }

    struct Setup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: """
                Create the publication (with the tables the file's channels name, schema.table) and the replication slot, \
                where missing. Needs a role with REPLICATION that owns the tables, and wal_level = logical.
                """)

        @OptionGroup var location: Location

        func run() async throws {
            let (configuration, wal, postgres) = try location.load()
            let logger = Logger(label: "pgevents.wal")
            do {
                try await PostgresConnection.withConnection(postgres, logger: logger) { connection in
                    let tables = try await WalSetup.tables(named: configuration.channels.map(\.name), on: connection)
                    let report = try await WalSetup.create(
                        on: connection, slot: wal.slot, publication: wal.publication, tables: tables, logger: logger)
                    print(
                        "publication \(wal.publication): \(report.createdPublication ? "created" : "exists")"
                            + (report.addedTables.isEmpty ? "" : ", tables added: \(report.addedTables.joined(separator: ", "))"))
                    print(
                        "replication slot \(wal.slot): \(report.createdSlot ? "created\(report.failover ? " (failover)" : "")" : "exists")")
                }
            } catch {
                FileHandle.standardError.write(Data("pgevents wal setup: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the slot's state: confirmed position, WAL kept for it (lag), and who streams it.")

        @OptionGroup var location: Location

        func run() async throws {
            let (_, wal, postgres) = try location.load()
            do {
                try await PostgresConnection.withConnection(postgres) { connection in
                    guard let status = try await WalSetup.status(of: wal.slot, on: connection) else {
                        print("replication slot \(wal.slot): missing (pgevents wal setup --config \(location.config))")
                        throw ExitCode(1)
                    }
                    print(status)
                }
            } catch let exit as ExitCode {
                throw exit
            } catch {
                FileHandle.standardError.write(Data("pgevents wal status: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
