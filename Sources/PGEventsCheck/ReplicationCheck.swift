import PGEventsHarness
import PGEventsSystem
import Foundation
import Logging
import PGEventsPostgres

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

    func run() async throws -> [CheckResult] {
        var results: [CheckResult] = []
        let version = binaries.version
        func add(_ name: String, _ status: CheckStatus, _ message: String, payload: String? = nil, row: String? = nil, fix: String? = nil) {
            results.append(CheckResult(group: "replication", name: name, status: status, message: message,
                                       payload: payload.map { PayloadJudge.excerpt($0, limit: 300) }, row: row, fix: fix, postgresVersion: version))
        }
        let configuration = TemporaryPostgres.Configuration(binDirectory: binaries.directory)
        let started = ContinuousClock.now
        let pair = try await ReplicationPair.start(publisher: configuration, subscriber: configuration, logger: logger)
        do {
            // Both schemas.
            for (side, migrations, database) in [("publisher", publisherMigrations, pair.publisherDatabase), ("subscriber", subscriberMigrations, pair.subscriberDatabase)] {
                let connection = try await database.connect()
                do {
                    try await migrations.apply(to: connection)
                    await connection.close()
                } catch let error as MigrationError {
                    await connection.close()
                    let relative = error.file.hasPrefix(migrations.directory) ? String(error.file.dropFirst(migrations.directory.count).drop { $0 == "/" }) : error.file
                    add("the \(side)'s migrations apply", .failed, "\(relative):\(error.line):\(error.column): \(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "")", fix: error.postgresError?.hint)
                    await pair.shutdown()
                    return results
                }
            }
            // The publication (unless the publisher's migrations made it) and the subscription.
            let publisher = try await pair.publisherDatabase.connect()
            let exists = try await publisher.query("SELECT count(*) > 0 FROM pg_publication WHERE pubname = $1", [replication.publication]).scalar(Bool.self)
            if !exists {
                try await pair.publish(replication.publication, tables: replication.tables.map { .init($0) })
            }
            do {
                try await pair.subscribe(Self.subscriptionName, to: replication.publication, timeoutSeconds: 30)
            } catch let error as PostgresError {
                add("the subscriber subscribes to \(replication.publication)", .failed, "\(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "")",
                    fix: "the subscriber needs every published table, with the same schema-qualified name and compatible columns")
                await publisher.close()
                await pair.shutdown()
                return results
            }
            let setup = ContinuousClock.now - started
            add("the pair replicates \(replication.publication)", .passed,
                "publisher and subscriber up, initial copy done in \(String(format: "%.2f", setup.inSeconds)) s")

            let subscriber = try await pair.subscriberDatabase.connect()
            let listener = try await pair.subscriberDatabase.connect()
            let channels = Set(replication.tables.compactMap { spec.tables[$0]?.notify[.insert] })
            for channel in channels.sorted() { try await listener.listen(channel) }
            try await listener.listen(TableExercise.fenceChannel)
            var notifications = await listener.notifications().makeAsyncIterator()
            var fence = 0
            func collect() async throws -> [PostgresNotification] {
                fence += 1
                let marker = "replication \(fence)"
                try await subscriber.notify(TableExercise.fenceChannel, payload: marker)
                var collected: [PostgresNotification] = []
                while let next = try await notifications.next() {
                    if next.channel == TableExercise.fenceChannel { if next.payload == marker { break } else { continue } }
                    collected.append(next)
                }
                return collected
            }
            let triggers = try await Catalog.triggers(on: subscriber)

            tables: for table in replication.tables {
                guard let shape = try await TableShape.read(table, on: publisher) else {
                    add("\(table) is published", .failed, "the publisher has no table \(table)")
                    continue
                }
                let expected = spec.tables[table]?.notify[.insert]
                let fixed = spec.tables[table]?.values ?? [:]
                var rows: [(label: String, values: [String: GeneratedValue])] = []
                var serial = 1_000
                guard let base = shape.ordinaryRow(serial: serial, fixed: fixed) else {
                    add("rows can be generated for \(table)", .skipped, "a column of \(table) needs a value: give it one in tables.\(table).values")
                    continue
                }
                rows.append(("an ordinary row", base))
                for column in shape.columns where !column.isIdentity && !column.isGenerated && fixed[column.name] == nil {
                    for (label, value) in shape.edgeValues(column) {
                        serial += 1
                        guard var row = shape.ordinaryRow(serial: serial, fixed: fixed) else { continue }
                        row[column.name] = value
                        rows.append(("\(column.name): \(label)", row))
                    }
                }
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
                        add("replicated rows of \(table) do not stall replication", .failed,
                            "replication stalls at the row with \(label): the subscriber's apply worker fails (\(applyError)) and retries it for ever; every later change waits behind it",
                            row: describe(row, shape), fix: "the subscriber's trigger must not fail on any row the publisher can send: keep its payload small (send the key), and test it with pgevents check")
                        continue tables
                    }
                    let arrived = try await collect()
                    guard let expected else { continue }
                    let onChannel = arrived.filter { $0.channel == expected }
                    if onChannel.count == 1 {
                        delivered += 1
                    } else if delivered == 0 {
                        // Not even the first row: most likely a trigger the apply worker does not fire.
                        let local = triggers.filter { $0.table == table && $0.notifies && !$0.firesOnReplica }
                        if let trigger = local.first {
                            add("replicated INSERTs into \(table) notify on \(expected)", .failed,
                                "\(onChannel.count) notification(s) for a replicated row: trigger \(trigger.name) is \(trigger.enabledDescription), and the apply worker runs as a replica, so it never fires for replicated rows",
                                row: describe(row, shape), fix: "ALTER TABLE \(table) ENABLE ALWAYS TRIGGER \(trigger.name);")
                        } else {
                            add("replicated INSERTs into \(table) notify on \(expected)", .failed,
                                "\(onChannel.count) notification(s) on \(expected) for a replicated row (received on: \(arrived.map(\.channel).joined(separator: ", ").isEmpty ? "nothing" : arrived.map(\.channel).joined(separator: ", ")))",
                                row: describe(row, shape), fix: "the subscriber needs an AFTER INSERT trigger, ENABLE ALWAYS (or REPLICA), that notifies on \(expected)")
                        }
                        continue tables
                    } else {
                        add("replicated INSERTs into \(table) notify on \(expected)", .failed,
                            "the row with \(label) gave \(onChannel.count) notification(s) on \(expected)", payload: onChannel.first?.payload, row: describe(row, shape))
                        continue tables
                    }
                }
                add("replicated rows of \(table) do not stall replication", .passed, "\(rows.count - refused) rows applied, ordinary and edge values")
                if let expected {
                    add("replicated INSERTs into \(table) notify on \(expected)", .passed, "\(delivered) rows, one notification each, on the subscriber")
                }
            }
            for connection in [publisher, subscriber, listener] { await connection.close() }
            await pair.shutdown()
        } catch {
            await pair.shutdown()
            throw error
        }
        return results
    }

    private func describe(_ row: [String: GeneratedValue], _ shape: TableShape) -> String {
        shape.columns.compactMap { column in
            guard let value = row[column.name], value != .default else { return nil }
            return "\(column.name) = \(value)"
        }.joined(separator: ", ")
    }
}
