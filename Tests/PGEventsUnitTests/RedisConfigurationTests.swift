import Testing

@testable import PGEventsRedis

@Suite("RedisConfiguration")
struct RedisConfigurationTests {
    /// Parses `url`, expecting `.invalidConfiguration`; returns the error.
    private func invalid(_ url: String, sourceLocation: SourceLocation = #_sourceLocation) -> RedisError? {
        let error = #expect(throws: RedisError.self, sourceLocation: sourceLocation) { try RedisConfiguration(url) }
        #expect(error?.code == .invalidConfiguration, sourceLocation: sourceLocation)
        return error
    }

    @Test func tcpWithPortAndDatabase() throws {
        let configuration = try RedisConfiguration("redis://redis.example.com:6380/2")
        #expect(configuration.host == "redis.example.com")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 2)
        #expect(configuration.unixSocketPath == nil)
        #expect(configuration.username == nil)
        #expect(configuration.password == nil)
        #expect(configuration.connectTimeout == 5)
        #expect(configuration.commandTimeout == nil)
    }

    @Test func defaults() throws {
        let configuration = try RedisConfiguration("redis://localhost")
        #expect(configuration.host == "localhost")
        #expect(configuration.port == 6379)
        #expect(configuration.database == 0)
        #expect(try RedisConfiguration("redis://localhost/") == configuration)
        #expect(try RedisConfiguration("REDIS://localhost:6379/0") == configuration)
        #expect(RedisConfiguration(host: "localhost") == configuration)
    }

    @Test func databaseAsQueryParameter() throws {
        #expect(try RedisConfiguration("redis://localhost?db=7").database == 7)
        _ = invalid("redis://localhost/1?db=2")
    }

    @Test func userAndPasswordArePercentDecoded() throws {
        let configuration = try RedisConfiguration("redis://j%C3%B6rg:p%40ss%3Aw%2Frd%25@cache:7000/3")
        #expect(configuration.username == "jörg")
        #expect(configuration.password == "p@ss:w/rd%")
        #expect(configuration.host == "cache")
        #expect(configuration.port == 7000)
        #expect(configuration.database == 3)
    }

    @Test func passwordOnly() throws {
        let withColon = try RedisConfiguration("redis://:hunter2@localhost")
        #expect(withColon.username == nil)
        #expect(withColon.password == "hunter2")
        // As in redis-cli: userinfo without ':' is the password.
        let bare = try RedisConfiguration("redis://hunter2@localhost")
        #expect(bare.username == nil)
        #expect(bare.password == "hunter2")
    }

    @Test func unencodedAtSignInPassword() throws {
        let configuration = try RedisConfiguration("redis://app:p@ss/w@localhost:6379/1")
        #expect(configuration.username == "app")
        #expect(configuration.password == "p@ss/w")
        #expect(configuration.host == "localhost")
        #expect(configuration.database == 1)
    }

