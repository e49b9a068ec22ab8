import Foundation
import Logging
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

extension TemporaryPostgres {
    /// `initdb` options. Settings that can be given at server start are not here (they are `-c` options),
    /// so one cached data directory serves every configuration.
    static let initdbArguments = [
        "--username=postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
        "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
    ]

    /// Where initialised data directories are cached: `$PGEVENTS_CACHE_DIR`, else `$XDG_CACHE_HOME/pgevents`,
    /// else `~/.cache/pgevents`.
    static var cacheRoot: String {
        if let explicit = environment("PGEVENTS_CACHE_DIR") { return explicit }
        if let xdg = environment("XDG_CACHE_HOME") { return xdg + "/pgevents" }
        return (environment("HOME") ?? temporaryDirectory) + "/.cache/pgevents"
    }

    /// Fills `<scratch>/data`: a copy of the cached initialised directory for this installation, or a fresh
    /// `initdb` (whose result is then cached).
    static func prepareDataDirectory(
        scratch: ScratchDirectory, binaries: PostgresBinaries, user: ServerUser?, configuration: Configuration, logger: Logger
    ) throws {
        let data = scratch.file("data")
        var arguments = initdbArguments
        arguments[0] = "--username=\(configuration.superuser)"
        let key = stableHash([binaries.directory, binaries.version, "\(user?.uid ?? geteuid())"] + arguments)
        let cached = cacheRoot + "/initdb-\(binaries.majorVersion)-\(key)"

        if configuration.reuseInitializedDataDirectory, FileManager.default.fileExists(atPath: cached + "/PG_VERSION") {
            try run("/bin/cp", ["-a", cached, data], what: "copying the cached data directory")
            return
        }

        mkdir(data, 0o700)
        try user?.own(data)
        let command = (try user?.commandPrefix() ?? []) + [binaries.program("initdb"), "-D", data] + arguments
        let (termination, output) = try ChildProcess.run(command[0], Array(command.dropFirst()))
        guard termination == .exited(0) else {
            throw HarnessError(code: .startupFailed, message: "initdb failed (\(termination))", logTail: output)
        }
        logger.debug("initdb done", metadata: ["directory": "\(data)"])

        guard configuration.reuseInitializedDataDirectory else { return }
        // Publish atomically: copy beside the final name, then rename; a concurrent run may win the race.
        try? FileManager.default.createDirectory(atPath: cacheRoot, withIntermediateDirectories: true)
        let staging = cached + ".tmp-\(getpid())-\(randomHex(bytes: 4))"
        do {
            try run("/bin/cp", ["-a", data, staging], what: "caching the data directory")
            if rename(staging, cached) != 0 { try? FileManager.default.removeItem(atPath: staging) }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            logger.warning("cannot cache the initialised data directory", metadata: ["error": "\(error)"])
        }
    }

    private static func run(_ executable: String, _ arguments: [String], what: String) throws {
        let (termination, output) = try ChildProcess.run(executable, arguments)
        guard termination == .exited(0) else {
            throw HarnessError(code: .commandFailed, message: "\(what) failed (\(termination)): \(output.trimmed())")
        }
    }
}

/// A 64-bit FNV-1a hash of strings, as 16 hex digits: stable across runs (unlike `Hasher`).
func stableHash(_ parts: [String]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for part in parts {
        for byte in part.utf8 + [0] {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
    }
    return String(hash, radix: 16).leftPadded(to: 16)
}
