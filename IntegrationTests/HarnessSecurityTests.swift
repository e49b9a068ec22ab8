import Foundation
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Testing

@testable import PGEventsHarness

/// The harness's local security: a throwaway Redis needs its password, which no process's arguments show;
/// secrets and logs are private files; the scratch root is private and refused when it is not.
@Suite("Harness security: passwords, private files, the scratch root")
struct HarnessSecurityTests {
    @Test("a throwaway Redis refuses a client without the password (NOAUTH) and accepts the URL's, over TCP and the socket")
    func redisNeedsThePassword() async throws {
        try await withTemporaryRedis { redis in
            #expect(redis.password.count >= 32)
            for anonymous in [
                RedisConfiguration(host: "127.0.0.1", port: redis.port), RedisConfiguration(unixSocketPath: redis.unixSocketPath),
            ] {
                let connection = try await RedisConnection.connect(anonymous)
                let error = await #expect(throws: RedisError.self) { try await connection.command("SET", "k", "v") }
                #expect(error?.message.contains("NOAUTH") == true, "\(error.map { "\($0)" } ?? "no error")")
                await connection.close()
            }
            // A wrong password is refused when connecting.
            var wrong = redis.configuration
            wrong.password = "not-the-password"
            await #expect(throws: RedisError.self) { try await RedisConnection.connect(wrong) }

            // The URL (TCP) and the socket URL carry the password, and parse back to it.
            #expect(redis.url.hasPrefix("redis://:"))
            #expect(try RedisConfiguration(redis.url).password == redis.password)
            let socketURL = redis.unixSocketConfiguration.urlIncludingSecrets
            #expect(socketURL.hasPrefix("unix://") && socketURL.contains("password="))
            #expect(try RedisConfiguration(socketURL).password == redis.password)
            for url in [redis.url, socketURL] {
                let connection = try await RedisConnection.connect(to: url)
                #expect(try await connection.command("PING") == .status("PONG"))
                await connection.close()
            }
            let viaConfiguration = try await redis.connect()
            #expect(try await viaConfiguration.command("SET", "k", "v") == .status("OK"))
            await viaConfiguration.close()
        }
    }

    @Test("no process's arguments show the Redis password; its configuration file and log are 0600; restart keeps it")
    func redisPasswordStaysOffCommandLines() async throws {
        try await withTemporaryRedis { redis in
            let pid = try #require(redis.pid)
            // redis-server rewrites its title (`proc-title-template`); the harness's template names the
            // configuration file, so that a later run can tell the server of a dead test process by its directory.
            let arguments = try commandLine(of: pid)
            #expect(arguments.joined(separator: " ").contains(redis.configurationFilePath), "\(arguments)")
            #expect(!arguments.joined(separator: " ").contains(redis.password), "\(arguments)")
            // No process on the machine has it in its arguments (what `ps -eo args` shows).
            #expect(processesWhoseArguments(contain: redis.password).isEmpty)

            #expect(try fileMode(redis.configurationFilePath) == 0o600)
            #expect(try fileMode(redis.logPath) == 0o600)
            let configuration = try String(contentsOfFile: redis.configurationFilePath, encoding: .utf8)
            #expect(configuration.contains("requirepass \"\(redis.password)\""))
            if geteuid() == 0 {
                // The server runs as another account, which must read its file: it owns it.
                #expect(try fileOwner(redis.configurationFilePath) == readStatusUID(pid: pid))
            }

            try await redis.restart()
            let restarted = try #require(redis.pid)
            #expect(!(try commandLine(of: restarted)).joined(separator: " ").contains(redis.password))
            let connection = try await redis.connect()
            #expect(try await connection.command("PING") == .status("PONG"))
            await connection.close()
        }
    }

