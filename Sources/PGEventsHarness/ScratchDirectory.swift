#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PGEventsSystem
import Synchronization

/// A private directory for one throwaway server, under `<tmp>/pgevents-<uid>/`, marked with the process that
/// owns it so that a later run can reap what a crashed run left behind.
///
/// Layout: `owner` (pid and start time of the owning process), `server.pid` (the server's pid once started),
/// and whatever the server needs (`data/`, `socket/`, `server.log`).
struct ScratchDirectory: Sendable {
    let path: String

    /// Where this user's scratch directories live: `$PGEVENTS_TMPDIR/pgevents-<uid>`; else, on a memory
    /// file system, `/dev/shm/pgevents-<uid>` when it has 2 GiB free (creating a thousand files of a data
    /// directory there takes a tenth of the time it takes on a disk, and a throwaway server needs no disk);
    /// else `$TMPDIR` (or `/tmp`)`/pgevents-<uid>`.
    static let root: String = {
        let name = "/pgevents-\(geteuid())"
        if let explicit = environment("PGEVENTS_TMPDIR") { return explicit + name }
        if hasRoom("/dev/shm", bytes: 2 << 30) { return "/dev/shm" + name }
        return temporaryDirectory + name
    }()

    /// Every place a scratch directory may be (an earlier run may have chosen another), for reaping.
    static var candidateRoots: [String] {
        let name = "/pgevents-\(geteuid())"
        var roots = [root, "/dev/shm" + name, temporaryDirectory + name]
        if let explicit = environment("PGEVENTS_TMPDIR") { roots.append(explicit + name) }
        var seen = Set<String>()
        return roots.filter { seen.insert($0).inserted }
    }

    /// Whether `path` is a writable directory with at least `bytes` available.
    private static func hasRoom(_ path: String, bytes: UInt64) -> Bool {
        var info = statvfs()
        guard access(path, W_OK | X_OK) == 0, statvfs(path, &info) == 0 else { return false }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize) >= bytes
    }

    /// Creates `<root>/<kind>-XXXXXX` (mode 0755: servers running as another account must reach their subfolders).
    static func create(kind: String) throws -> ScratchDirectory {
        reapLeftoversOnce()
        let root = Self.root
        if mkdir(root, 0o755) != 0 && errno != EEXIST {
            throw HarnessError(code: .commandFailed, message: "cannot create \(root)", underlying: SystemErrorBox(errno: errno, call: "mkdir"))
        }
        chmod(root, 0o755)
        var template = Array("\(root)/\(kind)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw HarnessError(code: .commandFailed, message: "cannot create a directory in \(root)", underlying: SystemErrorBox(errno: errno, call: "mkdtemp"))
        }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(path, 0o755)
        let directory = ScratchDirectory(path: path)
        try directory.write("owner", ProcessIdentity.current.description)
        return directory
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ contents: String) throws {
        do {
            try contents.write(toFile: file(name), atomically: true, encoding: .utf8)
        } catch {
            throw HarnessError(code: .commandFailed, message: "cannot write \(file(name))", underlying: DescribedError(description: "\(error)"))
        }
    }

    /// Removes the directory and everything in it.
    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    // MARK: Reaping

    private static let reaped = Mutex(false)

    /// Once per process: stops servers and removes directories whose owning process is gone.
    static func reapLeftoversOnce() {
        let first = reaped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { _ = reapLeftovers() }
    }

    /// Stops servers and removes scratch directories whose owning process has died; returns the paths removed.
    @discardableResult
    static func reapLeftovers() -> [String] {
        candidateRoots.flatMap { reapLeftovers(in: $0) }
    }

    private static func reapLeftovers(in root: String) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        var removed: [String] = []
        for entry in entries.sorted() {
            let directory = ScratchDirectory(path: root + "/" + entry)
            guard let ownerText = try? readFile(directory.file("owner")),
                  let owner = ProcessIdentity(ownerText) else {
                // A directory without a readable owner is one whose creation was interrupted; remove it if old.
                if let attributes = try? FileManager.default.attributesOfItem(atPath: directory.path),
                   let modified = attributes[.modificationDate] as? Date, modified.timeIntervalSinceNow < -60 {
                    directory.remove()
                    removed.append(directory.path)
                }
                continue
            }
            guard !owner.isAlive else { continue }
            if let pidText = try? readFile(directory.file("server.pid")), let pid = Int32(pidText.trimmed()) {
                stopOrphan(pid: pid, directory: directory.path)
            }
            directory.remove()
            removed.append(directory.path)
        }
        return removed
    }

    /// Stops a server left behind by a dead process, if `pid` still is that server (its command line names `directory`).
    private static func stopOrphan(pid: Int32, directory: String) {
        guard let cmdline = try? readFile("/proc/\(pid)/cmdline"), cmdline.contains(directory) else { return }
        kill(pid, SIGCONT)  // a server paused by a fault test cannot act on SIGQUIT
        kill(pid, SIGQUIT)
        for _ in 0..<200 {  // up to 2 s for an immediate shutdown
            if kill(pid, 0) != 0 { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
    }
}


/// A process identified by pid and start time, so that a reused pid is not mistaken for the original.
struct ProcessIdentity: Sendable, Hashable, CustomStringConvertible {
    var pid: Int32
    var startTime: UInt64

    static let current = ProcessIdentity(pid: getpid(), startTime: startTime(of: getpid()) ?? 0)

    init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    init?(_ text: String) {
        let parts = text.trimmed().split(separator: " ")
        guard parts.count == 2, let pid = Int32(parts[0]), let start = UInt64(parts[1]) else { return nil }
        self.init(pid: pid, startTime: start)
    }

    var description: String { "\(pid) \(startTime)" }

    var isAlive: Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        return Self.startTime(of: pid) == startTime
    }

    /// Field 22 of `/proc/<pid>/stat`: the process's start time in clock ticks since boot.
    static func startTime(of pid: Int32) -> UInt64? {
        guard let stat = try? readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: field 3 (state) is fields[0], so field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}
