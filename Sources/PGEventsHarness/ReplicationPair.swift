import Foundation
public import Logging
import PGEventsPostgres
import Synchronization

/// Two throwaway clusters joined by logical replication: a publisher and a subscriber, each with a database
/// of its own, for testing what happens to rows that arrive through the apply worker (seed 000's trap: an
/// ordinary trigger never fires for them; only `ENABLE ALWAYS` or `ENABLE REPLICA` triggers do).
///
/// ```swift
/// let pair = try await ReplicationPair.start()
/// try await pair.publisherDatabase.connect().execute(schema)     // both sides need the table
/// try await pair.subscriberDatabase.connect().execute(schema + trigger)
/// try await pair.publish("events_pub", tables: [.init(QualifiedName(schema: "public", name: "events"))])
/// try await pair.subscribe("events_sub", to: "events_pub")       // returns when the initial copy is done
/// … insert on the publisher …
/// try await pair.waitForCatchUp()                                  // everything committed is applied
/// await pair.shutdown()                                            // drops the subscription (and its slot)
/// ```
public final class ReplicationPair: Sendable {
    public let publisher: TemporaryPostgres
    public let subscriber: TemporaryPostgres
    public let publisherDatabase: TemporaryDatabase
    public let subscriberDatabase: TemporaryDatabase
    private let logger: Logger
    private let subscriptions = SubscriptionNames()

    /// A published table, with an optional column list (PostgreSQL 15+).
    public struct PublishedTable: Sendable, Hashable {
        public var table: QualifiedName
        public var columns: [String]?

        public init(_ table: QualifiedName, columns: [String]? = nil) {
            self.table = table
            self.columns = columns
        }
    }

    /// `CREATE SUBSCRIPTION … WITH (…)` options. Those the subscriber's version does not know are refused
    /// with the version that introduced them.
    public struct SubscriptionOptions: Sendable, Hashable {
        public var copyData = true
        public var createSlot = true
        public var slotName: String?
        public var binary: Bool?
        public var streaming: Bool?
        /// PostgreSQL 15+.
        public var disableOnError: Bool?
        /// PostgreSQL 16+.
        public var runAsOwner: Bool?
        /// PostgreSQL 16+.
        public var passwordRequired: Bool?
        /// PostgreSQL 16+: `any` or `none`.
        public var origin: String?
        /// PostgreSQL 17+.
        public var failover: Bool?

        public init() {}

        /// The `WITH (…)` list for a subscriber of `majorVersion`.
        func clause(majorVersion: Int, version: String) throws -> String {
            var items = ["copy_data = \(copyData)", "create_slot = \(createSlot)"]
            if let slotName { items.append("slot_name = \(PostgresIdentifier.literal(slotName))") }
            func add(_ name: String, _ value: String?, since: Int) throws {
                guard let value else { return }
                guard majorVersion >= since else {
                    throw HarnessError(
                        code: .invalidInput,
                        message: "subscription option \(name) needs PostgreSQL \(since) or newer; the subscriber runs \(version)",
                        hint: "leave \(name) out, or run the subscriber on PostgreSQL \(since)+ (Configuration(binDirectory:))")
                }
                items.append("\(name) = \(value)")
            }
            try add("binary", binary.map(String.init), since: 14)
            try add("streaming", streaming.map(String.init), since: 14)
            try add("disable_on_error", disableOnError.map(String.init), since: 15)
            try add("run_as_owner", runAsOwner.map(String.init), since: 16)
            try add("password_required", passwordRequired.map(String.init), since: 16)
            try add("origin", origin.map(PostgresIdentifier.literal), since: 16)
            try add("failover", failover.map(String.init), since: 17)
            return items.joined(separator: ", ")
        }
    }

    private init(
        publisher: TemporaryPostgres, subscriber: TemporaryPostgres, publisherDatabase: TemporaryDatabase,
        subscriberDatabase: TemporaryDatabase, logger: Logger
    ) {
        self.publisher = publisher
        self.subscriber = subscriber
        self.publisherDatabase = publisherDatabase
        self.subscriberDatabase = subscriberDatabase
        self.logger = logger
    }

    /// The settings a subscriber needs for `subscriptions` subscriptions (one apply worker each, plus table
    /// sync workers during the initial copy). On defaults a fourth subscription waits for a worker slot.
    public static func subscriberSettings(subscriptions: Int = 8) -> [String: String] {
        let workers = subscriptions * 2 + 2
        return [
            "max_logical_replication_workers": String(workers),
            "max_worker_processes": String(workers + 8),
            "max_sync_workers_per_subscription": "2",
            "max_replication_slots": String(subscriptions + 4),
        ]
    }

    /// The publisher's: a WAL sender and a slot per subscription, plus the table sync slots.
    public static func publisherSettings(subscriptions: Int = 8) -> [String: String] {
        ["max_wal_senders": String(subscriptions * 3 + 4), "max_replication_slots": String(subscriptions * 3 + 4), "wal_level": "logical"]
    }

