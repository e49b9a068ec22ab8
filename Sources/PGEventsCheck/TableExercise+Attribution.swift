import PGEventsPostgres

/// Which trigger sent what, exactly, when several notifying triggers share a table: each one is exercised again
/// on its own, the table's other notifying triggers disabled (`ALTER TABLE … DISABLE TRIGGER`, in the table's
/// scratch database), with the ordinary row and every edge row, so that a notification is credited to the trigger
/// that sent it rather than to every trigger whose channel it arrived on.
///
/// Triggers that do not notify stay enabled (a BEFORE trigger that fills a column keeps filling it), so a
/// notification sent by one of them through a path the catalog cannot see is still credited to the trigger run
/// alone with it.
extension TableExercise {
    /// Per trigger, per operation: the notifications that arrived while it alone of the notifying triggers was enabled.
    typealias Firings = [String: [TableOperation: [(channel: String, payload: String)]]]

    /// Runs every row of `rows` through INSERT, UPDATE and DELETE for each trigger of `alone` in turn.
    /// `update(ctid, trigger)` runs the row's UPDATE for that trigger (its `UPDATE OF` columns first);
    /// `collect()` returns what arrived since the last call.
    func fireAlone(
        _ alone: [TriggerInfo], rows: () async throws -> [[String: GeneratedValue]], on writer: PostgresConnection,
        update: (String, TriggerInfo) async throws -> String, collect: () async throws -> [(channel: String, payload: String)]
    ) async throws -> Firings {
        var firings: Firings = [:]
        for trigger in alone {
            let others = alone.filter { $0.name != trigger.name }
            try await setEnabled(others, false, on: writer)
            do {
                var fired: [TableOperation: [(channel: String, payload: String)]] = [:]
                for row in try await rows() {
                    guard let inserted = try? await shape.insert(row, on: writer) else {
                        _ = try await collect()
                        continue
                    }
                    fired[.insert, default: []] += try await collect()
                    guard let updated = try? await update(inserted, trigger) else {
                        _ = try await collect()
                        continue
                    }
                    fired[.update, default: []] += try await collect()
                    if (try? await writer.query("DELETE FROM \(shape.quotedName) WHERE ctid = $1::tid", [updated])) != nil {
                        fired[.delete, default: []] += try await collect()
                    } else {
                        _ = try await collect()
                    }
                }
                firings[trigger.name] = fired
            } catch {
                try? await setEnabled(others, true, on: writer)
                throw error
            }
            try await setEnabled(others, true, on: writer)
        }
        return firings
    }

    /// Disables `triggers`, or enables them again as they were (`ENABLE ALWAYS` for those that were).
    private func setEnabled(_ triggers: [TriggerInfo], _ enabled: Bool, on writer: PostgresConnection) async throws {
        guard !triggers.isEmpty else { return }
        let statements = triggers.map { trigger in
            let action = !enabled ? "DISABLE" : trigger.enabled == "A" ? "ENABLE ALWAYS" : "ENABLE"
            return "ALTER TABLE \(shape.quotedName) \(action) TRIGGER \(PostgresIdentifier.quote(trigger.name))"
        }
        _ = try await writer.execute(statements.joined(separator: "; "))
    }
}
