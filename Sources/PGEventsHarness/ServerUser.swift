import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The unprivileged account that runs servers when this process is root (PostgreSQL refuses to run as root).
///
/// Chosen from `PGEVENTS_SERVER_USER`, else `postgres` if that account exists, else `nobody`. When this process
/// is not root, servers run as the current user and no account switch happens.
struct ServerUser: Sendable, Hashable {
    var name: String
    var uid: UInt32
    var gid: UInt32

    /// The account to switch to, or nil when this process is not root.
    static func forCurrentProcess() throws -> ServerUser? {
        guard geteuid() == 0 else { return nil }
        let candidates = [environment("PGEVENTS_SERVER_USER"), "postgres", "nobody"].compactMap { $0 }
        for name in candidates {
            if let entry = getpwnam(name) {
                return ServerUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
            }
            if name == environment("PGEVENTS_SERVER_USER") {
                throw HarnessError(
                    code: .invalidInput, message: "PGEVENTS_SERVER_USER names '\(name)', which is not an account on this machine")
            }
        }
        throw HarnessError(
            code: .invalidInput,
            message: "running as root, and neither a 'postgres' nor a 'nobody' account exists to run the servers",
            hint: "create an unprivileged account and set PGEVENTS_SERVER_USER to its name")
    }

    /// The command prefix that runs a program as this account (`setpriv`, else `runuser`).
    func commandPrefix() throws -> [String] {
        if let setpriv = findExecutable("setpriv") {
            return [setpriv, "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--"]
        }
        if let runuser = findExecutable("runuser") {
            return [runuser, "-u", name, "--"]
        }
        throw HarnessError(
            code: .binaryNotFound,
            message: "running as root, but neither setpriv nor runuser is available to start servers as '\(name)'",
            hint: "install util-linux")
    }

    /// Gives the account ownership of `path` (not recursive).
    func own(_ path: String) throws {
        if chown(path, uid, gid) != 0 {
            throw HarnessError(
                code: .commandFailed, message: "cannot give \(path) to \(name)",
                underlying: SystemError(call: "chown", subject: path, errno: errno))
        }
    }
}
