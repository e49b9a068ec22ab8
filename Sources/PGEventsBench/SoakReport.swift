import Foundation
import PGEventsSystem

/// What a `soak` run amounts to: its samples, what became of every event, and the verdict — which checks
/// failed and why. Pure: built from the figures the run collected, so that it can be checked without servers.
public struct SoakReport: Sendable, Equatable {
    /// One sample, taken every `--sample-interval` seconds while the load runs.
    public struct Sample: Sendable, Equatable {
        /// Seconds since the load started.
        public var elapsedSeconds: Double
        /// `count(*)` of `pgevents.journal`.
        public var journalRows: Int
        /// `pg_total_relation_size('pgevents.journal')`: the table, its indexes and TOAST.
        public var journalBytes: Int
        /// Redis `INFO memory` `used_memory`.
        public var redisUsedMemory: Int
        /// Redis `DBSIZE`.
        public var redisKeys: Int
        /// The resident size of the bench process (`VmRSS`), which runs the processor in-process, in MB.
        public var residentMegabytes: Double
        /// Events committed so far (good and bad).
        public var committed: Int
        /// Good events whose job reached the consumer (each counted once).
        public var delivered: Int
        /// Dead letters taken from the dead-letter list.
        public var deadLettered: Int
        /// Good events committed and not delivered yet (at the end: lost).
        public var backlog: Int
        /// Good events delivered more than once.
        public var duplicated: Int

        public init(
            elapsedSeconds: Double, journalRows: Int, journalBytes: Int, redisUsedMemory: Int, redisKeys: Int, residentMegabytes: Double,
            committed: Int, delivered: Int, deadLettered: Int, backlog: Int, duplicated: Int
        ) {
            self.elapsedSeconds = elapsedSeconds
            self.journalRows = journalRows
            self.journalBytes = journalBytes
            self.redisUsedMemory = redisUsedMemory
            self.redisKeys = redisKeys
            self.residentMegabytes = residentMegabytes
            self.committed = committed
            self.delivered = delivered
            self.deadLettered = deadLettered
            self.backlog = backlog
            self.duplicated = duplicated
        }

        /// The sample as a series point (the JSON and the HTML plots).
        public var seriesPoint: BenchResult.SeriesPoint {
            BenchResult.SeriesPoint(
                elapsedSeconds: elapsedSeconds,
                values: [
                    "journal_rows": Double(journalRows), "journal_bytes": Double(journalBytes),
                    "redis_used_memory_bytes": Double(redisUsedMemory), "redis_keys": Double(redisKeys), "rss_mb": residentMegabytes,
                    "committed": Double(committed), "delivered": Double(delivered), "dead_lettered": Double(deadLettered),
                    "backlog": Double(backlog), "duplicated": Double(duplicated),
                ])
        }
    }

    /// What became of the events, at the end of the run.
    public struct Events: Sendable, Equatable {
        /// Good events committed (valid fetch key, routed to the job list).
        public var good = 0
        /// Good events whose job reached the consumer.
        public var delivered = 0
        /// Good events committed and never delivered.
        public var lost = 0
        /// Good events delivered more than once.
        public var duplicated = 0
        /// Poison events committed (a fetch key that is not a date), and how many reached the dead-letter list.
        public var poison = 0
        public var poisonDeadLettered = 0
        /// Events routed to the key that holds a string (WRONGTYPE), and how many reached the dead-letter list.
        public var wrongType = 0
        public var wrongTypeDeadLettered = 0
        /// Jobs in the job list for an event that should have been dead-lettered.
        public var badDelivered = 0
        /// Good events that ended in the dead-letter list instead of the job list.
        public var goodDeadLettered = 0
        /// Dead letters that name no event of this run (no `"id":` in them).
        public var unidentifiedDeadLetters = 0

        public init() {}
    }

    /// How much a figure grew from the first third of the samples to the last (means of each).
    public struct Growth: Sendable, Equatable {
        public var metric: String
        public var firstThird: Double
        public var lastThird: Double
        /// (last − first) / first; against 1 when the first third is 0.
        public var fraction: Double
        public var limit: Double
        public var exceeded: Bool { fraction > limit }
    }

    /// The figures whose growth is judged, and their names.
    public static let judgedMetrics: [(name: String, value: @Sendable (Sample) -> Double)] = [
        ("journal rows", { Double($0.journalRows) }),
        ("Redis used_memory", { Double($0.redisUsedMemory) }),
        ("RSS", { $0.residentMegabytes }),
    ]

    /// The growth allowed from the first third of the samples to the last: 10%.
    public static let growthLimit = 0.10
    /// Fewer samples than this and growth is not judged (each third needs one).
    public static let minimumSamplesForGrowth = 3

    public var samples: [Sample]
    public var events: Events
    /// Why the run stopped early, if it did: the processor's error or stall (with what it logged last), or a
    /// part of the bench that failed — in words that name which.
    public var runFailure: String?
    /// Whether poison events (and the WRONGTYPE rule) were part of the run.
    public var poisonEnabled: Bool

    public init(samples: [Sample], events: Events, runFailure: String?, poisonEnabled: Bool) {
        self.samples = samples
        self.events = events
        self.runFailure = runFailure
        self.poisonEnabled = poisonEnabled
    }