    /// Starts both clusters (sized for `subscriptions` subscriptions) and creates a database on each.
    public static func start(
        publisher: TemporaryPostgres.Configuration = .init(), subscriber: TemporaryPostgres.Configuration = .init(),
        subscriptions: Int = 8, logger: Logger = TemporaryPostgres.defaultLogger
    ) async throws -> ReplicationPair {
        var publisherConfiguration = publisher
        var subscriberConfiguration = subscriber
        for (name, value) in publisherSettings(subscriptions: subscriptions) where publisherConfiguration.settings[name] == nil {
            publisherConfiguration.settings[name] = value
        }
        for (name, value) in subscriberSettings(subscriptions: subscriptions) where subscriberConfiguration.settings[name] == nil {
            subscriberConfiguration.settings[name] = value
        }
        async let startedPublisher = TemporaryPostgres.start(publisherConfiguration, logger: logger)
        async let startedSubscriber = TemporaryPostgres.start(subscriberConfiguration, logger: logger)
        let servers: (TemporaryPostgres, TemporaryPostgres)
        do {
            servers = try await (startedPublisher, startedSubscriber)
        } catch {
            // One of them may have started: stop it (the other's error is the one to report).
            if let server = try? await startedPublisher { await server.shutdown() }
            if let server = try? await startedSubscriber { await server.shutdown() }
            throw error
        }
        do {
            let publisherDatabase = try await servers.0.makeDatabase()
            let subscriberDatabase = try await servers.1.makeDatabase()
            return ReplicationPair(
                publisher: servers.0, subscriber: servers.1, publisherDatabase: publisherDatabase, subscriberDatabase: subscriberDatabase,
                logger: logger)
        } catch {
            await servers.0.shutdown()
            await servers.1.shutdown()
            throw error
        }
    }

    /// `CREATE PUBLICATION name FOR TABLE …` on the publisher's database.
    public func publish(_ name: String, tables: [PublishedTable]) async throws {
        guard !tables.isEmpty else { throw HarnessError(code: .invalidInput, message: "publication \(name): name at least one table") }
        let list = tables.map { table in
            let quoted = "\(PostgresIdentifier.quote(table.table.schema)).\(PostgresIdentifier.quote(table.table.name))"
            guard let columns = table.columns else { return quoted }
            return "\(quoted) (\(columns.map(PostgresIdentifier.quote).joined(separator: ", ")))"
        }.joined(separator: ", ")
        if tables.contains(where: { $0.columns != nil }), publisher.binaries.majorVersion < 15 {
            throw HarnessError(
                code: .invalidInput,
                message: "publication column lists need PostgreSQL 15 or newer; the publisher runs \(publisher.binaries.version)")
        }
        try await publisherDatabase.withConnection { connection in
            try await connection.execute("CREATE PUBLICATION \(PostgresIdentifier.quote(name)) FOR TABLE \(list)")
        }
    }

    /// The connection string the subscriber uses to reach the publisher (TCP on 127.0.0.1, with its password).
    public var publisherConnectionString: String {
        "host=127.0.0.1 port=\(publisher.port) user=\(publisher.superuser) password=\(publisher.password) dbname=\(publisherDatabase.name)"
    }

    /// `CREATE SUBSCRIPTION` on the subscriber; returns when every table's initial copy is done (`ready`), so
    /// that rows inserted afterwards arrive through the apply worker, not through the copy.
    public func subscribe(_ name: String, to publication: String, options: SubscriptionOptions = .init(), timeoutSeconds: Double = 30)
        async throws
    {
        let clause = try options.clause(majorVersion: subscriber.binaries.majorVersion, version: subscriber.binaries.version)
        try await subscriberDatabase.withConnection { connection in
            try await connection.execute(
                """
                CREATE SUBSCRIPTION \(PostgresIdentifier.quote(name)) CONNECTION \(PostgresIdentifier.literal(publisherConnectionString)) \
                PUBLICATION \(PostgresIdentifier.quote(publication)) WITH (\(clause))
                """)
            subscriptions.add(name)
            try await waitUntilReady(name, on: connection, timeoutSeconds: timeoutSeconds)
        }
    }