    @Test func ipv6Host() throws {
        let configuration = try RedisConfiguration("redis://[::1]:7001/4")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 7001)
        #expect(configuration.url == "redis://[::1]:7001/4")
        _ = invalid("redis://::1:7001")
        _ = invalid("redis://[::1")
    }

    @Test func unixSocketWithDatabaseAndPassword() throws {
        let configuration = try RedisConfiguration("unix:///var/run/redis/redis.sock?db=4&password=hunter%212")
        #expect(configuration.unixSocketPath == "/var/run/redis/redis.sock")
        #expect(configuration.database == 4)
        #expect(configuration.password == "hunter!2")
        #expect(configuration.username == nil)
    }

    @Test func redisPlusUnixScheme() throws {
        let configuration = try RedisConfiguration("redis+unix:///tmp/redis.sock?db=2")
        #expect(configuration.unixSocketPath == "/tmp/redis.sock")
        #expect(configuration.database == 2)
        #expect(try RedisConfiguration("unix:///tmp/redis.sock").database == 0)
    }

    @Test func unixSocketWithUserinfoAndEncodedPath() throws {
        let configuration = try RedisConfiguration("unix://worker:pw@/tmp/my%20dir/redis.sock")
        #expect(configuration.unixSocketPath == "/tmp/my dir/redis.sock")
        #expect(configuration.password == "pw")
        #expect(configuration.username == "worker")
    }

    @Test func timeoutsFromQuery() throws {
        let configuration = try RedisConfiguration("redis://localhost?connect_timeout=0.5&command_timeout=30")
        #expect(configuration.connectTimeout == 0.5)
        #expect(configuration.commandTimeout == 30)
        _ = invalid("redis://localhost?command_timeout=0")
        _ = invalid("redis://localhost?connect_timeout=-1")
        _ = invalid("redis://localhost?command_timeout=soon")
    }

    @Test func invalidScheme() {
        #expect(invalid("http://localhost:6379")?.message.contains("'http'") == true)
        #expect(invalid("rediss://localhost:6379")?.message.contains("TLS") == true)
        _ = invalid("localhost:6379")
        _ = invalid("")
    }

    @Test func invalidPort() {
        #expect(invalid("redis://localhost:abc/0")?.message.contains("port") == true)
        #expect(invalid("redis://localhost:0")?.message.contains("port 0") == true)
        #expect(invalid("redis://localhost:65536")?.message.contains("port 65536") == true)
        _ = invalid("redis://localhost:-1")
        _ = invalid("redis://localhost:")
    }

    @Test func invalidDatabase() {
        #expect(invalid("redis://localhost/abc")?.message.contains("database") == true)
        _ = invalid("redis://localhost/-1")
        _ = invalid("redis://localhost/1/2")
        _ = invalid("redis://localhost/99999999999")
        _ = invalid("unix:///tmp/redis.sock?db=x")
    }

    @Test func otherInvalidURLs() {
        #expect(invalid("redis://")?.message.contains("host") == true)
        #expect(invalid("redis://:6379/0")?.message.contains("host") == true)
        _ = invalid("unix://relative/redis.sock")
        _ = invalid("unix://")
        #expect(invalid("unix:///tmp/redis.sock?dbx=1")?.message.contains("dbx") == true)
        _ = invalid("unix:///tmp/redis.sock?db")
        _ = invalid("redis://u:%zz@localhost")
        _ = invalid("redis://user:@localhost")  // a username without a password
        _ = invalid("unix:///" + String(repeating: "d", count: 120) + "/redis.sock")
        _ = invalid("redis://:a@localhost?password=b")
    }

    @Test func errorMessagesNeverContainThePassword() {
        let urls = [
            "redis://user:hunter2",  // host forgotten: the password lands where the port goes
            "redis://user:hunter2@localhost:hunter2",
            "redis://user:hunter2@localhost/hunter2",
            "redis://user:hunter2@localhost?db=hunter2",
            "redis://user:hunter2@localhost?connect_timeout=hunter2",
            "unix://user:hunter2@relative",
            "redis://:hunter2%@localhost",
        ]
        for url in urls {
            let error = invalid(url)
            #expect(error.map { !$0.description.contains("hunter2") } == true, "\(url)")
        }
    }

    @Test func descriptionMasksThePassword() throws {
        let configuration = try RedisConfiguration("redis://app:hunter2@cache:6380/1")
        #expect(configuration.description == "redis://app:********@cache:6380/1")
        #expect(configuration.url == configuration.description)
        #expect(configuration.target == "redis://app@cache:6380/1")
        #expect(!"\(configuration)".contains("hunter2"))
        #expect(!String(reflecting: configuration).contains("hunter2"))
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("hunter2"))

        let passwordOnly = try RedisConfiguration("redis://:hunter2@cache")
        #expect(passwordOnly.description == "redis://:********@cache:6379/0")

        let unix = try RedisConfiguration("unix:///tmp/redis.sock?db=4&password=hunter2")
        #expect(unix.description == "unix:///tmp/redis.sock?db=4&password=********")
        #expect(!unix.target.contains("hunter2") && !unix.target.contains("password"))
    }

    @Test func urlIncludingSecretsRoundTrips() throws {
        let configurations = [
            RedisConfiguration(
                host: "cache", port: 6380, database: 3, username: "j ö:@/", password: "p@ss:w/rd%&?#", connectTimeout: 0.25,
                commandTimeout: 12.5),
            RedisConfiguration(host: "::1", password: "x"),
            RedisConfiguration(unixSocketPath: "/tmp/a dir/r?.sock", database: 2, username: "u", password: "p&q=r"),
            RedisConfiguration(unixSocketPath: "/tmp/redis.sock"),
        ]
        for configuration in configurations {
            #expect(try RedisConfiguration(configuration.urlIncludingSecrets) == configuration, "\(configuration)")
            #expect(!configuration.url.contains("p@ss") && !configuration.url.contains("p%40ss"))
        }
        #expect(configurations[0].urlIncludingSecrets.contains("p%40ss%3Aw%2Frd%25%26%3F%23"))
    }

    @Test func validateRejectsOutOfRangeFields() {
        let bad = [
            RedisConfiguration(port: 0),
            RedisConfiguration(host: ""),
            RedisConfiguration(database: -1),
            RedisConfiguration(username: "u"),
            RedisConfiguration(connectTimeout: 0),
            RedisConfiguration(connectTimeout: .infinity),
            RedisConfiguration(commandTimeout: -1),
            RedisConfiguration(commandTimeout: .nan),
            RedisConfiguration(unixSocketPath: ""),
            RedisConfiguration(unixSocketPath: "/" + String(repeating: "s", count: 107)),
        ]
        for configuration in bad {
            let error = #expect(throws: RedisError.self) { try configuration.validate() }
            #expect(error?.code == .invalidConfiguration)
        }
        #expect(throws: Never.self) { try RedisConfiguration(unixSocketPath: "/" + String(repeating: "s", count: 106)).validate() }
        #expect(throws: Never.self) { try RedisConfiguration(port: 65535, commandTimeout: 0.001).validate() }
    }

    @Test func connectRejectsAnInvalidConfigurationBeforeAnyIO() async {
        let error = await #expect(throws: RedisError.self) { try await RedisConnection.connect(RedisConfiguration(port: 70000)) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test func connectionFailureDoesNotRevealThePassword() async {
        let url = "unix:///nonexistent-pgevents-dir/redis.sock?password=hunter2"
        let error = await #expect(throws: RedisError.self) { try await RedisConnection.connect(to: url) }
        #expect(error?.code == .connectionFailed)
        #expect(error?.isConnectionError == true)
        #expect(
            error.map { !$0.description.contains("hunter2") && $0.description.contains("/nonexistent-pgevents-dir/redis.sock") } == true)
    }
}
