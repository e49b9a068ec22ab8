public import Logging
import Metrics
public import PGEventsPostgres
public import PGEventsSystem

/// Events from the write-ahead log, through a logical replication slot (`source: wal`): the row changes of a
/// publication's tables, with no trigger at all, and the messages of `pgevents.emit_wal(channel, payload)`.
///
/// **Channels.** A table's changes arrive on the channel `schema.table` (payload: ``WalChangeEncoder``); a message
/// on the channel it was emitted on. Only configured channels are delivered; the others are skipped.
///
/// **Exactly once into Redis.** An event's position is its transaction's commit LSN and its index in the
/// transaction; the writer's delivered positions (per destination) make a replay push nothing twice. The slot's
/// confirmed position moves (a standby status update) only when a chunk is acknowledged, that is after Redis took
/// it; a restart resumes from there. The key space is `<consumer>:<system identifier>:<slot>`, so two databases never
/// share positions.
///
/// **One reader.** The stream starts only once the delivery holds the consumer's leader lock; a standby waits for
/// the lock, as with the journal. If a slot is still streamed by a process that is going away, the start is retried.
public actor WalSource: EventSource {
    public nonisolated let name: String
    public nonisolated let slot: String
    public nonisolated let publication: String
    /// Deliver `pgevents.emit_wal` messages (pgoutput's `messages` option).
    public nonisolated let messages: Bool
    /// At most one standby status update per this interval (``WalStream``); zero: one per acknowledged chunk.
    public nonisolated let statusInterval: Duration
    /// The channels to deliver: `schema.table` for changes, message channels as emitted.
    public nonisolated let channels: Set<String>
    private let logger: Logger

    /// The prefix of pgevents' WAL messages; the channel follows it.
    static let messagePrefix = "pgevents:"

    private var replication: PostgresConfiguration?
    private var stream: WalStream?
    /// The LSN acknowledged as delivered (or the slot's confirmed position at start); the stream sends it to the slot
    /// at most once per `statusInterval`.
    private var confirmed: LogSequenceNumber = .zero
    /// The last event handed out by `next`, and the last one acknowledged: when they differ at a fresh `next`, what
    /// was handed out in between was not delivered, and the stream starts again from the slot.
    private var handedOut: EventPosition?
    private var acknowledged: EventPosition?
    private var lastLagCheck: ContinuousClock.Instant?
    /// Signals each stream opened to ``waitForEvents()`` (at most one pending; cancellation ends the wait).
    private let streamOpened: AsyncStream<Void>
    private let streamOpenedSignal: AsyncStream<Void>.Continuation
    private let lag: Gauge

    private struct EventPosition: Equatable {
        var batch: Int64
        var seq: Int64
        init?(_ event: SourceEvent?) {
            guard let event else { return nil }
            batch = event.batch
            seq = event.seq
        }
    }

    /// Whether a chunk is handed out only once its transactions are visible to new snapshots (``WalVisibility``):
    /// needed when the pipeline looks rows up.
    public nonisolated let waitsForVisibility: Bool
    /// The thread the replication connection runs on (the delivery's, ``EventDelivery/Configuration/executor``);
    /// nil: a thread of its own.
    public nonisolated let executor: ThreadExecutor?

    public init(
        name: String, slot: String, publication: String, messages: Bool = true, statusInterval: Duration = .milliseconds(100),
        channels: Set<String>, waitsForVisibility: Bool = false, executor: ThreadExecutor? = nil, logger: Logger
    ) {
        self.name = name
        self.statusInterval = statusInterval
        self.executor = executor
        self.waitsForVisibility = waitsForVisibility
        self.slot = slot
        self.publication = publication
        self.messages = messages
        self.channels = channels
        self.logger = logger
        lag = Gauge(label: "pgevents_wal_slot_lag_bytes", dimensions: [("consumer", name), ("slot", slot)])
        (streamOpened, streamOpenedSignal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Checks the server's settings, the slot and the publication (each missing piece is named with its fix), and
    /// returns the instance id `<system identifier>:<slot>`. Any stream of an earlier connection is closed.
    public func prepare(on connection: PostgresConnection, fromStart: Bool) async throws -> String {
        await closeStream()
        let state = try await WalSetup.check(on: connection, slot: slot, publication: publication, channels: channels, logger: logger)
        confirmed = max(confirmed, state.confirmed)
        var replication = connection.configuration
        replication["replication"] = "database"
        replication["application_name"] = "pgevents-wal"
        self.replication = replication
        // The replication connection itself: the role's REPLICATION attribute and pg_hba are checked here, at start.
        let identity = try await WalSetup.identifySystem(replication, logger: logger)
        return "\(identity):\(slot)"
    }

    /// Reads after each delivery, not during it (``EventSource/readsAhead``): a read during the delivery would find
    /// only what arrived in the microseconds since the last one.
    public nonisolated var readsAhead: Bool { false }

    public func next(on connection: PostgresConnection, limit: Int, maxBytes: Int, after: EventChunk?) async throws -> EventChunk {
        if after == nil, handedOut != acknowledged {
            // What was read after the last acknowledged event was not delivered: read it again.
            await closeStream()
        }
        let stream = try await openStream()
        let read = try await stream.read(limit: limit, maxBytes: maxBytes)
        if waitsForVisibility { try await WalVisibility.waitUntilVisible(read.transactionIDs, on: connection, logger: logger) }
        if let last = EventPosition(read.events.last) { handedOut = last }
        return EventChunk(events: read.events, completesBatch: read.drained, position: Int64(bitPattern: read.position.rawValue))
    }

    public func ack(_ chunk: EventChunk, on connection: PostgresConnection) async throws {
        if let last = EventPosition(chunk.events.last) { acknowledged = last }
        let position = LogSequenceNumber(rawValue: UInt64(bitPattern: chunk.position))
        // Every acknowledgement, an idle one too: the stream sends what it held back once its interval has passed.
        confirmed = max(confirmed, position)
        try await stream?.confirm(confirmed)
        let now = ContinuousClock.now
        if lastLagCheck.map({ now - $0 >= .seconds(10) }) ?? true {
            lastLagCheck = now
            try await checkLag(on: connection)
        }
    }

    /// Returns when the stream has something to read (or ended), or, while no stream is open (at start, after a
    /// reconnect, on a standby), when one opens. The processor drains after each return.
    public func waitForEvents() async {
        guard let stream else {
            // Sleeping here instead held back everything committed in the first second of a stream: the drain that
            // opened it found nothing yet, and nothing watched its socket until the sleep ended.
            var opened = false
            for await _ in streamOpened {
                opened = true
                break
            }
            // A cancelled wait ends the signal for good: never spin on it.
            if !opened { try? await Task.sleep(for: .seconds(1)) }
            return
        }
        do {
            try await stream.waitForData()
        } catch is CancellationError {
            return
        } catch {
            // The stream broke; the delivery finds out on its next read and starts a new one.
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Stops streaming (the slot is free for another process).
    public func close() async {
        await closeStream()
    }

    private func closeStream() async {
        guard let stream else { return }
        self.stream = nil
        handedOut = acknowledged
        // What was delivered reaches the slot before the stream ends (a lost connection takes nothing more).
        if stream.connection.isUsable { try? await stream.flushConfirmation() }
        await stream.close()
    }

    private func openStream() async throws -> WalStream {
        if let stream {
            if stream.connection.isUsable { return stream }
            // The WAL sender went away (terminated, restarted) while the worker connection stayed: a new stream
            // starts again from the confirmed position. Reusing the lost one retried its error for ever.
            await closeStream()
        }
        guard let replication else {
            throw ProcessorError(code: .invalidConfiguration, message: "the WAL source was used before prepare(on:fromStart:)")
        }
        let connection = try await WalSetup.startStreaming(
            replication, slot: slot, publication: publication, messages: messages, executor: executor, logger: logger)
        let stream = WalStream(
            connection: connection, confirmed: confirmed, confirmInterval: statusInterval, channels: channels, messages: messages,
            logger: logger)
        // A position confirmed while no stream was open (the last acknowledgement before a reconnect) reaches the
        // slot now.
        try await stream.sendStatusUpdate()
        self.stream = stream
        streamOpenedSignal.yield()
        logger.info(
            "streaming the replication slot", metadata: ["slot": "\(slot)", "publication": "\(publication)", "from": "\(confirmed)"])
        return stream
    }

    /// Records the slot's lag (WAL the server keeps for it, in bytes) and stops on a slot the server invalidated.
    private func checkLag(on connection: PostgresConnection) async throws {
        guard
            let row = try await connection.query(
                """
                SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::int8, coalesce(wal_status, '')
                  FROM pg_replication_slots WHERE slot_name = $1
                """, [slot]
            ).first
        else {
            throw WalSetup.slotMissing(slot)
        }
        let bytes = try row.decode(Int.self, at: 0)
        let status = try row.decode(String.self, at: 1)
        lag.record(bytes)
        if status == "lost" { throw WalSetup.slotInvalidated(slot) }
        if bytes > 1 << 30 {
            logger.warning(
                "the replication slot keeps more than 1 GiB of WAL: delivery is behind",
                metadata: ["slot": "\(slot)", "lag_bytes": "\(bytes)", "wal_status": "\(status)"])
        } else {
            logger.debug("replication slot lag", metadata: ["slot": "\(slot)", "lag_bytes": "\(bytes)", "wal_status": "\(status)"])
        }
    }
}