    /// Waits until every table of subscription `name` has finished its initial copy.
    private func waitUntilReady(_ name: String, on connection: PostgresConnection, timeoutSeconds: Double) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutSeconds * 1000))
        while true {
            let row = try await connection.query(
                """
                SELECT count(*)::int, count(*) FILTER (WHERE sr.srsubstate <> 'r')::int,
                       string_agg(sr.srrelid::regclass::text || ' ' || sr.srsubstate::text, ', ')
                  FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid WHERE s.subname = $1
                """, [name])
            if let first = row.first, try first.decode(Int.self, at: 0) > 0, try first.decode(Int.self, at: 1) == 0 { return }
            if ContinuousClock.now > deadline {
                let states = try row.first?.decode(String?.self, at: 2) ?? "no table"
                throw HarnessError(
                    code: .startupFailed,
                    message:
                        "subscription \(name): the initial copy did not finish within \(timeoutSeconds) s (tables: \(states); states: i init, d copying, f/s syncing, r ready)",
                    logTail: subscriber.logTail())
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Returns when the subscriber has applied everything the publisher had committed when it was called
    /// (every subscription's WAL sender has replayed up to the publisher's current position); throws with
    /// the subscriber's apply error and log when that does not happen within `timeoutSeconds`.
    public func waitForCatchUp(timeoutSeconds: Double = 10) async throws {
        let names = subscriptions.all
        guard !names.isEmpty else { return }
        try await publisherDatabase.withConnection { connection in
            let target = try await connection.query("SELECT pg_current_wal_lsn()::text").scalar(String.self)
            let deadline = ContinuousClock.now + .milliseconds(Int(timeoutSeconds * 1000))
            while true {
                let caughtUp = try await connection.query(
                    """
                    SELECT count(*) FILTER (WHERE replay_lsn >= $1::pg_lsn) = $2 FROM pg_stat_replication WHERE application_name = ANY($3::text[])
                    """, [target, names.count, "{" + names.map { "\"\($0)\"" }.joined(separator: ",") + "}"]
                ).scalar(Bool.self)
                if caughtUp { return }
                if ContinuousClock.now > deadline {
                    throw HarnessError(
                        code: .startupFailed,
                        message:
                            "the subscriber did not apply up to \(target) within \(timeoutSeconds) s\(try await applyErrorSummary().map { ": \($0)" } ?? "")",
                        logTail: subscriber.logTail())
                }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// The subscriber's apply errors (`pg_stat_subscription_stats`, PostgreSQL 15+) and the last
    /// logical-replication ERROR of its log, if any.
    public func applyErrorSummary() async throws -> String? {
        var parts: [String] = []
        return try await subscriberDatabase.withConnection { connection in
            if subscriber.binaries.majorVersion >= 15 {
                let rows = try await connection.query(
                    "SELECT subname::text, apply_error_count::int8 FROM pg_stat_subscription_stats WHERE apply_error_count > 0")
                for row in rows {
                    parts.append("subscription \(try row.decode(String.self, at: 0)): \(try row.decode(Int.self, at: 1)) apply error(s)")
                }
            }
            if let error = lastApplyError() { parts.append(error) }
            return parts.isEmpty ? nil : parts.joined(separator: "; ")
        }
    }

    /// The newest `ERROR:` line of the subscriber's log with what follows it (CONTEXT), if any.
    public func lastApplyError() -> String? {
        let lines = subscriber.logTail(lines: 200).split(separator: "\n").map(String.init)
        guard let index = lines.lastIndex(where: { $0.contains("ERROR:") }) else { return nil }
        var text = String(lines[index][lines[index].range(of: "ERROR:")!.lowerBound...])
        for line in lines[(index + 1)...].prefix(3) where line.contains("CONTEXT:") || line.contains("DETAIL:") {
            text += " " + line.drop { $0 != "C" && $0 != "D" }.trimmingCharacters(in: .whitespaces)
        }
        return text
    }

    /// Drops every subscription (and with it the publisher's slot), then stops both clusters. Safe to call twice.
    public func shutdown() async {
        do {
            try await dropSubscriptions()
        } catch {
            logger.warning("could not drop the subscriptions", metadata: ["error": "\(error)"])
        }
        await subscriber.shutdown()
        await publisher.shutdown()
    }

    /// Drops every subscription this pair created; their slots on the publisher go with them (or, when the
    /// publisher cannot be reached, are detached first).
    public func dropSubscriptions() async throws {
        for name in subscriptions.takeAll() {
            do {
                let connection = try await subscriberDatabase.connect()
                _ = try? await connection.execute("ALTER SUBSCRIPTION \(PostgresIdentifier.quote(name)) DISABLE")
                if (try? await connection.execute("DROP SUBSCRIPTION \(PostgresIdentifier.quote(name))")) == nil {
                    // The publisher could not be reached to drop the slot: detach it; the publisher goes away anyway.
                    _ = try? await connection.execute("ALTER SUBSCRIPTION \(PostgresIdentifier.quote(name)) SET (slot_name = NONE)")
                    _ = try? await connection.execute("DROP SUBSCRIPTION \(PostgresIdentifier.quote(name))")
                }
                await connection.close()
            } catch {
                logger.warning("could not drop subscription", metadata: ["subscription": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// The subscriptions created, for catch-up and cleanup.
    private final class SubscriptionNames: Sendable {
        private let names = Mutex<[String]>([])
        func add(_ name: String) { names.withLock { $0.append(name) } }
        var all: [String] { names.withLock { $0 } }
        func takeAll() -> [String] {
            names.withLock { names in
                defer { names = [] }
                return names
            }
        }
    }
}

/// Runs `body` with a started pair and shuts it down afterwards, also when `body` throws.
public func withReplicationPair<T>(
    publisher: TemporaryPostgres.Configuration = .init(), subscriber: TemporaryPostgres.Configuration = .init(),
    logger: Logger = TemporaryPostgres.defaultLogger, _ body: (ReplicationPair) async throws -> T
) async throws -> T {
    let pair = try await ReplicationPair.start(publisher: publisher, subscriber: subscriber, logger: logger)
    do {
        let result = try await body(pair)
        await pair.shutdown()
        return result
    } catch {
        await pair.shutdown()
        throw error
    }
}
