import Foundation
import PGEventsHarness
import PGEventsRedis
import PGEventsSystem
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("RedisConnection on a real server", .timeLimit(.minutes(2)))
struct RedisConnectionTests {
    @Test("PING answers PONG")
    func ping() async throws {
        try await withTemporaryRedis { redis in
            let connection = try await RedisConnection.connect(to: redis.url)
            #expect(try await connection.command("PING") == .status("PONG"))
            #expect(try await connection.command(["ECHO", "hello"]).string == "hello")
            #expect(await connection.isUsable)
            await connection.close()
        }
    }

    @Test("connections made on a shared thread run their commands there, and closing one leaves the thread running")
    func sharedThread() async throws {
        let thread = ThreadExecutor(name: "pgevents-test-delivery")
        defer { thread.shutdown() }
        try await withTemporaryRedis { redis in
            let connection = try await RedisConnection.connect(redis.configuration, executor: thread)
            let other = try await RedisConnection.connect(redis.configuration, executor: thread)
            #expect(try await connection.command("PING") == .status("PONG"))
            #expect(await connection.runsOn(thread))
            #expect(await other.runsOn(thread))
            await connection.close()
            // The connection is gone; the thread it shared is not.
            #expect(try await other.command(["ECHO", "again"]).string == "again")
            await other.close()
        }
    }

    @Test("SET and GET are binary-safe (NUL and 0xFF bytes)")
    func binarySafeValue() async throws {
        try await withTemporaryRedis { redis in
            let connection = try await RedisConnection.connect(redis.configuration)
            let value: [UInt8] = [0x00, 0x61, 0xFF, 0x00, 0x0D, 0x0A, 0xFE, 0x00]
            let key = RedisArgument([0x6B, 0x00, 0xFF])
            #expect(try await connection.command("SET", key, RedisArgument(value)) == .status("OK"))
            #expect(try await connection.command("GET", key) == .bulk(value))
            #expect(try await connection.command("STRLEN", key) == .integer(Int64(value.count)))
            #expect(try await connection.command("SET", "empty", RedisArgument([UInt8]())) == .status("OK"))
            #expect(try await connection.command("GET", "empty") == .bulk([]))
            await connection.close()
        }
    }

    @Test("GET of a missing key is .null")
    func missingKey() async throws {
        try await withTemporaryRedis { redis in
            let connection = try await RedisConnection.connect(to: redis.url)
            let reply = try await connection.command("GET", "no-such-key")
            #expect(reply == .null)
            #expect(reply.isNull)
            #expect(try await connection.command(["MGET", "no-such-key", "also-missing"]) == .array([.null, .null]))
            await connection.close()
        }
    }

