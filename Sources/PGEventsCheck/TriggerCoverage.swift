import PGEventsHarness

/// Which operations were seen to fire each notifying trigger of a table, and why the others were not.
///
/// A trigger counts as fired by an operation when, with the table's other notifying triggers disabled, a
/// notification arrived after a committed statement of that kind (`TableExercise.fireAlone`); a table with one
/// notifying trigger needs no such run: a notification on one of its channels after the statement is its own. An
/// operation that never fired it is not a pass — nothing about it was verified — so it is reported as skipped,
/// with the likeliest reason.
struct TriggerCoverage {
    let table: QualifiedName
    let triggers: [TriggerInfo]
    let operations: [ExercisedOperation]
    var firedAlone: TableExercise.Firings = [:]
    let version: String

    func results() -> [CheckResult] {
        var results: [CheckResult] = []
        for trigger in triggers where trigger.notifies && trigger.firesLocally {
            let declared = trigger.operations.sorted()
            guard !declared.isEmpty else { continue }
            let channels = Set(trigger.channels)
            if trigger.hasUnresolvedChannel && channels.isEmpty && firedAlone[trigger.name] == nil {
                continue  // reported already: its channel is known only at run time
            }
            var fired: [TableOperation] = []
            var missed: [(TableOperation, String)] = []
            for operation in declared {
                let ran = operations.filter { $0.kind.operation == operation }
                let sent =
                    if let alone = firedAlone[trigger.name] {
                        !(alone[operation] ?? []).isEmpty
                    } else {
                        ran.contains(where: { $0.error == nil && $0.notifications.contains { channels.contains($0.channel) } })
                    }
                if sent {
                    fired.append(operation)
                } else {
                    missed.append((operation, reason(operation, trigger: trigger, ran: ran)))
                }
            }
            let firedText = fired.map(\.keyword).joined(separator: ", ")
            if !fired.isEmpty {
                let how = firedAlone[trigger.name] == nil ? "" : " with the table's other notifying triggers disabled"
                let on = firedAlone[trigger.name].map { alone in Set(fired.flatMap { alone[$0] ?? [] }.map(\.channel)) } ?? channels
                results.append(
                    CheckResult(
                        group: table.description, name: "trigger \(trigger.name) fired on \(firedText)", status: .passed,
                        message: "notifications on \(on.sorted().joined(separator: ", ")) arrived after \(firedText)\(how)",
                        postgresVersion: version))
            }
            for (operation, why) in missed {
                results.append(
                    CheckResult(
                        group: table.description, name: "trigger \(trigger.name) fired on \(operation.keyword)", status: .skipped,
                        message: "it never fired on \(operation.keyword), so nothing about it was verified: \(why)",
                        fix: trigger.condition != nil || why.contains("condition inside")
                            ? "give the columns values that meet its condition in the spec: tables.\(table).values" : nil,
                        postgresVersion: version))
            }
        }
        return results
    }

    /// The likeliest reason `trigger` never fired on `operation`.
    private func reason(_ operation: TableOperation, trigger: TriggerInfo, ran: [ExercisedOperation]) -> String {
        if ran.isEmpty {
            return "no \(operation.keyword) could be run (the generated row was not written)"
        }
        if ran.allSatisfy({ $0.error != nil }), let error = ran.first?.error {
            return "every \(operation.keyword) failed: \(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "")"
        }
        if let condition = trigger.condition {
            return "its WHEN (\(condition)) was false for every generated row"
        }
        if operation == .update, !trigger.updateColumns.isEmpty {
            return
                "it fires on UPDATE OF \(trigger.updateColumns.joined(separator: ", ")) only, and no generated UPDATE changed those columns"
        }
        return "its function did not notify for any generated row (a condition inside it, e.g. IF NEW.state = …?)"
    }

    /// The condition of `CREATE TRIGGER … WHEN (condition) EXECUTE …` as `pg_get_triggerdef` prints it.
    static func condition(inDefinition definition: String) -> String? {
        guard let when = definition.range(of: " WHEN (") else { return nil }
        var depth = 1
        var index = when.upperBound
        var inString = false
        while index < definition.endIndex {
            let character = definition[index]
            if inString {
                if character == "'" { inString = false }
            } else if character == "'" {
                inString = true
            } else if character == "(" {
                depth += 1
            } else if character == ")" {
                depth -= 1
                if depth == 0 { return String(definition[when.upperBound..<index]) }
            }
            index = definition.index(after: index)
        }
        return nil
    }
}
