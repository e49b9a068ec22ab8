import Synchronization

/// What the parts of a soak run share.
final class SoakRun: Sendable {
    struct BadEvents {
        var poison: Set<Int64> = []
        var wrongType: Set<Int64> = []
    }

    let ledger = EventLedger()
    let bad = Mutex(BadEvents())
    /// Dead letters per row id.
    let dead = Mutex<[Int64: Int]>([:])
    let deadCount = Atomic<Int>(0)
    let unidentifiedDead = Atomic<Int>(0)
    let unreadableJobs = Atomic<Int>(0)
    let writeErrors = Atomic<Int>(0)
    /// Events committed (good and bad).
    let committed = Atomic<Int>(0)
    let samples = Mutex<[SoakReport.Sample]>([])
    /// The writer and the sampler stop.
    let stopWriting = Atomic<Bool>(false)
    /// Everything stops (the processor's end is then no failure).
    let stopping = Atomic<Bool>(false)
    private let lastProgress = Mutex(ContinuousClock.now)
    private let failureText = Mutex<String?>(nil)

    /// The first failure, in words that say whose: the processor's, or a part of the bench's.
    var failure: String? { failureText.withLock { $0 } }

    func fail(_ message: String) {
        failureText.withLock { if $0 == nil { $0 = message } }
    }

    func noteProgress() {
        lastProgress.withLock { $0 = .now }
    }

    /// How many events wait and since when nothing reached the consumer, when that is `timeout` seconds or more; else nil.
    func stalled(timeout: Double) -> (waiting: Int, since: ContinuousClock.Instant)? {
        let waiting = self.waiting
        let since = lastProgress.withLock { $0 }
        guard waiting > 0, ContinuousClock.now - since > .milliseconds(Int64(timeout * 1000)) else { return nil }
        return (waiting, since)
    }

    /// Events committed and not yet taken (as a job or a dead letter).
    var waiting: Int {
        let bad = bad.withLock { $0.poison.count + $0.wrongType.count }
        let deadTaken = dead.withLock { $0.count }
        return max(0, ledger.committedCount - ledger.deliveredCount) + max(0, bad - deadTaken)
    }

    /// Whether every good event was delivered and every bad one dead-lettered.
    var isComplete: Bool {
        guard ledger.committedCount <= ledger.deliveredCount else { return false }
        let bad = bad.withLock { $0 }
        return dead.withLock { dead in bad.poison.allSatisfy { dead[$0] != nil } && bad.wrongType.allSatisfy { dead[$0] != nil } }
    }

    func report(logs: BenchLogs, poisonEnabled: Bool) -> SoakReport {
        let summary = ledger.summary
        let bad = bad.withLock { $0 }
        let dead = dead.withLock { $0 }
        let good = ledger.committedKeys
        var events = SoakReport.Events()
        events.good = summary.sent
        events.delivered = summary.delivered
        events.lost = summary.lost.count
        events.duplicated = summary.duplicated.count
        events.poison = bad.poison.count
        events.poisonDeadLettered = bad.poison.filter { dead[$0] != nil }.count
        events.wrongType = bad.wrongType.count
        events.wrongTypeDeadLettered = bad.wrongType.filter { dead[$0] != nil }.count
        events.badDelivered = summary.unexpected.filter { bad.poison.contains($0) || bad.wrongType.contains($0) }.count
        events.goodDeadLettered = dead.keys.filter { good.contains($0) }.count
        events.unidentifiedDeadLetters =
            unidentifiedDead.load(ordering: .relaxed)
            + dead.keys.filter { !good.contains($0) && !bad.poison.contains($0) && !bad.wrongType.contains($0) }.count
        return SoakReport(samples: samples.withLock { $0 }, events: events, runFailure: failure, poisonEnabled: poisonEnabled)
    }
}
