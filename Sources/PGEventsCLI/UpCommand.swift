import ArgumentParser
import Dispatch
import Foundation
import Logging
import PGEventsHarness
import UnixSignals

/// `pgevents up`: a throwaway PostgreSQL (and Redis) for manual work, until Ctrl-C.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a throwaway PostgreSQL and Redis, print how to connect, and stop both on Ctrl-C.",
        discussion: """
            The servers bind to 127.0.0.1 and a private unix socket, keep nothing on disk after they stop, \
            and are stopped and removed even if this command is killed, SIGKILL included (a watchdog per server).
            """
    )

    @Option(name: .customLong("postgres-bin"), help: "PostgreSQL server bin directory (default: found automatically).")
    var postgresBin: String?

    @Option(name: .customLong("setting"), help: "A server setting NAME=VALUE (repeatable).")
    var settings: [String] = []

    @Flag(name: .customLong("no-redis"), help: "Start PostgreSQL only.")
    var noRedis = false

    func run() async throws {
        var serverSettings: [String: String] = [:]
        for setting in settings {
            let parts = setting.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else {
                throw ValidationError("--setting takes NAME=VALUE, got '\(setting)'")
            }
            serverSettings[String(parts[0])] = String(parts[1])
        }
        // Taken before the servers start, so that Ctrl-C during startup also stops them.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let postgres = try await TemporaryPostgres.start(.init(binDirectory: postgresBin, settings: serverSettings))
        let redis: TemporaryRedis?
        do {
            redis = noRedis ? nil : try await TemporaryRedis.start()
        } catch {
            await postgres.shutdown()
            throw error
        }
        print(
            """
            postgres: \(postgres.url)
              version: \(postgres.binaries.version)
              PGPASSWORD=\(postgres.password) psql -h 127.0.0.1 -p \(postgres.port) -U \(postgres.superuser) postgres
              psql -h \(postgres.socketDirectory) -p \(postgres.port) -U \(postgres.superuser) postgres
            directory: \(postgres.directory)
            """)
        if let redis {
            print(
                """
                redis: \(redis.url)
                  version: \(redis.version)
                  REDISCLI_AUTH=\(redis.password) redis-cli -p \(redis.port)
                  REDISCLI_AUTH=\(redis.password) redis-cli -s \(redis.unixSocketPath)
                """)
        }
        print("Press Ctrl-C to stop.")
        fflush(nil)  // all streams: stdout may be a file or a pipe
        var received: UnixSignal?
        for await signal in signals {
            received = signal
            break
        }
        print("\nstopping (\(received.map { "\($0)" } ?? "no signal"))")
        await redis?.shutdown()
        await postgres.shutdown()
        print("stopped")
    }
}
