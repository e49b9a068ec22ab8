import PGEventsPostgres
import PGEventsRedis
import Testing

@testable import PGEventsCLI
@testable import PGEventsHarness

#if canImport(Glibc)
    import Glibc
#endif

/// The pure logic of the harness's local security: the Redis configuration file, the scratch root's checks,
/// and the warning about passwords on `pgevents process`'s command line.
@Suite("Harness security (no server)")
struct HarnessSecurityUnitTests {
    @Test("the Redis configuration file binds loopback, requires the password, and quotes every value")
    func redisConfigurationFile() throws {
        let text = try TemporaryRedis.configurationFile(
            port: 6400, unixSocketPath: "/dev/shm/pgevents-0/redis-x/run/redis.sock", directory: "/d/run", password: "s3cret",
            settings: ["maxmemory": "64mb", "notify-keyspace-events": "KEA", "save": "900 1"])
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("port 6400"))
        #expect(lines.contains("bind 127.0.0.1"))
        #expect(lines.contains("requirepass \"s3cret\""))
        #expect(lines.contains("unixsocket \"/dev/shm/pgevents-0/redis-x/run/redis.sock\""))
        #expect(lines.contains("unixsocketperm 700"))
        #expect(lines.contains("maxmemory \"64mb\""))
        #expect(lines.contains("save \"900 1\""))
        // The user's settings come after the defaults, so that they override them (a later line wins).
        #expect(try #require(lines.lastIndex(of: "save \"900 1\"")) > (try #require(lines.firstIndex(of: "save \"\""))))
        #expect(text.hasSuffix("\n"))
    }

    @Test("settings cannot take over the addresses, the socket or the password, nor inject lines")
    func redisReservedSettings() {
        for name in ["requirepass", "bind", "PORT", "unixsocket", "dir", "include", "logfile"] {
            let error = #expect(throws: HarnessError.self) {
                try TemporaryRedis.configurationFile(port: 1, unixSocketPath: "/s", directory: "/d", password: "p", settings: [name: "x"])
            }
            #expect(error?.code == .invalidInput)
        }
        for name in ["max memory", "a\nrequirepass", "", "x\"y"] {
            #expect(throws: HarnessError.self) {
                try TemporaryRedis.configurationFile(port: 1, unixSocketPath: "/s", directory: "/d", password: "p", settings: [name: "x"])
            }
        }
        // A value with a newline stays on its line.
        let text = try? TemporaryRedis.configurationFile(
            port: 1, unixSocketPath: "/s", directory: "/d", password: "p", settings: ["maxmemory": "1mb\nrequirepass \"\""])
        #expect(text?.contains("maxmemory \"1mb\\nrequirepass \\\"\\\"\"") == true, "\(text ?? "")")
        #expect(text?.split(separator: "\n").filter { $0.hasPrefix("requirepass") }.count == 1)
    }

    @Test("directive values are quoted the way redis-server reads them")
    func quoting() {
        #expect(TemporaryRedis.quoteDirectiveValue("") == "\"\"")
        #expect(TemporaryRedis.quoteDirectiveValue("a b") == "\"a b\"")
        #expect(TemporaryRedis.quoteDirectiveValue("q\"b\\") == "\"q\\\"b\\\\\"")
        #expect(TemporaryRedis.quoteDirectiveValue("t\tn\nr\r") == "\"t\\tn\\nr\\r\"")
        #expect(TemporaryRedis.quoteDirectiveValue("\u{1}é") == "\"\\x01\\xc3\\xa9\"")
    }

    @Test("a scratch root must be this user's directory and writable by no one else")
    func scratchRootChecks() throws {
        let directory = mode_t(S_IFDIR)
        #expect(ScratchDirectory.rootProblem(path: "/r", fileType: directory, mode: 0o700, owner: 1000, user: 1000) == nil)
        #expect(ScratchDirectory.rootProblem(path: "/r", fileType: directory, mode: 0o710, owner: 0, user: 0) == nil)
        #expect(ScratchDirectory.rootProblem(path: "/r", fileType: directory, mode: 0o755, owner: 0, user: 0) == nil)

        let foreign = try #require(
            ScratchDirectory.rootProblem(path: "/dev/shm/pgevents-1000", fileType: directory, mode: 0o700, owner: 0, user: 1000))
        #expect(foreign.code == .unsafeDirectory)
        #expect(foreign.message.contains("/dev/shm/pgevents-1000 is owned by root (uid 0)"), "\(foreign.message)")
        #expect(foreign.hint?.contains("rm -rf /dev/shm/pgevents-1000") == true && foreign.hint?.contains("PGEVENTS_TMPDIR") == true)

        let world = try #require(ScratchDirectory.rootProblem(path: "/r", fileType: directory, mode: 0o777, owner: 7, user: 7))
        #expect(world.message.contains("mode 0777") && world.message.contains("every user"), "\(world.message)")
        let group = try #require(ScratchDirectory.rootProblem(path: "/r", fileType: directory, mode: 0o1770, owner: 7, user: 7))
        #expect(group.message.contains("mode 01770") && group.message.contains("its group"), "\(group.message)")
        #expect(group.hint?.contains("chmod 700 /r") == true)

        let link = try #require(ScratchDirectory.rootProblem(path: "/r", fileType: mode_t(S_IFLNK), mode: 0o777, owner: 7, user: 7))
        #expect(link.message.contains("not a directory"))
        #expect(ScratchDirectory.accountName(0) == "root (uid 0)")
        #expect(ScratchDirectory.accountName(4_000_000_000) == "uid 4000000000")
    }

    @Test("pgevents process warns when --database-url or --redis-url carries a password, and only then")
    func passwordWarnings() throws {
        let withPasswords = ProcessCommand.passwordOnCommandLineWarnings(
            databaseURLOption: try PostgresConfiguration("postgresql://app:pw@db.example/app"),
            redisURLOption: try RedisConfiguration("redis://:pw@cache.example:6379/0"))
        #expect(withPasswords.count == 2)
        #expect(withPasswords[0].contains("--database-url") && withPasswords[0].contains("DATABASE_URL") && withPasswords[0].contains("ps"))
        #expect(withPasswords[1].contains("--redis-url") && withPasswords[1].contains("REDIS_URL"))
        #expect(!withPasswords.joined().contains("pw@"), "the warning must not repeat the secret")
        let conninfo = ProcessCommand.passwordOnCommandLineWarnings(
            databaseURLOption: try PostgresConfiguration("host=db user=app password=pw dbname=app"),
            redisURLOption: try RedisConfiguration("unix:///run/redis.sock?password=pw"))
        #expect(conninfo.count == 2)

        #expect(
            ProcessCommand.passwordOnCommandLineWarnings(
                databaseURLOption: try PostgresConfiguration("postgresql://app@db.example/app"),
                redisURLOption: try RedisConfiguration("redis://cache.example:6379/0")
            ).isEmpty)
        // From the environment (no option given): nothing to warn about.
        #expect(ProcessCommand.passwordOnCommandLineWarnings(databaseURLOption: nil, redisURLOption: nil).isEmpty)
    }
}
