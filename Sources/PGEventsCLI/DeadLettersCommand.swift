import ArgumentParser
import Foundation
import Logging
import PGEvents
import PGEventsPostgres
import PGEventsRedis

/// `pgevents dead-letters list|replay`: what the processor set aside, and putting it back.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List the dead-letter list, or replay it once the cause is fixed.",
        subcommands: [List.self, Replay.self]
    )

    /// Where the list is: the processor's file (its dead_letter_queue), or --queue; Redis from --redis-url or REDIS_URL.
    struct Location: ParsableArguments {
        @Option(name: .customLong("config"), help: "The processor's YAML file (its dead_letter_queue).")
        var config: String?

        @Option(name: .customLong("queue"), help: "The dead-letter list (default: the file's dead_letter_queue, else pgevents:dead).")
        var queue: String?

        @Option(name: .customLong("redis-url"), help: "Redis URL (default: $REDIS_URL; a password in it shows in ps).")
        var redisURL: String?

        func deadLetters() throws -> DeadLetterQueue {
            if let queue { return DeadLetterQueue(name: queue) }
            guard let config else { return DeadLetterQueue(name: "pgevents:dead") }
            do {
                return DeadLetterQueue(name: try ProcessorConfiguration(contentsOf: config).deadLetterQueue)
            } catch {
                throw ValidationError("\(error)")
            }
        }

        func redis() async throws -> RedisSink {
            guard let url = redisURL ?? ProcessInfo.processInfo.environment["REDIS_URL"] else {
                throw ValidationError("no Redis: set REDIS_URL (or give --redis-url)")
            }
            do {
                return try await RedisSink.connect(try RedisConfiguration(url), logger: RedisConnection.defaultLogger)
            } catch {
                throw ValidationError("\(error)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the oldest dead letters: why each is there, and how it would be replayed.")

        @OptionGroup var location: Location

        @Option(name: .customLong("limit"), help: "At most this many (oldest first).")
        var limit = 20

        @Flag(name: .customLong("json"), help: "One letter per line, as stored.")
        var json = false

        func run() async throws {
            let queue = try location.deadLetters()
            let redis = try await location.redis()
            let total = try await queue.count(on: redis)
            let letters = try await queue.list(limit: max(1, limit), on: redis)
            await redis.close()
            if json {
                for letter in letters { print(letter.text) }
                return
            }
            print("\(queue.name): \(total) dead letter(s)\(total > letters.count ? ", the oldest \(letters.count) shown" : "")")
            for letter in letters {
                let fields = letter.fields
                let place = [fields["channel"].map { "channel \($0)" }, fields["seq"].map { "seq \($0)" }].compactMap { $0 }.joined(
                    separator: ", ")
                let cause = [fields["sqlstate"].map { "SQLSTATE \($0)" }, fields["redis_error"].map { "Redis: \($0)" }].compactMap { $0 }
                    .joined(separator: "; ")
                print("- \(place.isEmpty ? "?" : place): \(fields["reason"] ?? letter.text)\(cause.isEmpty ? "" : " (\(cause))")")
                if let hint = fields["hint"] { print("  what to do: \(hint)") }
                print("  replay: \(letter.replay)")
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Replay the oldest dead letters: refused jobs are written to their destination again, other events are re-emitted into the journal.",
            discussion: "Fix the cause first (pgevents dead-letters list says what it was). Each letter is removed once replayed.")

        @OptionGroup var location: Location

        @Option(name: .customLong("limit"), help: "At most this many (oldest first).")
        var limit = 1_000

        @Option(name: .customLong("database-url"), help: "PostgreSQL, for letters re-emitted into the journal (default: $DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            let queue = try location.deadLetters()
            let redis = try await location.redis()
            var postgres: PostgresConnection?
            if let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] {
                postgres = try await PostgresConnection.connect(to: url)
            }
            let outcome: DeadLetterQueue.ReplayOutcome
            do {
                outcome = try await queue.replay(limit: max(1, limit), redis: redis, postgres: postgres)
            } catch {
                await redis.close()
                await postgres?.close()
                throw error
            }
            await redis.close()
            await postgres?.close()
            print(
                "\(queue.name): \(outcome.jobsWritten) job(s) written back, \(outcome.eventsEmitted) event(s) re-emitted into the journal, \(outcome.skipped) left in place"
            )
            if outcome.skipped > 0 {
                print(
                    "left in place: \(postgres == nil ? "letters without a job need the database (set DATABASE_URL); " : "")see pgevents dead-letters list"
                )
            }
        }
    }
}
