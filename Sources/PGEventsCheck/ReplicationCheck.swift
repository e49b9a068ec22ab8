import Foundation
import Logging
import PGEventsHarness
import PGEventsPostgres
import PGEventsSystem

/// The `replication:` section of a spec, checked on a publisher/subscriber pair: rows inserted on the
/// publisher must notify on the subscriber (its trigger must be `ENABLE ALWAYS` or `ENABLE REPLICA`, since the
/// apply worker runs as a replica), and no row may make the subscriber's trigger fail — which stalls
/// replication for every later row while the apply worker retries.
struct ReplicationCheck {
    let spec: CheckSpec
    let replication: ReplicationSpec
    let publisherMigrations: MigrationSet
    let subscriberMigrations: MigrationSet
    let binaries: PostgresBinaries
    let logger: Logger

    static let subscriptionName = "pgevents_check"

    /// The results, grouped under `replication`, each with the version it ran on.
    private struct Results {
        let version: String
        var all: [CheckResult] = []

        mutating func add(
            _ name: String, _ status: CheckStatus, _ message: String, payload: String? = nil, row: String? = nil, fix: String? = nil
        ) {
            all.append(
                CheckResult(
                    group: "replication", name: name, status: status, message: message,
                    payload: payload.map { TextExcerpt.excerpt($0, limit: 300) }, row: row, fix: fix, postgresVersion: version))
        }
    }

    /// The phases in order, on a pair of throwaway clusters: both schemas, the publication and the subscription,
    /// then each published table's rows. A phase that fails reports it and ends the check.
    func run() async throws -> [CheckResult] {
        var results = Results(version: binaries.version)
        let configuration = TemporaryPostgres.Configuration(binDirectory: binaries.directory)
        let started = ContinuousClock.now
        try await withReplicationPair(publisher: configuration, subscriber: configuration, logger: logger) { pair in
            guard try await applyMigrations(on: pair, &results) else { return }
            try await pair.publisherDatabase.withConnection { publisher in
                guard try await subscribe(pair, publisher: publisher, &results) else { return }
                let setup = ContinuousClock.now - started
                results.add(
                    "the pair replicates \(replication.publication)", .passed,
                    "publisher and subscriber up, initial copy done in \(String(format: "%.2f", setup.inSeconds)) s")
                try await pair.subscriberDatabase.withConnection { subscriber in
                    try await pair.subscriberDatabase.withConnection { listener in
                        let channels = Set(replication.tables.compactMap { spec.tables[$0]?.notify[.insert] })
                        var fence = try await Fence(writer: subscriber, listener: listener, channels: channels)
                        let triggers = try await Catalog.triggers(on: subscriber)
                        for table in replication.tables {
                            try await check(table, pair: pair, publisher: publisher, fence: &fence, triggers: triggers, &results)
                        }
                    }
                }
            }
        }
        return results.all
    }

    /// Both schemas; false (with the failure reported) when a side's migrations do not apply.
    private func applyMigrations(on pair: ReplicationPair, _ results: inout Results) async throws -> Bool {
        for (side, migrations, database) in [
            ("publisher", publisherMigrations, pair.publisherDatabase), ("subscriber", subscriberMigrations, pair.subscriberDatabase),
        ] {
            do {
                try await database.withConnection { connection in try await migrations.apply(to: connection) }
            } catch let error as MigrationError {
                let relative =
                    error.file.hasPrefix(migrations.directory)
                    ? String(error.file.dropFirst(migrations.directory.count).drop { $0 == "/" }) : error.file
                results.add(
                    "the \(side)'s migrations apply", .failed,
                    "\(relative):\(error.line):\(error.column): \(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "")",
                    fix: error.postgresError?.hint)
                return false
            }
        }
        return true
    }

    /// The publication (unless the publisher's migrations made it) and the subscription; false (with the failure
    /// reported) when the subscriber cannot subscribe.
    private func subscribe(_ pair: ReplicationPair, publisher: PostgresConnection, _ results: inout Results) async throws -> Bool {
        let exists = try await publisher.query("SELECT count(*) > 0 FROM pg_publication WHERE pubname = $1", [replication.publication])
            .scalar(Bool.self)
        if !exists {
            try await pair.publish(replication.publication, tables: replication.tables.map { .init($0) })
        }
        do {
            try await pair.subscribe(Self.subscriptionName, to: replication.publication, timeoutSeconds: 30)
            return true
        } catch let error as PostgresError {
            results.add(
                "the subscriber subscribes to \(replication.publication)", .failed,
                "\(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "")",
                fix: "the subscriber needs every published table, with the same schema-qualified name and compatible columns")
            return false
        }
    }

    /// The notifications the subscriber's triggers send, an operation at a time: a fence notification from the
    /// subscriber marks the end of what the last replicated row caused.
    private struct Fence {
        let writer: PostgresConnection
        var notifications: PostgresNotificationSequence.AsyncIterator
        var count = 0

        init(writer: PostgresConnection, listener: PostgresConnection, channels: Set<String>) async throws {
            for channel in channels.sorted() { try await listener.listen(channel) }
            try await listener.listen(TableExercise.fenceChannel)
            self.writer = writer
            notifications = await listener.notifications().makeAsyncIterator()
        }

