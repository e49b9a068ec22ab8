import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import PGEventsSystem
import Synchronization

/// `replication`: a `ReplicationPair` of throwaway clusters (always: it needs two servers it can configure,
/// so it ignores `databaseURL`), a table `ticks` published and subscribed; on the subscriber an `ENABLE
/// ALWAYS` row trigger sends `pg_notify('ticks', id)`. Four writers insert single rows on the publisher on
/// an open-loop schedule at `rate` for `duration` (default 5 s); a listener on the subscriber receives the
/// notifications. Stage `commit→notified`: the publisher's commit acknowledged → the subscriber's
/// notification received; each notification is checked off in the ledger by its id.
extension ScenarioBench {
    func runReplication(progress: @escaping @Sendable (Progress) -> Void) async throws -> BenchResult {
        let started = Date()
        let rate = options.rate
        let duration = options.duration ?? 5
        let total = max(1, Int((rate * duration).rounded()))
        let setupStart = ContinuousClock.now
        let pair = try await ReplicationPair.start(logger: logger)
        do {
            let table = "CREATE TABLE public.ticks (id bigserial PRIMARY KEY, body text NOT NULL DEFAULT '')"
            let publisherSetup = try await pair.publisherDatabase.connect()
            try await publisherSetup.execute(table)
            await publisherSetup.close()
            let subscriberSetup = try await pair.subscriberDatabase.connect()
            try await subscriberSetup.execute(
                table + """
                    ;
                    CREATE FUNCTION public.notify_tick() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN PERFORM pg_notify('ticks', NEW.id::text); RETURN NULL; END $$;
                    CREATE TRIGGER ticks_notify AFTER INSERT ON public.ticks FOR EACH ROW EXECUTE FUNCTION public.notify_tick();
                    ALTER TABLE public.ticks ENABLE ALWAYS TRIGGER ticks_notify;
                    """)
            await subscriberSetup.close()
            try await pair.publish("ticks_pub", tables: [.init(QualifiedName(schema: "public", name: "ticks"))])
            try await pair.subscribe("ticks_sub", to: "ticks_pub")
            let setupSeconds = (ContinuousClock.now - setupStart).inSeconds

            let records = StageRecords()
            let ledger = EventLedger()
            let listener = try await pair.subscriberDatabase.connect()
            try await listener.listen("ticks")
            let received = SharedCounter()
            let listening = Task {
                var iterator = await listener.notifications().makeAsyncIterator()
                while !Task.isCancelled, let batch = try await iterator.nextBatch() {
                    for notification in batch {
                        guard let id = Int64(notification.payload) else { continue }
                        records.set(.notified, id, Int64(notification.receivedAt.timeIntervalSince1970 * 1e9))
                        ledger.delivered(id)
                    }
                    received.value.add(batch.count, ordering: .relaxed)
                }
            }
            let next = SharedCounter()
            let writeStart = ContinuousClock.now
            let writers: [[Int64]]
            do {
                writers = try await withThrowingTaskGroup(of: [Int64].self) { group in
                    for _ in 0..<4 {
                        group.addTask {
                            let connection = try await pair.publisherDatabase.connect()
                            var ids: [Int64] = []
                            while true {
                                let index = next.next()
                                guard index < total else { break }
                                try await Task.sleep(
                                    until: writeStart + .nanoseconds(Int64(Double(index) / rate * 1e9)), clock: .continuous)
                                if index % 100 == 0 {
                                    progress(
                                        Progress(
                                            scenario: "replication", fraction: Double(index) / Double(total),
                                            message: "\(index) of \(total) rows"))
                                }
                                let id = try await connection.query("INSERT INTO public.ticks DEFAULT VALUES RETURNING id").scalar(
                                    Int64.self)
                                records.set(.committed, id, benchWallNanoseconds())
                                ids.append(id)
                            }
                            await connection.close()
                            return ids
                        }
                    }
                    var all: [[Int64]] = []
                    for try await ids in group { all.append(ids) }
                    return all
                }
            } catch {
                listening.cancel()
                await listener.close()
                throw error
            }
            let ids = writers.flatMap { $0 }
            ledger.setCommitted(ids)
            let deadline = ContinuousClock.now + .seconds(30)
            while !ledger.allDelivered(ids), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            try await Task.sleep(for: .milliseconds(200))
            let seconds = (ContinuousClock.now - writeStart).inSeconds
            listening.cancel()
            await listener.close()
            let report = StageReport(records.snapshot(), ids: ids)
            let summary = ledger.summary
            let stage = report.stages["commit→notified"]
            await pair.shutdown()
            return result(
                "replication", servers: (pair.publisher.binaries.version, "-"), started: started, events: ids.count, duration: seconds,
                eventsPerSecond: Double(summary.delivered) / max(seconds, 1e-9), latency: stage?.latency,
                stages: report.latencies.filter { $0.key == "commit→notified" }, lost: summary.lost.count,
                duplicated: summary.duplicated.count,
                extra: [
                    "setup_s": setupSeconds, "rate": rate, "clamped_intervals": Double(stage?.clamped ?? 0),
                    "unexpected": Double(summary.unexpected.count),
                ],
                note: "publisher commit acknowledged → notification from the subscriber's ENABLE ALWAYS trigger (no processor, no Redis)",
                settings: ["rate": String(rate), "duration_s": String(duration), "writers": "4", "servers": "throwaway pair"],
                distribution: stage?.distribution)
        } catch {
            await pair.shutdown()
            throw error
        }
    }
}
