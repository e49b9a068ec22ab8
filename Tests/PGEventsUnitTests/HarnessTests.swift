import Testing

@testable import PGEventsHarness

@Suite("Harness pieces that need no server")
struct HarnessTests {
    @Test("server version strings are parsed")
    func versions() {
        #expect(PostgresBinaries.parseVersion("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n") == "15.18")
        #expect(PostgresBinaries.parseVersion("postgres (PostgreSQL) 18.1") == "18.1")
        #expect(PostgresBinaries.parseVersion("something else") == nil)
    }

    @Test("user settings override the harness defaults")
    func settings() {
        let configuration = TemporaryPostgres.Configuration(settings: ["fsync": "on", "max_connections": "20"])
        let settings = Dictionary(uniqueKeysWithValues: configuration.serverSettings(port: 5555, socketDirectory: "/s"))
        #expect(settings["fsync"] == "on")
        #expect(settings["max_connections"] == "20")
        #expect(settings["wal_level"] == "logical")
        #expect(settings["port"] == "5555")
        #expect(settings["listen_addresses"] == "127.0.0.1")
        let durable = Dictionary(
            uniqueKeysWithValues: TemporaryPostgres.Configuration(durable: true).serverSettings(port: 1, socketDirectory: "/s"))
        #expect(durable["fsync"] == nil)
    }

    @Test("the cache key is stable and depends on every part")
    func stableHashing() {
        #expect(stableHash(["a", "b"]) == stableHash(["a", "b"]))
        #expect(stableHash(["a", "b"]) != stableHash(["ab"]))
        #expect(stableHash(["a", "b"]).count == 16)
    }

    @Test("process identities round-trip and detect the current process")
    func identity() throws {
        let current = ProcessIdentity.current
        #expect(current.isAlive)
        #expect(ProcessIdentity(current.description) == current)
        #expect(ProcessIdentity("garbage") == nil)
        #expect(ProcessIdentity(pid: current.pid, startTime: current.startTime + 1).isAlive == false)
    }

    @Test("harness errors show the hint and the indented log tail")
    func errorText() {
        let error = HarnessError(code: .startupFailed, message: "postgres exited", logTail: "line 1\nline 2", hint: "do this")
        #expect(error.description == "postgres exited\nhint: do this\nserver log (last lines):\n  | line 1\n  | line 2")
    }
}
