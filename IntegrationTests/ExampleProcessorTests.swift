import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

/// A database with the journal, an example's migrations and its processor/ migrations, and the example's
/// processor configuration.
func exampleSetup(_ name: String) async throws -> (TemporaryDatabase, ProcessorConfiguration) {
    let database = try await Shared.postgres().makeDatabase()
    let connection = try await database.connect()
    for directory in ["sql/pgevents", "sql/examples/\(name)", "sql/examples/\(name)/processor"] {
        try await MigrationSet(directory: repositoryPath(directory)).apply(to: connection)
    }
    await connection.close()
    var configuration = try ProcessorConfiguration(contentsOf: repositoryPath("sql/examples/\(name)/processor.yml"))
    configuration.catchUpInterval = 0.5
    return (database, configuration)
}

@Suite("The seed systems, run on pgevents")
struct ExampleProcessorTests {
    @Test("task-queue (003): new and retried pending tasks become jobs on tasks:pending, taken with BRPOP; others do not")
    func taskQueue() async throws {
        let (database, configuration) = try await exampleSetup("task-queue")
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let processor = JournalProcessor(configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            let worker = try await redis.connect()
            var taken: [[String: Any]] = []
            try await withRunningProcessor(processor) {
                try await writer.execute("""
                    INSERT INTO tasks (kind, queue, priority) VALUES ('render', 'default', 5), ('email', 'mail', 0);
                    INSERT INTO tasks (kind, status) VALUES ('report', 'running');
                    """)
                try await writer.execute("UPDATE tasks SET status = 'running' WHERE kind = 'render'")
                try await writer.execute("UPDATE tasks SET status = 'pending', attempts = attempts + 1 WHERE kind = 'render'")
                for _ in 0..<3 {
                    let reply = try await worker.command("BRPOP", "tasks:pending", 10)
                    let body = try #require(reply.array?.last?.bytes, "a job within 10 s")
                    taken.append(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] ?? [:])
                }
                #expect(try await worker.command("LLEN", "tasks:pending").integer == 0)
            }
            #expect(taken.map { $0["kind"] as? String } == ["render", "email", "render"])
            #expect(taken.map { ($0["attempt"] as? NSNumber)?.intValue } == [0, 0, 1])
            #expect((taken[0]["priority"] as? NSNumber)?.intValue == 5, "numbers stay numbers: \(taken[0])")
            #expect(taken[1]["queue"] as? String == "mail")
            await worker.close()
        }
        await writer.close()
    }

    @Test("chat-channels (002): message and reaction changes reach their streams, read with XREADGROUP, without the text")
    func chatChannels() async throws {
        let (database, configuration) = try await exampleSetup("chat-channels")
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            for stream in ["chat:messages", "chat:reactions"] {
                _ = try await reader.command("XGROUP", "CREATE", RedisArgument(stream), "sse", "$", "MKSTREAM")
            }
            let processor = JournalProcessor(configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: Logger(label: "test"))
            try await withRunningProcessor(processor) {
                try await writer.execute("""
                    INSERT INTO users (username, password_hash) VALUES ('ann', 'secret-hash');
                    INSERT INTO channels (name) VALUES ('general');
                    INSERT INTO messages (channel_id, user_id, content) VALUES (1, 1, 'hello, world — a private text');
                    INSERT INTO reactions (message_id, user_id, emoji) VALUES (1, 1, '🎉');
                    DELETE FROM reactions;
                    """)
                try await withTimeout(20) {
                    while try await reader.command("XLEN", "chat:reactions").integer ?? 0 < 2 { try await Task.sleep(for: .milliseconds(20)) }
                }
            }
            func read(_ stream: String) async throws -> [String] {
                let reply = try await reader.command("XREADGROUP", "GROUP", "sse", "server-1", "COUNT", "10", "STREAMS", RedisArgument(stream), ">")
                let entries = reply.array?.first?.array?.last?.array ?? []
                return entries.compactMap { entry in
                    guard let fields = entry.array?.last?.array?.compactMap(\.string), let index = fields.firstIndex(of: "payload") else { return nil }
                    return fields[index + 1]
                }
            }
            let messages = try await read("chat:messages")
            #expect(messages == [#"{"op":"INSERT","id":1,"channel_id":1,"user_id":1}"#])
            #expect(try await read("chat:reactions") == [#"{"op":"INSERT","id":1,"message_id":1,"emoji":"🎉"}"#, #"{"op":"DELETE","id":1,"message_id":1,"emoji":"🎉"}"#])
            #expect(!messages.joined().contains("private text"))
            await reader.close()
        }
        await writer.close()
    }
}
