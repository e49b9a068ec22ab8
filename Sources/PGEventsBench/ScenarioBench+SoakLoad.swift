import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Synchronization

/// The parts of a `soak` run (see `ScenarioBench+Soak.swift`): the writer at a constant rate, the consumer of
/// jobs and dead letters, and the sampler of what must not grow.
extension ScenarioBench {
    /// `the processor stalled: nothing reached the consumer for 30 s (the last job 0.4 s into the load) while 9,000
    /// events waited; its last warning: …`
    static func stallMessage(
        _ stall: (waiting: Int, since: ContinuousClock.Instant), timeout: Double, loadStart: ContinuousClock.Instant, logs: BenchLogs
    ) -> String {
        let since = (stall.since - loadStart).inSeconds
        return "the processor stalled: nothing reached the consumer for \(Int(timeout)) s or more"
            + (since > 0 ? String(format: " (the last job or dead letter %.1f s into the load)", since) : " (none since the load started)")
            + " while \(stall.waiting) events waited"
            + (logs.lastWarning.map { "; its last warning: \($0)" } ?? "; it logged no warning")
    }

    /// Days of 2026 as `YYYY-MM-DD`, the keys of `soak_days`.
    static let soakDays: [String] = {
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return lengths.enumerated().flatMap { month, days in
            (1...days).map { "2026-" + String(month + 1).leftPadded(to: 2) + "-" + String($0).leftPadded(to: 2) }
        }
    }()

    /// Commits the due events every 10 ms in one INSERT (rate × elapsed − sent, at most a second's worth), until stopped.
    static func soakWrite(database: BenchDatabase, rate: Double, poisonEvery: Int, start: ContinuousClock.Instant, run: SoakRun) async {
        let connection: PostgresConnection
        do {
            connection = try await database.connect()
        } catch {
            run.fail("the bench's writer cannot connect: \(error)")
            return
        }
        var sent = 0
        while !run.stopWriting.load(ordering: .acquiring), !Task.isCancelled {
            let due = min(Int((ContinuousClock.now - start).inSeconds * rate) - sent, max(1, Int(rate)))
            if due <= 0 {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            var days: [String] = []
            var kinds: [String] = []
            days.reserveCapacity(due)
            kinds.reserveCapacity(due)
            for index in (sent + 1)...(sent + due) {
                let kind = SoakEventKind.of(index: index, poisonEvery: poisonEvery)
                kinds.append(kind.rawValue)
                days.append(kind == .poison ? "not-a-date" : soakDays[index % soakDays.count])
            }
            do {
                let rows = try await connection.query(
                    "INSERT INTO public.soak_events (day, kind) SELECT * FROM unnest($1::text[], $2::text[]) RETURNING id, kind",
                    [textArray(days), textArray(kinds)])
                for row in rows {
                    let id = try row.decode(Int64.self, at: 0)
                    switch SoakEventKind(rawValue: try row.decode(String.self, at: 1)) {
                    case .good: run.ledger.committed(id)
                    case .poison: run.bad.withLock { _ = $0.poison.insert(id) }
                    case .wrongType: run.bad.withLock { _ = $0.wrongType.insert(id) }
                    case nil: run.writeErrors.add(1, ordering: .relaxed)
                    }
                }
            } catch {
                run.writeErrors.add(1, ordering: .relaxed)
                run.fail("the bench's writer failed: \(error)")
                break
            }
            sent += due
            run.committed.store(sent, ordering: .relaxed)
            try? await Task.sleep(for: .milliseconds(10))
        }
        await connection.close()
    }

    /// `{"a","b"}`: a text[] literal, every element quoted.
    static func textArray(_ values: [String]) -> String {
        "{"
            + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }

    /// Takes jobs and dead letters (`BRPOP` on both lists, then `RPOP … 1000` on each while they hold more) until the run stops.
    static func soakConsume(jobs: String, dead: String, redis: RedisConfiguration, run: SoakRun) async {
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(redis)
        } catch {
            run.fail("the bench's consumer cannot connect to Redis: \(error)")
            return
        }
        do {
            while !run.stopping.load(ordering: .acquiring), !Task.isCancelled {
                let reply = try await connection.command("BRPOP", RedisArgument(jobs), RedisArgument(dead), "0.1")
                guard let pair = reply.array, pair.count == 2, let key = pair[0].string, let first = pair[1].bytes else { continue }
                take(key == dead, [first])
                for (list, isDead) in [(jobs, false), (dead, true)] {
                    while true {
                        let more = try await connection.command("RPOP", RedisArgument(list), "1000")
                        guard let elements = more.array, !elements.isEmpty else { break }
                        take(isDead, elements.compactMap(\.bytes))
                        if elements.count < 1000 { break }
                    }
                }
            }
        } catch {
            if !run.stopping.load(ordering: .acquiring) { run.fail("the bench's consumer failed: \(error)") }
        }
        await connection.close()

        func take(_ isDead: Bool, _ items: [[UInt8]]) {
            for item in items {
                if isDead {
                    run.deadCount.add(1, ordering: .relaxed)
                    if let id = deadLetterRowID(item) {
                        run.dead.withLock { $0[id, default: 0] += 1 }
                    } else {
                        run.unidentifiedDead.add(1, ordering: .relaxed)
                    }
                } else if let id = rowID(in: item), id > 0 {
                    run.ledger.delivered(id)
                } else {
                    run.unreadableJobs.add(1, ordering: .relaxed)
                }
            }
            run.noteProgress()
        }
    }

