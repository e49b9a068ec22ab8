public import PGEventsRedis
import PGEventsSystem

/// Writes jobs to Redis — lists (`LPUSH`), streams (`XADD`), batches and the dead-letter list — exactly once,
/// in order, and reports per job what Redis did.
///
/// **No duplicates, in bounded memory.** A consumer writes its jobs in one order that replays repeat: by the
/// event's batch, its seq, and the job's place among its event's jobs (``Job/position``). So instead of a key
/// per job, the writer keeps one *delivered position* per destination, in one hash per consumer
/// (`<prefix>:<consumer>:<instance>:delivered`, a field per list, stream, batch destination and dead-letter
/// list). A script writes a job only if its position is past its destination's, and moves the position in the
/// same atomic step. A replay after a crash (or after any downtime: the positions never expire) finds its jobs
/// at or below their positions and writes nothing twice. Redis memory grows with the number of destinations,
/// not with the event rate.
///
/// **Refusals are per job.** A job Redis refuses (`WRONGTYPE`: the key holds another type) is reported in
/// ``WriteOutcome/failures`` with Redis' message; its destination's later jobs in the same write are not tried
/// (so that a retry keeps their order), and every other destination goes on. A job larger than Redis accepts
/// (`proto-max-bulk-len`) is not sent and reported as permanent. Errors that say "not now" — `LOADING`,
/// `BUSY`, `OOM`, `READONLY`, `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`, `NOREPLICAS`, `MISCONF` — are thrown as
/// `RedisError` (an outage: hold and retry the whole write, which is safe), as are lost connections.
///
/// **Batches** (GC2's "10 changes or 2 seconds") are staged in Redis per group by the same script, and sent as
/// one message when full, when due (``flushBatches(all:consumer:on:)``, by Redis' clock) or at shutdown. A batch
/// Redis refuses goes whole to the dead-letter list. Keys: `<prefix>:<space>:batches` (open batches by deadline),
/// `<prefix>:<space>:batch:<channel>:<destination>:<group>` and its `:meta`.
///
/// **Redis Cluster.** Every script declares the keys it is given. On a cluster (``RedisSink/cluster(_:)``) the
/// writer's keys are kept per hash slot of the destinations: jobs are grouped by the part of their destination's
/// name that the cluster hashes (its `{tag}`, or all of it), and each group's delivered positions, open batches,
/// staging lists and refused batches live under keys with that part as their tag
/// (`<prefix>:<consumer>:<instance>:delivered:{jobs}`), so one script call touches one slot. See
/// `RedisJobWriter+Cluster.swift`.
public struct RedisJobWriter: Sendable {
    /// Prefix of the writer's keys (`<prefix>:<consumer>:<instance>:…`).
    public var keyPrefix: String
    /// Where dead letters go (and refused batches).
    public var deadLetterQueue: String
    /// Jobs larger than this are not sent (Redis closes the connection on a bulk string over its
    /// `proto-max-bulk-len`, 512 MB by default); the delivery reads the server's setting when it connects.
    public var maxJobBytes: Int

    /// At most this many jobs, and about this many bytes, per script call: bounds the time one call holds Redis.
    public static let scriptJobs = 500
    public static let scriptBytes = 8 << 20
    /// Batches sent per flush call at most; the rest by the next call.
    public static let flushLimit = 1_000

    let writeScript = RedisScript(RedisJobWriter.sharedFunctions + RedisJobWriter.writeBody)
    let flushScript = RedisScript(RedisJobWriter.sharedFunctions + RedisJobWriter.flushBody)
    let advanceScript = RedisScript(RedisJobWriter.advanceBody)

    public init(keyPrefix: String = "pgevents:seen", deadLetterQueue: String = "pgevents:dead", maxJobBytes: Int = 512 << 20) {
        self.keyPrefix = keyPrefix
        self.deadLetterQueue = deadLetterQueue
        self.maxJobBytes = maxJobBytes
    }

    /// The hash of delivered positions of a consumer key space (`<consumer>:<instance>`) on one server.
    public func deliveredKey(consumer: String) -> String { keys(consumer: consumer, tag: nil).delivered }