    @Test("a throwaway PostgreSQL's log is 0600 and its scratch directory private")
    func postgresLogIsPrivate() async throws {
        try await withTemporaryPostgres { server in
            #expect(try fileMode(server.logPath) == 0o600)
            let expected: mode_t = geteuid() == 0 ? 0o710 : 0o700
            #expect(try fileMode(server.directory) == expected)
            // (The shared root's own mode is not checked here: test processes of older builds on this machine may
            // change it; `scratchRootIsCreatedPrivate` checks a root of its own.)
            let pid = try #require(server.pid)
            #expect(!(try commandLine(of: pid)).joined(separator: " ").contains(server.password))
        }
    }

    @Test("a scratch root is created private, and an existing one made private")
    func scratchRootIsCreatedPrivate() throws {
        try withScratchParent { (parent: String) throws in
            let user = try ServerUser.forCurrentProcess()
            let root = parent + "/pgevents-\(geteuid())"
            let directory = try ScratchDirectory.create(kind: "probe", root: root)
            defer { directory.remove() }
            let expected: mode_t = user == nil ? 0o700 : 0o710
            #expect(try fileMode(root) == expected)
            #expect(try fileMode(directory.path) == expected)
            if let user { #expect(try fileGroup(root) == user.gid) }
            // An existing root of this user's with a looser (not writable) mode is narrowed.
            chmod(root, 0o755)
            try ScratchDirectory.prepareRoot(root, serverUser: user)
            #expect(try fileMode(root) == expected)
        }
    }

    @Test(
        "a scratch root owned by another user is refused, naming the path, the owner and the fix",
        .enabled(if: geteuid() == 0, "needs root to give a directory to another user"))
    func scratchRootOfAnotherUser() throws {
        try withScratchParent { (parent: String) throws in
            let root = parent + "/pgevents-\(geteuid())"
            #expect(mkdir(root, 0o700) == 0)
            // getpwnam's entry is overwritten by the next lookup (the error message makes one): copy the ids now.
            let nobody = try #require(getpwnam("nobody"))
            let (nobodyUID, nobodyGID) = (nobody.pointee.pw_uid, nobody.pointee.pw_gid)
            #expect(chown(root, nobodyUID, nobodyGID) == 0)
            let error = #expect(throws: HarnessError.self) { _ = try ScratchDirectory.create(kind: "probe", root: root) }
            #expect(error?.code == .unsafeDirectory)
            #expect(error?.message.contains(root) == true, "\(error.map { "\($0)" } ?? "")")
            #expect(error?.message.contains("owned by nobody (uid \(nobodyUID))") == true, "\(error.map { "\($0)" } ?? "")")
            #expect(error?.hint?.contains("rm -rf \(root)") == true && error?.hint?.contains("PGEVENTS_TMPDIR") == true)
            // Nothing was created in it.
            #expect((try? FileManager.default.contentsOfDirectory(atPath: root))?.isEmpty == true)
        }
    }

    @Test("a group- or world-writable scratch root is refused, naming the path, the mode and the fix")
    func scratchRootWritableByOthers() throws {
        try withScratchParent { (parent: String) throws in
            let root = parent + "/pgevents-\(geteuid())"
            #expect(mkdir(root, 0o700) == 0)
            for (mode, who) in [(mode_t(0o777), "every user"), (0o770, "its group")] {
                #expect(chmod(root, mode) == 0)
                let error = #expect(throws: HarnessError.self) { _ = try ScratchDirectory.create(kind: "probe", root: root) }
                #expect(error?.code == .unsafeDirectory)
                #expect(error?.message.contains(root) == true)
                #expect(
                    error?.message.contains("mode 0\(String(mode, radix: 8))") == true && error?.message.contains(who) == true,
                    "\(error.map { "\($0)" } ?? "")")
                #expect(error?.hint?.contains("chmod 700 \(root)") == true)
                #expect(try fileMode(root) == mode, "a refused root is left as it was")
            }
        }
    }

