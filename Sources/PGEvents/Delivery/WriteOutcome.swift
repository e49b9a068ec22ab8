/// What `RedisJobWriter` did with a list of jobs.
public struct WriteOutcome: Sendable, Equatable {
    /// Jobs written (pushed, added, or staged into a batch).
    public var written = 0
    /// Jobs written before (a replay): at or below their destination's delivered position.
    public var duplicates = 0
    /// Jobs Redis refused, or that could not be sent; in order.
    public var failures: [JobFailure] = []
    /// Batches sent, and the items in them.
    public var batchesSent = 0
    public var batchItemsSent = 0
    /// Batches Redis refused, sent whole to the dead-letter list.
    public var batchesDeadLettered = 0
    /// Milliseconds until the oldest open batch is due (by Redis' clock); nil when none is open. Only
    /// meaningful when `knowsBatchDeadline`.
    public var nextBatchDueMilliseconds: Int?
    /// Whether this write looked at the open batches (it staged a job, or flushed).
    public var knowsBatchDeadline = false

    public init() {}

    mutating func add(_ other: WriteOutcome) {
        written += other.written
        duplicates += other.duplicates
        failures += other.failures
        batchesSent += other.batchesSent
        batchItemsSent += other.batchItemsSent
        batchesDeadLettered += other.batchesDeadLettered
        if other.knowsBatchDeadline {
            // The earliest: an early deadline only costs a flush that finds nothing due (which then tells the next).
            nextBatchDueMilliseconds =
                knowsBatchDeadline
                ? [nextBatchDueMilliseconds, other.nextBatchDueMilliseconds].compactMap { $0 }.min() : other.nextBatchDueMilliseconds
            knowsBatchDeadline = true
        }
    }
}

/// A job that was not written: Redis refused it (`WRONGTYPE` on its queue), it was not tried because an earlier
/// job to the same destination was refused in the same write, or it cannot be sent at all (over Redis' size limit).
public struct JobFailure: Sendable, Equatable {
    public var job: Job
    /// Redis' error, or why the job was not sent.
    public var message: String
    /// The failure cannot change on another attempt (the job is larger than Redis takes): dead-letter it at once.
    public var permanent: Bool

    public init(job: Job, message: String, permanent: Bool = false) {
        self.job = job
        self.message = message
        self.permanent = permanent
    }
}