    /// The sorted set of a consumer's open batches on one server.
    public func batchIndexKey(consumer: String) -> String { keys(consumer: consumer, tag: nil).batchIndex }

    /// The field of `destination` in the delivered-positions hash.
    public static func field(for destination: Job.Destination) -> String {
        switch destination {
        case .list(let name): "l:" + name
        case .stream(let name, _): "s:" + name
        case .batch(let batch): "b:\(batch.sink.rawValue):\(batch.channel):\(batch.queue)"
        case .deadLetter(let name, _): "d:" + name
        }
    }

    /// Writes `jobs` in their order (each to its destination), skipping those written before. Throws `RedisError`
    /// for an outage (retrying the same jobs is safe); refusals are in the outcome's `failures`.
    public func write(_ jobs: [Job], consumer: String, on redis: RedisSink) async throws -> WriteOutcome {
        var outcome = WriteOutcome()
        var sendable: [Job] = []
        sendable.reserveCapacity(jobs.count)
        for job in jobs {
            if job.body.utf8.count > maxJobBytes {
                outcome.failures.append(
                    JobFailure(
                        job: job,
                        message: "the job is \(job.body.utf8.count) bytes; Redis takes at most \(maxJobBytes) (proto-max-bulk-len)",
                        permanent: true))
            } else {
                sendable.append(job)
            }
        }
        if redis.isCluster {
            outcome.add(try await writeToCluster(sendable, consumer: consumer, on: redis))
        } else {
            outcome.add(try await write(sendable, keys: keys(consumer: consumer, tag: nil), on: redis))
        }
        return outcome
    }

    /// ``write(_:consumer:on:)`` to one server.
    public func write(_ jobs: [Job], consumer: String, on redis: RedisConnection) async throws -> WriteOutcome {
        try await write(jobs, consumer: consumer, on: .server(redis))
    }

    /// Writes jobs whose destinations share `keys`' slot (all of them, on one server).
    func write(_ jobs: [Job], keys: Keys, on redis: RedisSink) async throws -> WriteOutcome {
        var outcome = WriteOutcome()
        // Destinations refused earlier in this write, with Redis' message: their later jobs are not tried.
        var refusals: [(field: String, message: String)] = []
        for slice in Self.slices(jobs) {
            let reply = try await writeScript.evaluate(
                { sha in
                    [self.command(sha: sha, slice: slice, keys: keys, failedFields: refusals.map(\.field))]
                }, on: redis, slotOf: keys.delivered)[0]
            let part = try Self.outcome(of: reply, slice: slice, earlier: refusals)
            for failure in part.failures {
                let field = Self.field(for: failure.job.destination)
                if !refusals.contains(where: { $0.field == field }) { refusals.append((field, failure.message)) }
            }
            outcome.add(part)
        }
        return outcome
    }

    /// Sends the batches that are due (their first item has waited their `max_seconds`); with `all`, every open
    /// batch (at shutdown). Throws `RedisError` for an outage.
    public func flushBatches(all: Bool, consumer: String, on redis: RedisSink) async throws -> WriteOutcome {
        guard redis.isCluster else { return try await flushBatches(all: all, keys: keys(consumer: consumer, tag: nil), on: redis) }
        return try await flushClusterBatches(all: all, consumer: consumer, on: redis)
    }

    /// ``flushBatches(all:consumer:on:)`` on one server.
    public func flushBatches(all: Bool, consumer: String, on redis: RedisConnection) async throws -> WriteOutcome {
        try await flushBatches(all: all, consumer: consumer, on: .server(redis))
    }

