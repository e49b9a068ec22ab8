public import Logging
public import PGEventsPostgres
import PGEventsSystem

/// What `source: wal` needs from the server, checked with errors that name the fix, and created on request
/// (`pgevents wal setup`): `wal_level = logical`, a free replication slot and WAL sender, a role with the
/// `REPLICATION` attribute, the publication (owning its tables), and the slot (pgoutput).
public enum WalSetup {
    /// What ``check(on:slot:publication:channels:logger:)`` found.
    public struct SlotState: Sendable {
        /// The slot's `confirmed_flush_lsn`: where streaming resumes.
        public var confirmed: LogSequenceNumber
    }

    /// What ``create(on:slot:publication:tables:logger:)`` did.
    public struct Report: Sendable, Equatable {
        public var createdPublication = false
        public var addedTables: [String] = []
        public var createdSlot = false
        /// Whether the slot was created with `failover` (PostgreSQL 17 and later), so that it survives the promotion of
        /// a standby that synchronises slots.
        public var failover = false
    }

    /// Checks the settings, the slot and the publication before streaming.
    public static func check(on connection: PostgresConnection, slot: String, publication: String, channels: Set<String>, logger: Logger)
        async throws -> SlotState
    {
        try await checkSettings(on: connection)
        guard
            let row = try await connection.query(
                """
                SELECT plugin, slot_type, coalesce(database, ''), coalesce(wal_status, ''), coalesce(confirmed_flush_lsn::text, '0/0'),
                       current_database(), current_setting('max_slot_wal_keep_size')
                  FROM pg_replication_slots WHERE slot_name = $1
                """, [slot]
            ).first
        else {
            throw slotMissing(slot)
        }
        let plugin = try row.decode(String?.self, at: 0) ?? ""
        let database = try row.decode(String.self, at: 2)
        let current = try row.decode(String.self, at: 5)
        guard try row.decode(String.self, at: 1) == "logical", plugin == "pgoutput" else {
            throw ProcessorError(
                code: .walNotReady,
                message:
                    "replication slot \(slot) is not a logical slot of the pgoutput plugin (plugin: \(plugin.isEmpty ? "none" : plugin)); name another slot, or drop this one (SELECT pg_drop_replication_slot('\(slot)')) and run pgevents wal setup"
            )
        }
        guard database == current else {
            throw ProcessorError(
                code: .walNotReady,
                message:
                    "replication slot \(slot) belongs to database \(database), not \(current): a logical slot reads one database; create one here with pgevents wal setup"
            )
        }
        if try row.decode(String.self, at: 3) == "lost" { throw slotInvalidated(slot) }
        if try row.decode(String.self, at: 6) == "-1" {
            logger.warning(
                "max_slot_wal_keep_size is unlimited: while this processor is stopped, the slot keeps all WAL and the disk can fill; set a limit (the slot is then invalidated instead, and the processor stops and says so)",
                metadata: ["slot": "\(slot)"])
        }
        guard try await connection.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication]).first != nil else {
            throw ProcessorError(
                code: .walNotReady,
                message:
                    "publication \(publication) does not exist: create it (and the slot) with pgevents wal setup --config FILE, or CREATE PUBLICATION \(PostgresIdentifier.quote(publication)) FOR TABLE …"
            )
        }
        let published = Set(
            try await connection.query(
                "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", [publication]
            ).map { try $0.decode(String.self, at: 0) })
        for channel in channels.sorted() where channel.contains(".") && !published.contains(channel) {
            if try await connection.query("SELECT to_regclass($1) IS NOT NULL", [qualified(channel)]).scalar(Bool.self) {
                logger.warning(
                    "table \(channel) is not in publication \(publication): its changes do not arrive (pgevents wal setup adds it)",
                    metadata: ["channel": "\(channel)"])
            }
        }
        guard let confirmed = LogSequenceNumber(try row.decode(String.self, at: 4)) else {
            throw ProcessorError(code: .walNotReady, message: "replication slot \(slot) has an unreadable confirmed position")
        }
        return SlotState(confirmed: confirmed)
    }

    /// Creates what is missing: the publication (with `tables`, `schema.table` each), the tables it lacks, and the
    /// slot. Refuses a table whose updates and deletes PostgreSQL could not publish (no replica identity).
    public static func create(on connection: PostgresConnection, slot: String, publication: String, tables: [String], logger: Logger)
        async throws -> Report
    {
        try await checkSettings(on: connection)
        var report = Report()
        var relations: [String] = []
        for table in tables {
            guard
                let row = try await connection.query(
                    """
                    SELECT c.oid::regclass::text, c.relreplident::text,
                           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident))
                      FROM pg_class c WHERE c.oid = to_regclass($1)
                    """, [qualified(table)]
                ).first
            else {
                throw ProcessorError(
                    code: .walNotReady, message: "table \(table) does not exist (channels of table changes are named schema.table)")
            }
            let identity = try row.decode(String.self, at: 1)
            let hasKey = try row.decode(Bool.self, at: 2)
            if identity == "n" || (identity == "d" && !hasKey) {
                throw ProcessorError(
                    code: .walNotReady,
                    message:
                        "table \(table) has no replica identity: once it is in a publication, its UPDATEs and DELETEs would fail (\"cannot update table … because it does not have a replica identity\"). Give it a primary key, or ALTER TABLE \(table) REPLICA IDENTITY FULL, then run this again"
                )
            }
            relations.append(try row.decode(String.self, at: 0))
        }
        let quotedPublication = PostgresIdentifier.quote(publication)
        do {
            if try await connection.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication]).first == nil {
                try await connection.execute(
                    "CREATE PUBLICATION \(quotedPublication)" + (relations.isEmpty ? "" : " FOR TABLE " + relations.joined(separator: ", "))
                )
                report.createdPublication = true
                report.addedTables = tables
            } else {
                let published = Set(
                    try await connection.query(
                        "SELECT format('%I.%I', schemaname, tablename)::regclass::text FROM pg_publication_tables WHERE pubname = $1",
                        [publication]
                    ).map { try $0.decode(String.self, at: 0) })
                for (table, relation) in zip(tables, relations) where !published.contains(relation) {
                    try await connection.execute("ALTER PUBLICATION \(quotedPublication) ADD TABLE \(relation)")
                    report.addedTables.append(table)
                }
            }
        } catch {
            guard let error = error as? PostgresError, error.sqlState == "42501" else { throw error }
            throw ProcessorError(
                code: .walNotReady,
                message:
                    "cannot create or change publication \(publication): \(error.message) (a publication's tables must be owned by the role that adds them, and CREATE PUBLICATION needs CREATE on the database)"
            )
        }
        if try await connection.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [slot]).first == nil {
            let failover = await connection.serverVersion >= 170_000
            do {
                try await connection.query(
                    failover
                        ? "SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
                        : "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot])
            } catch {
                switch error.sqlState {
                case "42501":
                    throw ProcessorError(
                        code: .walNotReady,
                        message:
                            "cannot create replication slot \(slot): \(error.message). The role needs the REPLICATION attribute (ALTER ROLE … REPLICATION) or superuser"
                    )
                case "53400":
                    throw ProcessorError(
                        code: .walNotReady,
                        message:
                            "cannot create replication slot \(slot): \(error.message). Raise max_replication_slots (a restart is needed), or drop an unused slot"
                    )
                default:
                    throw error
                }
            }
            report.createdSlot = true
            report.failover = failover
            logger.info("replication slot created", metadata: ["slot": "\(slot)", "failover": "\(failover)"])
        }
        return report
    }

    /// The channels that name existing tables (`schema.table`), in order: the tables a publication needs.
    public static func tables(named channels: [String], on connection: PostgresConnection) async throws -> [String] {
        var tables: [String] = []
        for channel in channels where channel.contains(".") {
            if try await connection.query("SELECT to_regclass($1) IS NOT NULL", [qualified(channel)]).scalar(Bool.self) {
                tables.append(channel)
            }
        }
        return tables
    }

    /// One line about the slot: its confirmed position, the WAL kept for it, its WAL status and who streams it; nil
    /// when it does not exist.
    public static func status(of slot: String, on connection: PostgresConnection) async throws -> String? {
        guard
            let row = try await connection.query(
                """
                SELECT coalesce(confirmed_flush_lsn::text, '-'), coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::int8,
                       coalesce(wal_status, '-'), coalesce(active_pid::text, 'none')
                  FROM pg_replication_slots WHERE slot_name = $1
                """, [slot]
            ).first
        else { return nil }
        return
            "replication slot \(slot): confirmed \(try row.decode(String.self, at: 0)), lag \(try row.decode(Int.self, at: 1)) bytes, wal_status \(try row.decode(String.self, at: 2)), streamed by pid \(try row.decode(String.self, at: 3))"
    }

    /// `IDENTIFY_SYSTEM` on a replication connection: the cluster's system identifier.
    static func identifySystem(_ replication: PostgresConfiguration, logger: Logger) async throws -> String {
        let connection = try await connectReplication(replication, logger: logger)
        do {
            guard let identifier = try await connection.execute("IDENTIFY_SYSTEM").first.map({ try $0.decode(String.self, at: 0) }) else {
                throw PostgresError(code: .protocolViolation, message: "IDENTIFY_SYSTEM returned no row", statement: "IDENTIFY_SYSTEM")
            }
            await connection.close()
            return identifier
        } catch {
            await connection.close()
            throw error
        }
    }

    /// A replication connection streaming the slot. A slot still held by a process that is going away (the previous
    /// leader's WAL sender) is waited for, up to 10 s; then the error is retried by the delivery like an outage.
    /// Opens the replication connection (on `executor`, when given) and starts streaming the slot.
    static func startStreaming(
        _ replication: PostgresConfiguration, slot: String, publication: String, messages: Bool, executor: ThreadExecutor? = nil,
        logger: Logger
    ) async throws -> PostgresConnection {
        let connection = try await connectReplication(replication, executor: executor, logger: logger)
        var options = "proto_version '1', publication_names '\(publication.replacingOccurrences(of: "'", with: "''"))'"
        if messages { options += ", messages 'true'" }
        let command = "START_REPLICATION SLOT \(PostgresIdentifier.quote(slot)) LOGICAL 0/0 (\(options))"
        let clock = ContinuousClock()
        let start = clock.now
        while true {
            do {
                try await connection.startCopyBoth(command)
                return connection
            } catch {
                let inUse = error.sqlState == "55006"
                if inUse, clock.now - start < .seconds(10), connection.isUsable {
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                await connection.close()
                if inUse {
                    throw PostgresError(
                        code: .connectionFailed,
                        message:
                            "replication slot \(slot) is streamed by another process: \(error.message). A processor that is going away releases it; one that does not use this consumer's name and leader lock never does (SELECT active_pid FROM pg_replication_slots WHERE slot_name = '\(slot)')",
                        sqlState: nil)
                }
                if error.sqlState == "55000" || error.message.contains("invalidated") {
                    throw slotInvalidated(slot, detail: error.message + (error.detail.map { " " + $0 } ?? ""))
                }
                if error.sqlState == "42704" { throw slotMissing(slot) }
                throw error
            }
        }
    }

    static func slotMissing(_ slot: String) -> ProcessorError {
        ProcessorError(
            code: .walNotReady,
            message:
                "replication slot \(slot) does not exist: create it (and the publication) with pgevents wal setup --config FILE; the role needs the REPLICATION attribute"
        )
    }

    static func slotInvalidated(_ slot: String, detail: String? = nil) -> ProcessorError {
        ProcessorError(
            code: .walNotReady,
            message:
                "replication slot \(slot) was invalidated\(detail.map { " (\($0))" } ?? ""): the server removed WAL it had not delivered (max_slot_wal_keep_size). Changes committed since the slot's last confirmed position are lost to it. Recover: drop the slot (SELECT pg_drop_replication_slot('\(slot)')), create it again (pgevents wal setup), and reconcile what changed meanwhile from the tables themselves. The processor never skips ahead on its own."
        )
    }

    /// `schema.table` as a quoted name for `to_regclass` (split at the first dot).
    static func qualified(_ name: String) -> String {
        guard let dot = name.firstIndex(of: ".") else { return PostgresIdentifier.quote(name) }
        return PostgresIdentifier.quote(schema: String(name[..<dot]), name: String(name[name.index(after: dot)...]))
    }

    private static func checkSettings(on connection: PostgresConnection) async throws {
        let row = try await connection.query(
            """
            SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int, current_setting('max_wal_senders')::int
            """
        ).first!
        let level = try row.decode(String.self, at: 0)
        guard level == "logical" else {
            throw ProcessorError(
                code: .walNotReady,
                message:
                    "wal_level is \(level): source: wal needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)"
            )
        }
        guard try row.decode(Int.self, at: 1) > 0 else {
            throw ProcessorError(
                code: .walNotReady,
                message:
                    "max_replication_slots is 0: source: wal needs a replication slot (ALTER SYSTEM SET max_replication_slots = 10, then restart PostgreSQL)"
            )
        }
        guard try row.decode(Int.self, at: 2) > 0 else {
            throw ProcessorError(
                code: .walNotReady,
                message:
                    "max_wal_senders is 0: source: wal needs a WAL sender (ALTER SYSTEM SET max_wal_senders = 10, then restart PostgreSQL)")
        }
    }

    private static func connectReplication(_ replication: PostgresConfiguration, executor: ThreadExecutor? = nil, logger: Logger)
        async throws -> PostgresConnection
    {
        do {
            return try await PostgresConnection.connect(replication, logger: logger, executor: executor)
        } catch {
            let message = error.message.lowercased()
            if (message.contains("wal sender") || message.contains("walsender"))
                && (message.contains("must be superuser") || message.contains("permission denied"))
            {
                throw ProcessorError(
                    code: .walNotReady,
                    message:
                        "\(error.message): source: wal needs a role with the REPLICATION attribute (ALTER ROLE … REPLICATION) and a pg_hba.conf line that allows its connection"
                )
            }
            if error.message.contains("no pg_hba.conf entry for replication") {
                throw ProcessorError(
                    code: .walNotReady,
                    message:
                        "\(error.message): add a pg_hba.conf line for the replication connection (database 'replication' does not cover logical slots; the line must name this database or 'all')"
                )
            }
            throw error
        }
    }
}