    @Test("LPUSH on one connection wakes BRPOP on another; on an empty list BRPOP answers null after its timeout")
    func pushAndBlockingPop() async throws {
        try await withTemporaryRedis { redis in
            let producer = try await RedisConnection.connect(to: redis.url)
            let consumer = try await RedisConnection.connect(to: redis.url)

            // The consumer blocks on its own thread while the producer pushes.
            // A long timeout: a hang guard (on a loaded machine the push has come more than a second later).
            async let popped = consumer.command("BRPOP", "jobs", 30)
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await producer.command("LPUSH", "jobs", "job-1") == .integer(1))
            #expect(try await popped == .array([.bulk(Array("jobs".utf8)), .bulk(Array("job-1".utf8))]))

            // Nothing left: BRPOP times out with a null reply.
            let start = ContinuousClock.now
            #expect(try await consumer.command("BRPOP", "jobs", 1) == .null)
            #expect(ContinuousClock.now - start >= .milliseconds(900))

            await producer.close()
            await consumer.close()
        }
    }

    @Test("a pipeline of 10,000 LPUSH commands, then LLEN")
    func largePipeline() async throws {
        try await withTemporaryRedis { redis in
            let connection = try await RedisConnection.connect(to: redis.url)
            let commands: [[RedisArgument]] = (0..<10_000).map { ["LPUSH", "queue", RedisArgument("job-\($0)")] }
            let replies = try await connection.pipeline(commands)
            #expect(replies.count == 10_000)
            #expect(replies == (1...10_000).map { .integer(Int64($0)) })
            #expect(try await connection.command("LLEN", "queue") == .integer(10_000))
            #expect(try await connection.pipeline([]) == [])
            await connection.close()
        }
    }

    @Test("an error reply is thrown as .server, returned in place in a pipeline, and the connection survives")
    func errorReply() async throws {
        try await withTemporaryRedis { redis in
            let connection = try await RedisConnection.connect(to: redis.url)
            try await connection.command("SET", "text", "value")
            let error = await #expect(throws: RedisError.self) { try await connection.command("LPUSH", "text", "x") }
            #expect(error?.code == .server)
            #expect(error?.message.contains("WRONGTYPE") == true)
            #expect(error?.serverErrorPrefix == "WRONGTYPE")
            #expect(error?.command == "LPUSH")
            #expect(error?.isConnectionError == false)
            #expect(await connection.isUsable)
            #expect(try await connection.command("PING") == .status("PONG"))

            let replies = try await connection.pipeline([["LPUSH", "text", "x"], ["GET", "text"], ["NOSUCHCOMMAND"]])
            #expect(replies.count == 3)
            #expect(replies[0].errorMessage?.hasPrefix("WRONGTYPE") == true)
            #expect(replies[1] == .bulk(Array("value".utf8)))
            #expect(replies[2].errorMessage?.hasPrefix("ERR unknown command") == true)
            #expect(try await connection.command("GET", "text").string == "value")
            await connection.close()
        }
    }

    @Test("connect through the unix socket URL, selecting a database")
    func unixSocket() async throws {
        try await withTemporaryRedis { redis in
            var configuration = redis.configuration
            configuration.unixSocketPath = redis.unixSocketPath
            configuration.database = 1
            #expect(configuration.urlIncludingSecrets.hasPrefix("unix://"))
            let overSocket = try await RedisConnection.connect(to: configuration.urlIncludingSecrets)
            try await overSocket.command("SET", "where", "db1")

            var tcpDatabaseOne = redis.configuration
            tcpDatabaseOne.database = 1
            let overTCP = try await RedisConnection.connect(tcpDatabaseOne)
            #expect(try await overTCP.command("GET", "where").string == "db1")
            let databaseZero = try await RedisConnection.connect(to: redis.url)
            #expect(try await databaseZero.command("GET", "where") == .null)

            await overSocket.close()
            await overTCP.close()
            await databaseZero.close()
        }
    }

    @Test("connecting to a port with nothing listening fails with .connectionFailed")
    func nothingListening() async throws {
        // A bound socket that never listens: connecting to its port is refused, and no other process can take
        // the port while the test holds it.
        let reserved = try ReservedPort()
        defer { reserved.release() }
        let configuration = RedisConfiguration(host: "127.0.0.1", port: reserved.port, connectTimeout: 2)
        let error = await #expect(throws: RedisError.self) { try await RedisConnection.connect(configuration) }
        #expect(error?.code == .connectionFailed)
        #expect(error?.isConnectionError == true)
        #expect(error?.message.contains("127.0.0.1:\(reserved.port)") == true)
    }

    @Test("a server whose reply promises 2^31 − 1 array elements gets a protocol error, not a 16 GiB allocation")
    func hugeArrayHeader() async throws {
        // A fake server on a unix socket: whatever it is sent, it answers with an array header and nothing more.
        let path = "/tmp/pgevents-fake-redis-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        unlink(path)
        defer { unlink(path) }
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0 && listen(listener, 1) == 0)
        let server = Thread {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 4096)
            _ = read(client, &buffer, buffer.count)
            let reply = Array("*2147483647\r\n".utf8)
            _ = write(client, reply, reply.count)
            sleep(3)
            close(client)
        }
        server.start()
        defer { close(listener) }
        let connection = try await RedisConnection.connect(RedisConfiguration(unixSocketPath: path, connectTimeout: 2, commandTimeout: 10))
        let error = await #expect(throws: RedisError.self) { try await connection.command("LRANGE", "x", 0, -1) }
        #expect(error?.code == .protocolViolation, "\(error.map { "\($0)" } ?? "")")
        #expect(error?.message.contains("an array of more than 67108864 elements") == true, "\(error?.message ?? "")")
        // Refused at the header: waiting for elements that never come would end in .timeout instead.
        await connection.close()
    }

    @Test("CLIENT KILL from another connection: the next command throws .connectionLost, and every later one")
    func killedConnection() async throws {
        try await withTemporaryRedis { redis in
            let victim = try await RedisConnection.connect(to: redis.url)
            let admin = try await RedisConnection.connect(to: redis.url)
            let id = try #require(try await victim.command("CLIENT", "ID").integer)
            #expect(try await admin.command("CLIENT", "KILL", "ID", RedisArgument(Int(id))) == .integer(1))

            let lost = await #expect(throws: RedisError.self) { try await victim.command("PING") }
            #expect(lost?.code == .connectionLost)
            #expect(lost?.command == "PING")
            #expect(await victim.isUsable == false)

            let again = await #expect(throws: RedisError.self) { try await victim.command("GET", "key") }
            #expect(again?.code == .connectionLost)
            #expect(again?.message == lost?.message)
            let pipelined = await #expect(throws: RedisError.self) { try await victim.pipeline([["PING"]]) }
            #expect(pipelined?.code == .connectionLost)

            #expect(try await admin.command("PING") == .status("PONG"))
            await victim.close()
            await admin.close()
        }
    }

    @Test("CLIENT KILL during a large pipeline throws .connectionLost (no SIGPIPE)")
    func killedDuringPipeline() async throws {
        try await withTemporaryRedis { redis in
            let victim = try await RedisConnection.connect(to: redis.url)
            let admin = try await RedisConnection.connect(to: redis.url)
            let id = try #require(try await victim.command("CLIENT", "ID").integer)
            try await admin.command("CLIENT", "KILL", "ID", RedisArgument(Int(id)))
            let payload = RedisArgument(String(repeating: "x", count: 1_000))
            let commands: [[RedisArgument]] = Array(repeating: ["LPUSH", "big", payload], count: 20_000)
            let error = await #expect(throws: RedisError.self) { try await victim.pipeline(commands) }
            #expect(error?.code == .connectionLost)
            await admin.close()
        }
    }

    @Test("stopping the server: the next command throws .connectionLost")
    func serverStopped() async throws {
        let redis = try await TemporaryRedis.start()
        let connection = try await RedisConnection.connect(to: redis.url)
        #expect(try await connection.command("PING") == .status("PONG"))
        await redis.shutdown()
        let error = await #expect(throws: RedisError.self) { try await connection.command("PING") }
        #expect(error?.code == .connectionLost)
        #expect(await connection.isUsable == false)
        await connection.close()
    }

    @Test("close() is idempotent; later calls throw .connectionClosed")
    func closedConnection() async throws {
        try await withTemporaryRedis { redis in
            let connection = try await RedisConnection.connect(to: redis.url)
            await connection.close()
            await connection.close()
            #expect(await connection.isUsable == false)
            let error = await #expect(throws: RedisError.self) { try await connection.command("PING") }
            #expect(error?.code == .connectionClosed)
            let pipelined = await #expect(throws: RedisError.self) { try await connection.pipeline([]) }
            #expect(pipelined?.code == .connectionClosed)
        }
    }

    @Test("a command timeout throws .timeout, then the connection is lost")
    func commandTimeout() async throws {
        try await withTemporaryRedis { redis in
            var configuration = redis.configuration
            configuration.commandTimeout = 0.2
            let connection = try await RedisConnection.connect(configuration)
            #expect(try await connection.command("PING") == .status("PONG"))
            let timeout = await #expect(throws: RedisError.self) { try await connection.command("BRPOP", "empty", 5) }
            #expect(timeout?.code == .timeout)
            #expect(timeout?.command == "BRPOP")
            let after = await #expect(throws: RedisError.self) { try await connection.command("PING") }
            #expect(after?.code == .connectionLost)
            await connection.close()
        }
    }

    @Test("selecting a database that does not exist fails the connect")
    func invalidDatabase() async throws {
        try await withTemporaryRedis { redis in
            var configuration = redis.configuration
            configuration.database = 100_000
            let error = await #expect(throws: RedisError.self) { try await RedisConnection.connect(configuration) }
            #expect(error?.code == .connectionFailed)
            #expect(error?.command == "SELECT")
        }
    }

    @Test("many tasks share one connection; commands are serialised on its thread")
    func concurrentCommands() async throws {
        try await withTemporaryRedis { redis in
            let connection = try await RedisConnection.connect(to: redis.url)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        for _ in 0..<50 { try await connection.command("INCR", "counter") }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await connection.command("GET", "counter").string == "1000")
            await connection.close()
        }
    }
}

/// A TCP port on 127.0.0.1 bound by this process but not listening, so connections to it are refused.
private struct ReservedPort {
    struct Failure: Error {}
    let descriptor: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw Failure()
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func release() {
        close(descriptor)
    }
}

extension RedisConnection {
    /// Whether the connection's isolated code runs on `thread` (its executor's).
    fileprivate func runsOn(_ thread: ThreadExecutor) -> Bool { thread.isOnThread }
}