        /// What arrived since the last call.
        mutating func collect() async throws -> [PostgresNotification] {
            count += 1
            let marker = "replication \(count)"
            try await writer.notify(TableExercise.fenceChannel, payload: marker)
            var collected: [PostgresNotification] = []
            while let next = try await notifications.next() {
                if next.channel == TableExercise.fenceChannel { if next.payload == marker { break } else { continue } }
                collected.append(next)
            }
            return collected
        }
    }

    /// The rows of one published table: an ordinary row, then one per edge value of each column, each inserted
    /// on the publisher and waited for on the subscriber. Stops at the first row that stalls replication or does
    /// not notify once.
    private func check(
        _ table: QualifiedName, pair: ReplicationPair, publisher: PostgresConnection, fence: inout Fence, triggers: [TriggerInfo],
        _ results: inout Results
    ) async throws {
        guard let shape = try await TableShape.read(table, on: publisher) else {
            results.add("\(table) is published", .failed, "the publisher has no table \(table)")
            return
        }
        let expected = spec.tables[table]?.notify[.insert]
        guard let rows = rows(of: shape, fixed: spec.tables[table]?.values ?? [:], &results) else { return }
        var delivered = 0
        var refused = 0
        for (label, row) in rows {
            do {
                _ = try await shape.insert(row, on: publisher)
            } catch is PostgresError {
                refused += 1  // the publisher's own schema refuses the value: not replication's business
                continue
            }
            do {
                try await pair.waitForCatchUp(timeoutSeconds: 5)
            } catch let error as HarnessError {
                let applyError = pair.lastApplyError() ?? error.message
                results.add(
                    "replicated rows of \(table) do not stall replication", .failed,
                    "replication stalls at the row with \(label): the subscriber's apply worker fails (\(applyError)) and retries it for ever; every later change waits behind it",
                    row: describe(row, shape),
                    fix:
                        "the subscriber's trigger must not fail on any row the publisher can send: keep its payload small (send the key), and test it with pgevents check"
                )
                return
            }
            let arrived = try await fence.collect()
            guard let expected else { continue }
            let onChannel = arrived.filter { $0.channel == expected }
            if onChannel.count == 1 {
                delivered += 1
            } else if delivered == 0 {
                // Not even the first row: most likely a trigger the apply worker does not fire.
                let local = triggers.filter { $0.table == table && $0.notifies && !$0.firesOnReplica }
                if let trigger = local.first {
                    results.add(
                        "replicated INSERTs into \(table) notify on \(expected)", .failed,
                        "\(onChannel.count) notification(s) for a replicated row: trigger \(trigger.name) is \(trigger.enabledDescription), and the apply worker runs as a replica, so it never fires for replicated rows",
                        row: describe(row, shape), fix: "ALTER TABLE \(table) ENABLE ALWAYS TRIGGER \(trigger.name);")
                } else {
                    results.add(
                        "replicated INSERTs into \(table) notify on \(expected)", .failed,
                        "\(onChannel.count) notification(s) on \(expected) for a replicated row (received on: \(arrived.map(\.channel).joined(separator: ", ").isEmpty ? "nothing" : arrived.map(\.channel).joined(separator: ", ")))",
                        row: describe(row, shape),
                        fix: "the subscriber needs an AFTER INSERT trigger, ENABLE ALWAYS (or REPLICA), that notifies on \(expected)")
                }
                return
            } else {
                results.add(
                    "replicated INSERTs into \(table) notify on \(expected)", .failed,
                    "the row with \(label) gave \(onChannel.count) notification(s) on \(expected)", payload: onChannel.first?.payload,
                    row: describe(row, shape))
                return
            }
        }
        results.add(
            "replicated rows of \(table) do not stall replication", .passed,
            "\(rows.count - refused) rows applied, ordinary and edge values")
        if let expected {
            results.add(
                "replicated INSERTs into \(table) notify on \(expected)", .passed,
                "\(delivered) rows, one notification each, on the subscriber")
        }
    }

    /// An ordinary row, then one per edge value of each column; nil (reported as skipped) when no ordinary row
    /// can be generated.
    private func rows(of shape: TableShape, fixed: [String: String], _ results: inout Results) -> [(
        label: String, values: [String: GeneratedValue]
    )]? {
        var serial = 1_000
        guard let base = shape.ordinaryRow(serial: serial, fixed: fixed) else {
            results.add(
                "rows can be generated for \(shape.table)", .skipped,
                "a column of \(shape.table) needs a value: give it one in tables.\(shape.table).values")
            return nil
        }
        var rows: [(label: String, values: [String: GeneratedValue])] = [("an ordinary row", base)]
        for column in shape.columns where !column.isIdentity && !column.isGenerated && fixed[column.name] == nil {
            for (label, value) in shape.edgeValues(column) {
                serial += 1
                guard var row = shape.ordinaryRow(serial: serial, fixed: fixed) else { continue }
                row[column.name] = value
                rows.append(("\(column.name): \(label)", row))
            }
        }
        return rows
    }

    private func describe(_ row: [String: GeneratedValue], _ shape: TableShape) -> String {
        shape.columns.compactMap { column in
            guard let value = row[column.name], value != .default else { return nil }
            return "\(column.name) = \(value)"
        }.joined(separator: ", ")
    }
}