    /// Sends the due (or all) batches whose index is `keys.batchIndex`.
    func flushBatches(all: Bool, keys: Keys, on redis: RedisSink) async throws -> WriteOutcome {
        var total = WriteOutcome()
        repeat {
            let reply = try await flushScript.evaluate(
                { sha in
                    [
                        [
                            "EVALSHA", RedisArgument(sha), "3", RedisArgument(keys.batchIndex), RedisArgument(keys.batchIndex + ":order"),
                            RedisArgument(keys.deadLetters), RedisArgument(keys.batchIndex), RedisArgument(all ? "all" : "due"),
                            RedisArgument(Self.flushLimit), RedisArgument(keys.deadLetters),
                        ]
                    ]
                }, on: redis, slotOf: keys.delivered)[0]
            let counts = try Self.integers(reply, count: 4, what: "sending batches")
            var part = WriteOutcome()
            part.batchesSent = counts[0]
            part.batchItemsSent = counts[1]
            part.knowsBatchDeadline = true
            part.nextBatchDueMilliseconds = counts[2] < 0 ? nil : counts[2]
            part.batchesDeadLettered = counts[3]
            total.add(part)
            if !all || part.batchesSent == 0 { break }
        } while total.nextBatchDueMilliseconds != nil
        return total
    }

    // MARK: Commands and replies

    /// `EVALSHA` of the write script for `slice`, declaring every key it touches (the writer's keys, each
    /// destination, each batch's staging list and its meta hash).
    private func command(sha: String, slice: ArraySlice<Job>, keys: Keys, failedFields: [String]) -> [RedisArgument] {
        var declared = DeclaredKeys([keys.delivered, keys.batchIndex, keys.batchIndex + ":order", keys.deadLetters])
        var arguments: [RedisArgument] = [
            RedisArgument(keys.delivered), RedisArgument(keys.batchIndex), RedisArgument(keys.deadLetters),
            RedisArgument(failedFields.count),
        ]
        arguments.reserveCapacity(arguments.count + failedFields.count + slice.count * 5)
        for field in failedFields { arguments.append(RedisArgument(field)) }
        // A destination's field and name are the same for all its jobs: made once per write (and jobs mostly come in
        // runs of one destination: compared with the last one before hashing).
        var names: [Job.Destination: (field: RedisArgument, name: RedisArgument)] = [:]
        var last: (destination: Job.Destination, field: RedisArgument, name: RedisArgument)?
        for job in slice {
            let destination: (field: RedisArgument, name: RedisArgument)
            if let last, last.destination == job.destination {
                destination = (last.field, last.name)
            } else if let known = names[job.destination] {
                destination = known
            } else {
                destination = (RedisArgument(Self.field(for: job.destination)), RedisArgument(job.destination.name))
                names[job.destination] = destination
                declared.insert(job.destination.name)
            }
            last = (job.destination, destination.field, destination.name)
            arguments += [destination.field, RedisArgument(job.positionBytes), destination.name, RedisArgument(job.body)]
            switch job.destination {
            case .list:
                break
            case .stream(_, let maxLength):
                arguments += [
                    maxLength.map { RedisArgument($0) } ?? "", RedisArgument(String(job.event.seq)), RedisArgument(job.event.channel),
                    RedisArgument(StreamTimestamp.text(job.event.createdAt)),
                ]
            case .batch(let batch):
                let staging = stagingKey(keys: keys, batch)
                declared.insert(staging)
                declared.insert(staging + ":meta")
                arguments += [
                    batch.streamMaxLength.map { RedisArgument($0) } ?? "", RedisArgument(batch.channel),
                    RedisArgument(staging), RedisArgument(batch.spec.maxItems),
                    RedisArgument(batch.spec.maxAge.inMilliseconds), RedisArgument(batch.group),
                ]
            case .deadLetter(_, let replaced):
                // On a cluster the replaced destination's position is in another slot: moved after this call.
                arguments.append(keys.tag == nil ? RedisArgument(replaced?.field ?? "") : "")
            }
        }
        return ["EVALSHA", RedisArgument(sha), RedisArgument(declared.keys.count)] + declared.keys.map { RedisArgument($0) } + arguments
    }

    /// The staging list of a batch group (on a cluster, in the slot of its destination: the tag comes first, before
    /// the channel and group, which may hold braces of their own).
    func stagingKey(keys: Keys, _ batch: BatchDestination) -> String {
        let space = keys.tag.map { "\(keys.space):batch:\($0)" } ?? "\(keys.space):batch"
        return "\(space):\(batch.channel):\(batch.queue):\(batch.group)"
    }

