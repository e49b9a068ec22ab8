import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Testing

@Suite("Nothing hangs: the worker connection's deadline, and SIGTERM")
struct WorkerTimeoutTests {
    @Test(
        "a frozen worker backend (SIGSTOP) is detected within the query timeout; once it is gone, a processor takes over and delivers once")
    func frozenWorker() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { redis in
            let reader = try await redis.connect()
            var configuration = try processorConfiguration(consumer: "frozen")
            configuration.queryTimeout = 1
            let first = LogCapture()
            let second = LogCapture()
            let a = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: first.logger())
            let b = EventProcessor(
                configuration: configuration, postgres: database.configuration, redis: redis.configuration, logger: second.logger())
            try await withRunningProcessor(a) {
                try await withRunningProcessor(b) {
                    try await writer.query("INSERT INTO events (body) VALUES ('before')")
                    try await waitForJobs(reader, count: 1)
                    // The leader's worker: the backend holding the consumer's advisory lock.
                    let leader = try await writer.query(
                        """
                        SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'pgevents-worker' AND a.datname = current_database()
                        """
                    ).scalar(Int32.self)
                    kill(leader, SIGSTOP)
                    try await writer.query("INSERT INTO events (body) VALUES ('during')")
                    try await withTimeout(30) {
                        while !(first.records + second.records).contains(where: {
                            $0.message == "delivery failed; retrying" && $0.metadata["error"]?.contains("query timeout") == true
                        }) {
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                    // The standby says it waits and who holds the lock (the frozen backend, until it is gone).
                    #expect(
                        (first.records + second.records).contains {
                            $0.message.hasPrefix("standby") && $0.metadata["holder"]?.contains("pid \(leader)") == true
                        })
                    // Woken, the backend finds its client gone and exits, releasing the lock.
                    kill(leader, SIGCONT)
                    try await waitForJobs(reader, count: 2)
                }
            }
            #expect(try await jobs(reader) == ["before", "during"])
            await reader.close()
        }
        await writer.close()
    }

    @Test("SIGTERM ends pgevents process within --shutdown-timeout plus 5 s even when PostgreSQL answers nothing")
    func sigtermOnFrozenServer() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        try await withTemporaryPostgres { (server: TemporaryPostgres) async throws -> Void in
            let database = try await journalDatabase(on: server)
            try await withTemporaryRedis { (redis: TemporaryRedis) async throws -> Void in
                let directory = try migrationDirectory([
                    "processor.yml": """
                    consumer: sigterm
                    channels: {new_event: {queue: jobs}}
                    catch_up_interval: 0.2
                    query_timeout: 600
                    """
                ])
                defer { try? FileManager.default.removeItem(atPath: directory) }
                var environment = ProcessInfo.processInfo.environment
                environment["DATABASE_URL"] = database.url
                environment["REDIS_URL"] = redis.url
                let child = try ChildProcess.spawn(
                    executable, ["process", "--config", directory + "/processor.yml", "--shutdown-timeout", "1"],
                    outputPath: directory + "/process.log", environment: environment)
                let writer = try await database.connect()
                try await writer.query("INSERT INTO events (body) VALUES ('ready')")
                let reader = try await redis.connect()
                try await waitForJobs(reader, count: 1)
                await writer.close()
                try await server.pause()
                try await Task.sleep(for: .milliseconds(500))  // the next catch-up is now stuck on the frozen server
                child.kill(SIGTERM)
                let ended = try await withTimeout(30) {
                    while true {
                        if let termination = child.poll() { return termination }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                try await server.resume()
                #expect(ended == .exited(1), "\(tailOfFile(directory + "/process.log", maxLines: 20))")
                #expect(tailOfFile(directory + "/process.log", maxLines: 40).contains("did not stop within 6.0 s"))
                await reader.close()
            }
        }
    }
}

@Suite("Redis durability: wait for replicas before acknowledging")
struct RedisWaitTests {
    @Test(
        "wait: {replicas: 1}: a chunk is acknowledged once the replica has it; asking for more replicas than answer holds delivery, loudly")
    func replicas() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedis { primary in
            try await withTemporaryRedis { replica in
                let follower = try await replica.connect()
                if let password = primary.configuration.password {
                    try await follower.command("CONFIG", "SET", "masterauth", RedisArgument(password))
                }
                try await follower.command("REPLICAOF", "127.0.0.1", RedisArgument(primary.port))
                let leader = try await primary.connect()
                // A replica's first sync forks the primary for a snapshot: slow on a loaded machine.
                try await withTimeout(90) {
                    while !(try await leader.command("INFO", "replication").string ?? "").contains("connected_slaves:1") {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                var configuration = try processorConfiguration(consumer: "replicated")
                configuration.redisWait = RedisWait(replicas: 1, timeout: .seconds(5))
                try await withRunningProcessor(
                    EventProcessor(
                        configuration: configuration, postgres: database.configuration, redis: primary.configuration,
                        logger: Logger(label: "test"))
                ) {
                    try await writer.query("INSERT INTO events (body) VALUES ('replicated')")
                    try await waitForJobs(follower, count: 1, seconds: 90)
                }
                #expect(try await jobs(follower) == ["replicated"])

                configuration.consumer = "overreaching"
                configuration.redisWait = RedisWait(replicas: 2, timeout: .milliseconds(200))
                let capture = LogCapture()
                try await withRunningProcessor(
                    EventProcessor(
                        configuration: configuration, postgres: database.configuration, redis: primary.configuration,
                        logger: capture.logger())
                ) {
                    // A row of its own (the first consumer's may be pruned already: it was alone when it delivered it).
                    try await writer.query("INSERT INTO events (body) VALUES ('overreaching')")
                    try await withTimeout(30) {
                        while !capture.records("delivery failed; retrying").contains(where: {
                            $0.metadata["error"]?.contains("of 2 replica(s) had the chunk") == true
                        }) {
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
                // Held: its chunk was written (and replicated) but never acknowledged in the journal.
                let cursor = try await writer.query("SELECT batch_snapshot IS NOT NULL FROM pgevents.consumers WHERE name = 'overreaching'")
                    .scalar(Bool.self)
                #expect(cursor, "the batch is still open: not acknowledged")
                await leader.close()
                await follower.close()
            }
        }
        await writer.close()
    }
}