    /// The row id a dead letter is about: the `"id":` in its `payload` (the journal event's JSON, as the processor
    /// writes dead letters: `{"reason", "channel", "seq", "created_at", "dead_at", "payload"}`), else in any of its
    /// string values (a job), else anywhere in it; nil when there is none.
    static func deadLetterRowID(_ bytes: [UInt8]) -> Int64? {
        if let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] {
            if let payload = object["payload"] as? String, let id = rowID(in: Array(payload.utf8)) { return id }
            for key in object.keys.sorted() {
                if let text = object[key] as? String, let id = rowID(in: Array(text.utf8)) { return id }
                if let nested = object[key] as? [String: Any], let number = nested["id"] as? NSNumber { return number.int64Value }
            }
        }
        return rowID(in: bytes)
    }

    /// Samples every `interval` seconds from `start` until the load is over.
    static func soakSample(
        database: BenchDatabase, redis: RedisConfiguration, interval: Double, start: ContinuousClock.Instant, run: SoakRun
    ) async {
        let postgres: PostgresConnection
        let cache: RedisConnection
        do {
            postgres = try await database.connect()
        } catch {
            run.fail("the bench's sampler cannot connect to PostgreSQL: \(error)")
            return
        }
        do {
            cache = try await RedisConnection.connect(redis)
        } catch {
            await postgres.close()
            run.fail("the bench's sampler cannot connect to Redis: \(error)")
            return
        }
        var number = 1
        sampling: while !run.stopWriting.load(ordering: .acquiring), !Task.isCancelled {
            let due = start + .milliseconds(Int64(Double(number) * interval * 1000))
            while ContinuousClock.now < due {
                if run.stopWriting.load(ordering: .acquiring) || Task.isCancelled { break sampling }
                try? await Task.sleep(for: min(.milliseconds(100), due - ContinuousClock.now))
            }
            do {
                // The resident size first, before the bench itself allocates anything for the sample.
                let resident = residentMegabytes() ?? 0
                let journal = try await postgres.query("SELECT count(*), pg_total_relation_size('pgevents.journal') FROM pgevents.journal")
                let row = try journal.first.unwrapOrThrow("no row from count(*)")
                let journalRows = Int(try row.decode(Int64.self, at: 0))
                let journalBytes = Int(try row.decode(Int64.self, at: 1))
                let info = try await cache.command("INFO", "memory").string ?? ""
                let usedMemory =
                    info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
                    .flatMap { Int($0.dropFirst("used_memory:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                let keys = Int(try await cache.command("DBSIZE").integer ?? 0)
                let good = run.ledger.committedCount
                let delivered = run.ledger.deliveredCount
                run.samples.withLock {
                    $0.append(
                        SoakReport.Sample(
                            elapsedSeconds: (ContinuousClock.now - start).inSeconds, journalRows: journalRows,
                            journalBytes: journalBytes, redisUsedMemory: usedMemory, redisKeys: keys, residentMegabytes: resident,
                            committed: run.committed.load(ordering: .relaxed), delivered: delivered,
                            deadLettered: run.deadCount.load(ordering: .relaxed),
                            backlog: max(0, good - delivered), duplicated: run.ledger.duplicatedCount))
                }
            } catch {
                run.fail("the bench's sampler failed: \(error)")
                break
            }
            number += 1
        }
        await postgres.close()
        await cache.close()
    }
}

extension Optional {
    fileprivate func unwrapOrThrow(_ message: String) throws -> Wrapped {
        guard let self else { throw HarnessError(code: .commandFailed, message: "pgevents bench soak: \(message)") }
        return self
    }
}
