import Logging
import Metrics
import PGEventsPostgres
import PGEventsSystem

// One connection's life: forwarding notifications, heartbeats, the queue usage check.
extension EventListener {
    /// Forwards notifications, sends heartbeats and checks the queue until the connection is lost, stops
    /// answering heartbeats, or the task is cancelled.
    func watch(_ connection: PostgresConnection, generation: Int) async -> ConnectionEnd {
        let notifications = await connection.notifications()
        let probe = PostgresProbe(configuration: configuration.heartbeatConnection, logger: logger)
        let heartbeat = ListenerHeartbeat(generation: generation)
        let end = await withTaskGroup(of: ConnectionEnd?.self) { group in
            group.addTask { await self.forward(notifications, heartbeat: heartbeat) }
            group.addTask { await self.sendHeartbeats(through: probe, tracking: heartbeat, generation: generation) }
            if let interval = configuration.queueUsageCheckInterval {
                group.addTask {
                    await self.checkQueueUsage(through: probe, every: interval)
                    return nil
                }
            }
            var end = ConnectionEnd.cancelled
            for await result in group {
                if let result {
                    end = result
                    break
                }
            }
            group.cancelAll()
            return end
        }
        await probe.close()
        return end
    }

    private func forward(_ notifications: PostgresNotificationSequence, heartbeat: ListenerHeartbeat) async -> ConnectionEnd? {
        var iterator = notifications.makeAsyncIterator()
        do {
            while let batch = try await iterator.nextBatch() {
                var delivered = 0
                for notification in batch {
                    if notification.channel == heartbeatChannel {
                        if let roundTrip = heartbeat.echoed(notification.payload) {
                            logger.trace(
                                "heartbeat",
                                metadata: ["payload": "\(notification.payload)", "round_trip_ms": "\(roundTrip.inSeconds * 1000)"])
                        }
                    } else {
                        continuation.yield(.notification(notification))
                        delivered += 1
                    }
                }
                if delivered > 0 { notificationsReceived.increment(by: Int64(delivered)) }
            }
        } catch let error as PostgresError {
            return .lost(error)
        } catch {
            if Task.isCancelled { return nil }
            return .lost(PostgresError(code: .connectionLost, message: "\(error)"))
        }
        if Task.isCancelled { return nil }
        return .lost(PostgresError(code: .connectionClosed, message: "the listening connection was closed"))
    }

    /// Sends a heartbeat every `heartbeatInterval`; returns `.heartbeatTimedOut` as soon as one has not come
    /// back within `heartbeatTimeout`.
    private func sendHeartbeats(through probe: PostgresProbe, tracking heartbeat: ListenerHeartbeat, generation: Int) async
        -> ConnectionEnd?
    {
        let timeout = configuration.heartbeatTimeout
        var sequence = 0
        var nextSend = ContinuousClock.now
        while !Task.isCancelled {
            if let oldest = heartbeat.oldestPending, oldest + timeout <= .now {
                logger.warning(
                    "heartbeat timed out",
                    metadata: [
                        "generation": "\(generation)", "waited_seconds": "\(oldest.duration(to: .now).inSeconds)",
                        "timeout_seconds": "\(timeout.inSeconds)",
                    ])
                return .heartbeatTimedOut
            }
            if nextSend <= .now {
                sequence += 1
                let sentAt = ContinuousClock.now
                nextSend = sentAt + configuration.heartbeatInterval
                heartbeat.willSend(sequence, at: sentAt)
                if await !send(heartbeat.payload(sequence), through: probe, before: sentAt + timeout) { return nil }
            }
            let wake = min(nextSend, heartbeat.oldestPending.map { $0 + timeout } ?? nextSend)
            do { try await Task.sleep(until: wake, clock: .continuous) } catch { return nil }
        }
        return nil
    }

    /// Sends one heartbeat, retrying until `deadline` (a send can fail fast when the probe's connection was
    /// killed: the retry opens a new one). Returns false when cancelled.
    private func send(_ payload: String, through probe: PostgresProbe, before deadline: ContinuousClock.Instant) async -> Bool {
        while ContinuousClock.now < deadline {
            do {
                try await probe.notify(heartbeatChannel, payload: payload, timeout: ContinuousClock.now.duration(to: deadline))
                return true
            } catch {
                if Task.isCancelled { return false }
                logger.debug("heartbeat send failed", metadata: ["payload": "\(payload)", "error": "\(error)"])
                do { try await Task.sleep(for: .milliseconds(50)) } catch { return false }
            }
        }
        return true  // not sent in time: the echo will be missing, and the watchdog says so
    }

    private func checkQueueUsage(through probe: PostgresProbe, every interval: Duration) async {
        let threshold = configuration.queueUsageWarningThreshold
        while !Task.isCancelled {
            do {
                let usage = try await probe.query("SELECT pg_notification_queue_usage()", timeout: configuration.heartbeatTimeout).scalar(
                    Double.self)
                queueUsage.record(usage)
                if usage >= threshold {
                    logger.warning(
                        "notification queue usage above threshold", metadata: ["usage": "\(usage)", "threshold": "\(threshold)"])
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("notification queue usage check failed", metadata: ["error": "\(error)"])
            }
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }
}