    @Test("a symbolic link in place of the scratch root is refused")
    func scratchRootSymlink() throws {
        try withScratchParent { (parent: String) throws in
            let root = parent + "/pgevents-\(geteuid())"
            let elsewhere = parent + "/elsewhere"
            #expect(mkdir(elsewhere, 0o700) == 0)
            #expect(symlink(elsewhere, root) == 0)
            let error = #expect(throws: HarnessError.self) { _ = try ScratchDirectory.create(kind: "probe", root: root) }
            #expect(error?.code == .unsafeDirectory)
            #expect(error?.message.contains("not a directory") == true)
        }
    }
}

/// `pgevents process` warns about passwords on its own command line (where `ps` shows them), and only there.
@Suite("pgevents process: passwords on the command line")
struct ProcessPasswordWarningTests {
    @Test(
        "a password in --database-url / --redis-url is warned about, naming DATABASE_URL / REDIS_URL; the same URLs in the environment are not"
    )
    func warnsOnlyForOptions() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await journalDatabase()
        try await withTemporaryRedis { redis in
            let directory = try migrationDirectory(["processor.yml": "consumer: warned\nchannels: {new_event: {queue: jobs}}\n"])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            for (index, viaOptions) in [true, false].enumerated() {
                let log = directory + "/process-\(index).log"
                var environment = ProcessInfo.processInfo.environment
                var arguments = ["process", "--config", directory + "/processor.yml"]
                if viaOptions {
                    arguments += ["--database-url", database.url, "--redis-url", redis.url]
                } else {
                    environment["DATABASE_URL"] = database.url
                    environment["REDIS_URL"] = redis.url
                }
                let child = try ChildProcess.spawn(executable, arguments, outputPath: log, environment: environment)
                do {
                    // Its start is logged after the warnings: wait for it (bounded), then stop it.
                    try await withTimeout(30) {
                        while !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("processor starting") {
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                } catch {
                    child.kill(SIGKILL)
                    _ = await child.waitOffPool()
                    Issue.record("pgevents process did not start; log:\n\(tailOfFile(log, maxLines: 30))")
                    throw error
                }
                child.kill(SIGTERM)
                #expect(await child.waitOffPool() == .exited(0))
                let text = try String(contentsOfFile: log, encoding: .utf8)
                if viaOptions {
                    #expect(text.contains("--database-url carries a password") && text.contains("DATABASE_URL"), "\(text)")
                    #expect(text.contains("--redis-url carries a password") && text.contains("REDIS_URL"), "\(text)")
                } else {
                    #expect(!text.contains("carries a password"), "\(text)")
                }
                #expect(!text.contains(redis.password) && !text.contains(database.server.password), "a log must not show a password")
            }
        }
    }
}

/// Runs `body` with a fresh private directory in which a scratch root may be made; removes it afterwards.
private func withScratchParent(_ body: (String) throws -> Void) throws {
    var template = Array("\(temporaryDirectory)/pgevents-security-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    let parent = try #require(made.map { String(cString: $0) })
    defer { try? FileManager.default.removeItem(atPath: parent) }
    try body(parent)
}

/// The arguments of a process, as `ps -o args` shows them (`/proc/<pid>/cmdline`).
func commandLine(of pid: Int32) throws -> [String] {
    let data = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))
    return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
}

/// Every process whose arguments contain `secret`.
func processesWhoseArguments(contain secret: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
        return String(decoding: data, as: UTF8.self).contains(secret)
    }
}

/// The permission bits of a file (not following a symbolic link).
func fileMode(_ path: String) throws -> mode_t {
    var info = stat()
    guard lstat(path, &info) == 0 else { throw SystemError(call: "lstat", subject: path, errno: errno) }
    return info.st_mode & 0o7777
}

func fileOwner(_ path: String) throws -> UInt32 {
    var info = stat()
    guard lstat(path, &info) == 0 else { throw SystemError(call: "lstat", subject: path, errno: errno) }
    return info.st_uid
}

func fileGroup(_ path: String) throws -> UInt32 {
    var info = stat()
    guard lstat(path, &info) == 0 else { throw SystemError(call: "lstat", subject: path, errno: errno) }
    return info.st_gid
}
