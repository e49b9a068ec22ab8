import Synchronization

/// What an executable's `--version` answered, remembered per path for the life of the process.
///
/// Asking means a fork and an exec and a wait for the child, which the harness does off Swift's pool (``offload``);
/// once per path is enough. The suite starts hundreds of Redis servers: before this, each start asked again, on
/// the pool, and in a full run of the suite a sample of the pool's two threads found one of them waiting for
/// `redis-server --version` in 5 of 16 samples.
enum ExecutableVersion {
    private static let known = Mutex<[String: String]>([:])

    /// The version of `executable`, from `read` the first time.
    static func of(_ executable: String, read: @escaping @Sendable (String) throws -> String) async throws -> String {
        if let version = known.withLock({ $0[executable] }) { return version }
        let version = try await offload { try read(executable) }
        known.withLock { $0[executable] = version }
        return version
    }
}
