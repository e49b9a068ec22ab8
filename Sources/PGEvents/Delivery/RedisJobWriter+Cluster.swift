import PGEventsRedis

// The job writer on a Redis Cluster: jobs grouped by the slot of their destination, each group written with the
// keys of its hash tag (`RedisJobWriter.Keys`), so that every script call touches one slot.

extension RedisJobWriter {
    /// The set of tags whose slots have had batches (`<prefix>:<consumer>:batch-tags`): where a flush looks.
    func batchTagsKey(consumer: String) -> String { "\(keyPrefix):\(consumer):batch-tags" }

    /// Throws a configuration error when a name the writer builds keys from holds a brace: its own tag would then
    /// decide the slot, and the keys of a destination would not share the destination's.
    func checkClusterNames(consumer: String) throws {
        for (what, name) in [("the key prefix", keyPrefix), ("the consumer", consumer), ("the dead-letter list", deadLetterQueue)]
        where name.contains("{") || name.contains("}") {
            throw ProcessorError(
                code: .invalidConfiguration,
                message:
                    "\(what) '\(name)' holds a brace: on a Redis Cluster the processor tags its keys with each destination's hash slot ({queue}), and a brace of its own would move them to another slot; choose a name without { and }"
            )
        }
    }

    /// Writes `jobs` to a cluster: per destination slot, in the jobs' order within it (the order that matters:
    /// per destination).
    func writeToCluster(_ jobs: [Job], consumer: String, on redis: RedisSink) async throws -> WriteOutcome {
        try checkClusterNames(consumer: consumer)
        var outcome = WriteOutcome()
        var groups: [(tag: String, jobs: [Job])] = []
        var groupOfTag: [String: Int] = [:]
        for job in jobs {
            let part = RedisHashSlot.hashedPart(of: job.destination.name)
            guard let tag = RedisHashSlot.tag(forHashedPart: part) else {
                outcome.failures.append(
                    JobFailure(
                        job: job,
                        message:
                            "\(job.destination.name) cannot be written on a Redis Cluster: the part of its name the cluster hashes holds a '}', so the processor's delivered position cannot share its slot; give the queue a hash tag ({name})",
                        permanent: true))
                continue
            }
            if let index = groupOfTag[tag] {
                groups[index].jobs.append(job)
            } else {
                groupOfTag[tag] = groups.count
                groups.append((tag, [job]))
            }
        }
        for group in groups {
            if group.jobs.contains(where: { if case .batch = $0.destination { true } else { false } }) {
                let tags = batchTagsKey(consumer: consumer)
                try await redis.command(["SADD", RedisArgument(tags), RedisArgument(group.tag)], slotOf: tags)
            }
            let part = try await write(group.jobs, keys: keys(consumer: consumer, tag: group.tag), on: redis)
            try await moveReplacedPositions(of: group.jobs, failures: part.failures, consumer: consumer, on: redis)
            outcome.add(part)
        }
        return outcome
    }

    /// A dead letter that stands in for a refused job also moves that job's destination's position (so a replay
    /// does not send it there); on a cluster that position is in another slot, so it moves after the dead letter is
    /// written (or found written before). A crash between the two replays the job: its destination refuses it
    /// again, and its dead letter is found written — nothing twice.
    private func moveReplacedPositions(of jobs: [Job], failures: [JobFailure], consumer: String, on redis: RedisSink) async throws {
        var moves: [String: [(field: String, position: [UInt8])]] = [:]
        for job in jobs {
            guard case .deadLetter(_, let replaced?) = job.destination, !failures.contains(where: { $0.job == job }),
                let tag = RedisHashSlot.tag(forHashedPart: RedisHashSlot.hashedPart(of: replaced.name))
            else { continue }
            moves[tag, default: []].append((replaced.field, job.positionBytes))
        }
        for (tag, fields) in moves.sorted(by: { $0.key < $1.key }) {
            let hash = keys(consumer: consumer, tag: tag).delivered
            let reply = try await advanceScript.evaluate(
                { sha in
                    [
                        ["EVALSHA", RedisArgument(sha), "1", RedisArgument(hash)]
                            + fields.flatMap { [RedisArgument($0.field), RedisArgument($0.position)] }
                    ]
                }, on: redis, slotOf: hash)[0]
            if case .error(let message) = reply {
                throw RedisError(code: .server, message: message, command: "EVALSHA")
            }
        }
    }

    /// Sends the due (or all) batches of every tag that has had batches.
    func flushClusterBatches(all: Bool, consumer: String, on redis: RedisSink) async throws -> WriteOutcome {
        try checkClusterNames(consumer: consumer)
        let tagsKey = batchTagsKey(consumer: consumer)
        let tags = try await redis.command(["SMEMBERS", RedisArgument(tagsKey)], slotOf: tagsKey).array?.compactMap(\.string) ?? []
        var total = WriteOutcome()
        total.knowsBatchDeadline = true
        for tag in tags.sorted() {
            total.add(try await flushBatches(all: all, keys: keys(consumer: consumer, tag: tag), on: redis))
        }
        return total
    }
}
