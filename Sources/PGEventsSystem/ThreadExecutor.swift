import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A serial executor that runs its jobs on one dedicated thread, which it also uses to wait for a file
/// descriptor to become readable while it has nothing else to do.
///
/// Actors that own a blocking C handle (a `PGconn*`, a `redisContext*`) use it as their executor: every call
/// into the C library happens on the one thread that owns the handle, a blocking call never occupies a thread
/// of Swift's cooperative pool, and the same thread can sit in `poll(2)` on the handle's socket between calls,
/// which is how notifications and a lost connection are noticed promptly.
///
/// Several connections can share one (`executor:`), as the WAL delivery's stream and Redis connection do.
///
/// It is deliberately not a task executor. A task that prefers one (`withTaskExecutorPreference`) takes its own
/// status lock at every executor switch, and Swift's runtime runs cancellation handlers under that lock. Code that
/// holds a lock of its own across `withUnsafeContinuation` and takes the same lock in its cancellation handler, as
/// AsyncAlgorithms' `merge` (ServiceLifecycle's `cancelOnGracefulShutdown`) does, then deadlocks when the task is
/// cancelled while it waits: the full suite hung that way, the WAL delivery's thread and one of the pool's two
/// threads stuck for good.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    // Synchronisation: `state` is guarded by its Mutex; `watch` and `threadID` are only touched by the
    // executor's own thread (`watch` is set and cleared from jobs running on it; `threadID` is written once
    // before the first job runs and read by `checkIsolated`, which compares against the calling thread).
    private struct State {
        var jobs: [UnownedJob] = []
        var sleeping = false
        var stopping = false
    }

    /// A readable-file-descriptor watch: `handler` runs on the executor's thread when `fd` is readable or
    /// `timeoutMilliseconds` (if any) passed without any activity.
    public struct Watch {
        public var fd: Int32
        public var timeoutMilliseconds: Int32?
        public var onReadable: () -> Void
        public var onTimeout: (() -> Void)?

        public init(fd: Int32, timeoutMilliseconds: Int32? = nil, onReadable: @escaping () -> Void, onTimeout: (() -> Void)? = nil) {
            self.fd = fd
            self.timeoutMilliseconds = timeoutMilliseconds
            self.onReadable = onReadable
            self.onTimeout = onTimeout
        }
    }

    private let state = Mutex(State())
    // A self-pipe: enqueue writes a byte when the thread sleeps in poll; the thread drains it.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var watch: Watch?
    private var threadID: pthread_t?
    /// The thread's name, for debuggers and `ps -L`.
    public let name: String

    /// Starts the thread.
    public init(name: String) {
        self.name = name
        var fds: [Int32] = [-1, -1]
        let rc = pipe(&fds)
        precondition(rc == 0, "pipe failed: \(errno)")  // only on file-descriptor exhaustion
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        self.wakeRead = fds[0]
        self.wakeWrite = fds[1]
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { raw in
                let executor = Unmanaged<ThreadExecutor>.fromOpaque(raw!).takeRetainedValue()
                executor.run()
                return nil
            }, box.toOpaque())
        precondition(created == 0, "pthread_create failed: \(created)")
        pthread_detach(thread)
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Lets the thread finish the jobs it has and end. Jobs enqueued later still run before it ends.
    public func shutdown() {
        let wake = state.withLock { state -> Bool in
            state.stopping = true
            defer { state.sleeping = false }
            return state.sleeping
        }
        if wake { signal() }
    }

    /// Installs (or, with `nil`, removes) the descriptor watched between jobs. Call it from a job on this executor.
    public func setWatch(_ watch: Watch?) {
        preconditionIsolated()
        self.watch = watch
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let wake = state.withLock { state -> Bool in
            state.jobs.append(unowned)
            defer { state.sleeping = false }
            return state.sleeping
        }
        if wake { signal() }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func checkIsolated() {
        precondition(isOnThread, "not on the executor thread '\(name)'")
    }

    public func isIsolatingCurrentContext() -> Bool? {
        isOnThread
    }

    /// Whether the caller runs on this executor's thread.
    public var isOnThread: Bool {
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    private func preconditionIsolated() {
        precondition(isOnThread, "ThreadExecutor.setWatch must be called on its own thread")
    }

    private func signal() {
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
    }

    private func drainWake() {
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &buffer, { read(wakeRead, $0.baseAddress, $0.count) }) > 0 {}
    }

    private func run() {
        threadID = pthread_self()
        var batch: [UnownedJob] = []
        batch.reserveCapacity(16)
        while true {
            let stop = state.withLock { state -> Bool in
                swap(&batch, &state.jobs)
                if batch.isEmpty {
                    if state.stopping { return true }
                    state.sleeping = true
                }
                return false
            }
            if stop { return }
            if batch.isEmpty {
                waitForWork()
                continue
            }
            let serial = asUnownedSerialExecutor()
            for job in batch { job.runSynchronously(on: serial) }
            batch.removeAll(keepingCapacity: true)
        }
    }

    /// Blocks in `poll` until a job arrives, the watched descriptor is readable, or the watch times out.
    private func waitForWork() {
        var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        if let watch { fds.append(pollfd(fd: watch.fd, events: Int16(POLLIN), revents: 0)) }
        let timeout = watch?.timeoutMilliseconds ?? -1
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready < 0 { return }  // EINTR: go round again
        if fds[0].revents != 0 { drainWake() }
        // Jobs may have arrived; the watch only runs while the thread is otherwise idle.
        state.withLock { $0.sleeping = false }
        guard let watch else { return }
        if ready == 0 {
            watch.onTimeout?()
        } else if fds.count > 1, fds[1].revents != 0 {
            watch.onReadable()
        }
    }
}
