import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

@Suite("The processor behind PgBouncer (Debian's pgbouncer)")
struct PoolerTests {
    @Test(
        "transaction mode: the processor refuses to start, naming the pooler and the fix; nothing is delivered, no lock is left in the pool"
    )
    func transactionModeRefused() async throws {
        let database = try await journalDatabase()
        try await withTemporaryPgBouncer(in: try await Shared.postgres(), poolMode: .transaction) { pooler in
            try await withTemporaryRedis { redis in
                let processor = EventProcessor(
                    configuration: try processorConfiguration(consumer: "pooled"), postgres: pooler.configuration(database: database.name),
                    redis: redis.configuration, logger: Logger(label: "pooled"))
                let error = await #expect(throws: ProcessorError.self) { try await withTimeout(30) { try await processor.run() } }
                #expect(error?.code == .sharedSession)
                #expect(
                    error?.message.contains("pool_mode = session") == true && error?.message.contains("same server backend") == true,
                    "\(String(describing: error))")
            }
            let locks = try await PostgresConnection.withConnection(database.configuration) { connection in
                try await connection.query(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ).scalar(Int.self)
            }
            #expect(locks == 0)
        }
    }

    @Test("session mode: the processor runs through the pooler and delivers")
    func sessionModeWorks() async throws {
        let database = try await journalDatabase()
        try await withTemporaryPgBouncer(in: try await Shared.postgres(), poolMode: .session, poolSize: 20) { pooler in
            try await withTemporaryRedis { redis in
                let processor = EventProcessor(
                    configuration: try processorConfiguration(consumer: "session_pooled"),
                    postgres: pooler.configuration(database: database.name),
                    redis: redis.configuration, logger: Logger(label: "pooled"))
                let reader = try await redis.connect()
                try await withRunningProcessor(processor) {
                    try await PostgresConnection.withConnection(database.configuration) { writer in
                        try await writer.query("INSERT INTO events (body) SELECT 'through the pool ' || g FROM generate_series(1, 20) g")
                    }
                    try await waitForJobs(reader, count: 20)
                }
                try await expectEveryRowOnce(reader, rows: 20, in: database)
                await reader.close()
            }
        }
    }
}