    /// Reads the write script's reply for `slice`; `earlier` are the destinations refused by earlier slices.
    static func outcome(of reply: RedisReply, slice: ArraySlice<Job>, earlier: [(field: String, message: String)] = []) throws
        -> WriteOutcome
    {
        var outcome = WriteOutcome()
        if case .error(let message) = reply {
            if isOutage(message) { throw RedisError(code: .server, message: message, command: "EVALSHA") }
            // A refusal of the whole call (not of one job): every job of it failed.
            outcome.failures = slice.map { JobFailure(job: $0, message: message) }
            return outcome
        }
        guard let parts = reply.array, parts.count >= 5, let status = parts[0].string, status.utf8.count == slice.count,
            let sent = parts[1].integer, let items = parts[2].integer, let due = parts[3].integer, let deadened = parts[4].integer
        else {
            throw RedisError(
                code: .protocolViolation, message: "unexpected reply to writing jobs \(slice.first?.key ?? "")…: \(reply)",
                command: "EVALSHA")
        }
        var messages: [Int: String] = [:]
        var index = 5
        while index + 1 < parts.count {
            if let number = parts[index].integer, let message = parts[index + 1].string { messages[Int(number) - 1] = message }
            index += 2
        }
        // A job not tried carries the refusal of its destination's earlier job: the same cause.
        var refusals = Dictionary(earlier.map { ($0.field, $0.message) }, uniquingKeysWith: { first, _ in first })
        for (offset, (job, code)) in zip(slice, status.utf8).enumerated() {
            switch code {
            case UInt8(ascii: "1"): outcome.written += 1
            case UInt8(ascii: "0"): outcome.duplicates += 1
            case UInt8(ascii: "F"):
                let message = messages[offset] ?? "refused"
                refusals[field(for: job.destination)] = message
                outcome.failures.append(JobFailure(job: job, message: message))
            default:
                outcome.failures.append(
                    JobFailure(
                        job: job,
                        message: refusals[field(for: job.destination)] ?? "not tried: an earlier job to \(job.destination.name) was refused"
                    ))
            }
        }
        outcome.batchesSent = Int(sent)
        outcome.batchItemsSent = Int(items)
        outcome.batchesDeadLettered = Int(deadened)
        if due != -2 {
            outcome.knowsBatchDeadline = true
            outcome.nextBatchDueMilliseconds = due < 0 ? nil : Int(due)
        }
        return outcome
    }

    /// Redis errors that say "not now" (the whole call did not run): an outage to wait out, not a refusal.
    static func isOutage(_ message: String) -> Bool {
        let kind = message.prefix { $0 != " " }
        return [
            "LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "MISCONF", "NOSCRIPT", "MOVED",
            "ASK",
        ]
        .contains(String(kind))
    }

    private static func integers(_ reply: RedisReply, count: Int, what: String) throws -> [Int] {
        if case .error(let message) = reply {
            if isOutage(message) { throw RedisError(code: .server, message: message, command: "EVALSHA") }
            throw ProcessorError(code: .sinkRejected, message: "Redis refused \(what): \(message)")
        }
        guard let parts = reply.array, parts.count == count else {
            throw RedisError(code: .protocolViolation, message: "unexpected reply to \(what): \(reply)", command: "EVALSHA")
        }
        return try parts.map { part in
            guard let value = part.integer else {
                throw RedisError(code: .protocolViolation, message: "unexpected reply to \(what): \(reply)", command: "EVALSHA")
            }
            return Int(value)
        }
    }

    /// `jobs` cut into consecutive slices of at most ``scriptJobs`` jobs and about ``scriptBytes`` bytes.
    static func slices(_ jobs: [Job]) -> [ArraySlice<Job>] {
        var slices: [ArraySlice<Job>] = []
        var start = jobs.startIndex
        var bytes = 0
        for index in jobs.indices {
            let size = jobs[index].body.utf8.count
            if index > start, index - start >= scriptJobs || bytes + size > scriptBytes {
                slices.append(jobs[start..<index])
                start = index
                bytes = 0
            }
            bytes += size
        }
        if start < jobs.endIndex { slices.append(jobs[start...]) }
        return slices
    }

}