    /// The growth of each judged figure; empty with fewer than `minimumSamplesForGrowth` samples.
    public var growth: [Growth] {
        guard samples.count >= Self.minimumSamplesForGrowth else { return [] }
        let third = samples.count / 3
        let first = samples.prefix(third)
        let last = samples.suffix(third)
        return Self.judgedMetrics.map { metric in
            let before = first.map(metric.value).reduce(0, +) / Double(first.count)
            let after = last.map(metric.value).reduce(0, +) / Double(last.count)
            return Growth(
                metric: metric.name, firstThird: before, lastThird: after, fraction: (after - before) / max(before, 1),
                limit: Self.growthLimit)
        }
    }

    /// Every check that failed, in words; empty when the run passed.
    public var failures: [String] {
        var failures: [String] = []
        if let runFailure { failures.append(runFailure) }
        if events.lost > 0 { failures.append("\(events.lost) of \(events.good) good events lost (never delivered)") }
        if events.duplicated > 0 { failures.append("\(events.duplicated) good events delivered more than once") }
        if events.goodDeadLettered > 0 { failures.append("\(events.goodDeadLettered) good events dead-lettered") }
        if events.poisonDeadLettered < events.poison {
            failures.append(
                "\(events.poison - events.poisonDeadLettered) of \(events.poison) poison events (fetch key not a date) not dead-lettered")
        }
        if events.wrongTypeDeadLettered < events.wrongType {
            failures.append(
                "\(events.wrongType - events.wrongTypeDeadLettered) of \(events.wrongType) WRONGTYPE events (queue key holding a string) not dead-lettered"
            )
        }
        if events.badDelivered > 0 {
            failures.append("\(events.badDelivered) jobs delivered for events that should have been dead-lettered")
        }
        for growth in growth where growth.exceeded {
            failures.append(
                String(
                    format: "%@ grew %+.1f%% from the first third of the samples to the last (limit %.0f%%)",
                    growth.metric, growth.fraction * 100, growth.limit * 100))
        }
        return failures
    }

    /// Whether every check passed.
    public var passed: Bool { failures.isEmpty }

    // MARK: Text

    /// The samples as a table, then the growth of each judged figure, the events' fate and the verdict.
    public func table(rate: Double, duration: Double, sampleInterval: Double, poisonEvery: Int) -> String {
        var lines: [String] = []
        let poison =
            poisonEvery > 0
            ? "a poison event (fetch key not a date) and a WRONGTYPE event every \(poisonEvery)"
            : "no poison events (--poison-every 0)"
        lines.append(String(format: "soak: %.0f events/s for %.0f s, %@, sampled every %.0f s", rate, duration, poison, sampleInterval))
        lines.append(
            "RSS is the bench process's own: the processor runs in it, with the writer, the consumer and the ledger (reserved up front).")
        lines.append("backlog: good events committed and not delivered yet (at the end of the run: lost).")
        lines.append("     t s  journal rows  journal MB  redis MB  redis keys   RSS MB   committed   delivered    dead   backlog   dup")
        for sample in samples {
            lines.append(
                String(
                    format: "%8.0f %13d %11.1f %9.1f %11d %8.1f %11d %11d %7d %9d %5d",
                    sample.elapsedSeconds, sample.journalRows, Double(sample.journalBytes) / 1_048_576,
                    Double(sample.redisUsedMemory) / 1_048_576, sample.redisKeys, sample.residentMegabytes,
                    sample.committed, sample.delivered, sample.deadLettered, sample.backlog, sample.duplicated))
        }
        if samples.isEmpty { lines.append("   (no samples: the run ended before the first sample interval)") }
        let growth = growth
        if growth.isEmpty {
            lines.append("growth: not judged (\(samples.count) samples; at least \(Self.minimumSamplesForGrowth) are needed)")
        }
        for item in growth {
            lines.append(
                String(
                    format: "growth of %@: %@ (first third, mean) → %@ (last third): %+.1f%% (limit %.0f%%)%@",
                    item.metric, BenchComparison.figure(item.firstThird), BenchComparison.figure(item.lastThird),
                    item.fraction * 100, item.limit * 100, item.exceeded ? "  EXCEEDED" : ""))
        }
        var fate = "events: \(events.good) good, \(events.delivered) delivered, \(events.lost) lost, \(events.duplicated) duplicated"
        if poisonEnabled {
            fate +=
                "; poison \(events.poisonDeadLettered)/\(events.poison) dead-lettered; WRONGTYPE \(events.wrongTypeDeadLettered)/\(events.wrongType) dead-lettered"
        }
        if events.badDelivered > 0 { fate += "; \(events.badDelivered) bad events delivered as jobs" }
        if events.unidentifiedDeadLetters > 0 { fate += "; \(events.unidentifiedDeadLetters) dead letters naming no event" }
        lines.append(fate)
        let failures = failures
        if failures.isEmpty {
            lines.append("PASSED")
        } else {
            lines.append("FAILED:")
            lines += failures.map { "  - " + TextExcerpt.excerpt($0, limit: 400) }
        }
        return lines.joined(separator: "\n")
    }
}
