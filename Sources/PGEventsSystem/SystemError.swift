#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An operating-system call that failed: the call, what it was applied to, and `errno`.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    /// The system call or library function that failed, e.g. `posix_spawn`.
    public var call: String
    /// What the call was applied to (a path, an executable), if anything.
    public var subject: String?
    /// The `errno` value the call left.
    public var errno: Int32

    public init(call: String, subject: String? = nil, errno: Int32) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        if let subject { return "\(call)(\(subject)) failed: \(reason) (errno \(errno))" }
        return "\(call) failed: \(reason) (errno \(errno))"
    }
}
