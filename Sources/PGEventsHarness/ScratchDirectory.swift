import Foundation
import PGEventsSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A private directory for one throwaway server, under `<tmp>/pgevents-<uid>/`, marked with the process that
/// owns it so that a later run can reap what a crashed run left behind.
///
/// Layout: `owner` (pid and start time of the owning process), `server.pid` (the server's pid once started),
/// and whatever the server needs (`data/`, `socket/`, `server.log`, `redis.conf`).
///
/// The root and every scratch directory are private: mode 0700 when the servers run as this user; when this
/// process is root and the servers run as an unprivileged account (`ServerUser`), mode 0710 with that
/// account's group, so that the servers can reach their own subdirectories and no one else can even list
/// them. A root that another user owns, or that is group- or world-writable, is refused (`HarnessError.Code
/// .unsafeDirectory`): whoever can write there could swap a server's files or socket.
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

    /// Creates `<root>/<kind>-XXXXXX`, private to this user (and, when root, to the account the servers run as).
    static func create(kind: String, root: String = Self.root) throws -> ScratchDirectory {
        reapLeftoversOnce()
        let serverUser = try ServerUser.forCurrentProcess()
        try prepareRoot(root, serverUser: serverUser)
        var template = Array("\(root)/\(kind)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw HarnessError(
                code: .commandFailed, message: "cannot create a directory in \(root)",
                underlying: SystemError(call: "mkdtemp", errno: errno))
        }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = ScratchDirectory(path: path)
        do {
            try makePrivate(path, serverUser: serverUser)
            try directory.write("owner", ProcessIdentity.current.description)
        } catch {
            directory.remove()
            throw error
        }
        return directory
    }

    /// The mode of the root and of each scratch directory: 0700, or 0710 (with the server account's group)
    /// when the servers run as another account.
    static func privateMode(serverUser: ServerUser?) -> mode_t { serverUser == nil ? 0o700 : 0o710 }

    /// Creates `root` (mode 0700, or 0710 for the server account's group), or checks that an existing one is a
    /// directory of this user that no one else can write to — and then narrows its mode to the same.
    static func prepareRoot(_ root: String, serverUser: ServerUser?) throws {
        if mkdir(root, 0o700) != 0 && errno != EEXIST {
            throw HarnessError(
                code: .commandFailed, message: "cannot create the scratch directory \(root)",
                underlying: SystemError(call: "mkdir", errno: errno))
        }
        var info = stat()
        guard lstat(root, &info) == 0 else {
            throw HarnessError(
                code: .commandFailed, message: "cannot inspect the scratch directory \(root)",
                underlying: SystemError(call: "lstat", errno: errno))
        }
        if let problem = rootProblem(
            path: root, fileType: info.st_mode & S_IFMT, mode: info.st_mode & 0o7777, owner: info.st_uid, user: geteuid())
        {
            throw problem
        }
        try makePrivate(root, serverUser: serverUser)
    }

    /// What is wrong with a scratch root of this `fileType`, `mode` and `owner` for `user`, if anything: the error
    /// names the path, its owner and mode, and the fix.
    static func rootProblem(path: String, fileType: mode_t, mode: mode_t, owner: uid_t, user: uid_t) -> HarnessError? {
        let fix = "remove it (`rm -rf \(path)`) so that pgevents creates it afresh, or set PGEVENTS_TMPDIR to a directory of your own"
        let modeText = "0" + String(mode, radix: 8)
        if fileType != S_IFDIR {
            return HarnessError(
                code: .unsafeDirectory,
                message:
                    "the scratch directory \(path) is not a directory (a symbolic link or a file), owned by \(accountName(owner)); refusing to use it",
                hint: fix)
        }
        if owner != user {
            return HarnessError(
                code: .unsafeDirectory,
                message:
                    "the scratch directory \(path) is owned by \(accountName(owner)), not by this process's user \(accountName(user)) (mode \(modeText)); refusing to use it: its owner could replace the servers' files",
                hint: fix)
        }
        if mode & 0o022 != 0 {
            return HarnessError(
                code: .unsafeDirectory,
                message:
                    "the scratch directory \(path) (owner \(accountName(owner))) has mode \(modeText): writable by \(mode & 0o002 != 0 ? "every user" : "its group"); refusing to use it",
                hint: "make it private with `chmod 700 \(path)`, or " + fix)
        }
        return nil
    }

    /// `name (uid N)`, or `uid N` for an id without an account.
    static func accountName(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return "\(String(cString: name)) (uid \(uid))"
    }

    /// Sets `path`'s mode to `privateMode`, and its group to the server account's when there is one.
    private static func makePrivate(_ path: String, serverUser: ServerUser?) throws {
        if let serverUser, chown(path, geteuid(), serverUser.gid) != 0 {
            throw HarnessError(
                code: .commandFailed, message: "cannot give \(path) to the group of \(serverUser.name)",
                underlying: SystemError(call: "chown", errno: errno))
        }
        if chmod(path, privateMode(serverUser: serverUser)) != 0 {
            throw HarnessError(
                code: .commandFailed, message: "cannot make \(path) private", underlying: SystemError(call: "chmod", errno: errno))
        }
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ contents: String) throws {
        do {
            try contents.write(toFile: file(name), atomically: true, encoding: .utf8)
        } catch {
            throw HarnessError(
                code: .commandFailed, message: "cannot write \(file(name))", underlying: DescribedError(description: "\(error)"))
        }
    }

    /// Writes a file only its owner can read (mode 0600, created afresh), owned by `owner` when given (a server
    /// running as another account must read it): for secrets such as a server's configuration with its password.
    func writePrivate(_ name: String, _ contents: String, owner: ServerUser?) throws {
        let path = file(name)
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw HarnessError(code: .commandFailed, message: "cannot create \(path)", underlying: SystemError(call: "open", errno: errno))
        }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw HarnessError(
                    code: .commandFailed, message: "cannot write \(path)", underlying: SystemError(call: "write", errno: errno))
            }
            written += n
        }
        // The mode is set explicitly: the umask may have narrowed it, never widened it, but be exact.
        fchmod(fd, 0o600)
        if let owner, fchown(fd, owner.uid, owner.gid) != 0 {
            throw HarnessError(
                code: .commandFailed, message: "cannot give \(path) to \(owner.name)", underlying: SystemError(call: "fchown", errno: errno)
            )
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
        // Only a root of this user's that no one else can write to: its `owner` and `server.pid` files name
        // processes to signal, which must not be anyone else's choice.
        var info = stat()
        guard lstat(root, &info) == 0,
            rootProblem(path: root, fileType: info.st_mode & S_IFMT, mode: info.st_mode & 0o7777, owner: info.st_uid, user: geteuid())
                == nil
        else { return [] }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        var removed: [String] = []
        for entry in entries.sorted() {
            let directory = ScratchDirectory(path: root + "/" + entry)
            guard let ownerText = try? readFile(directory.file("owner")),
                let owner = ProcessIdentity(ownerText)
            else {
                // A directory without a readable owner is one whose creation was interrupted; remove it if old.
                if let attributes = try? FileManager.default.attributesOfItem(atPath: directory.path),
                    let modified = attributes[.modificationDate] as? Date, modified.timeIntervalSinceNow < -60
                {
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
