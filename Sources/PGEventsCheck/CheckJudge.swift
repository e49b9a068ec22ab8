import Foundation
import PGEventsHarness
import PGEventsPostgres
import PGEventsSystem

/// Turns what one table's exercise observed into check results: against the spec when there is one, and
/// against what is wrong whatever the intent (a statement that fails, a DELETE payload built from NEW, a
/// disabled trigger, payloads that are not unique per row or not of one format).
struct CheckJudge {
    let table: QualifiedName
    let triggers: [TriggerInfo]
    let spec: TableSpec?
    let channels: [String: ChannelSpec]
    let operations: [ExercisedOperation]
    /// What each trigger sent when exercised alone (tables with more than one notifying trigger): who sent what.
    let firedAlone: TableExercise.Firings
    let version: String

    private(set) var results: [CheckResult] = []
    private(set) var observed: [ObservedChannel] = []

    private var group: String { table.description }

    init(
        table: QualifiedName, triggers: [TriggerInfo], spec: TableSpec?, channels: [String: ChannelSpec], operations: [ExercisedOperation],
        firedAlone: TableExercise.Firings = [:], version: String
    ) {
        self.table = table
        self.triggers = triggers
        self.spec = spec
        self.channels = channels
        self.operations = operations
        self.firedAlone = firedAlone
        self.version = version
    }

    private mutating func add(
        _ name: String, _ status: CheckStatus, _ message: String, payload: String? = nil, row: String? = nil, fix: String? = nil
    ) {
        results.append(
            CheckResult(
                group: group, name: name, status: status, message: message, payload: payload.map { TextExcerpt.excerpt($0, limit: 300) },
                row: row, fix: fix, postgresVersion: version))
    }

    mutating func judge() {
        judgeTriggers()
        judgeFailures()
        judgeOperations()
        judgeTransactions()
        judgePayloads()
        judgeDeletePayloads()
        results += TriggerCoverage(table: table, triggers: triggers, operations: operations, firedAlone: firedAlone, version: version)
            .results()
    }

    // MARK: Triggers

    private mutating func judgeTriggers() {
        let notifying = triggers.filter(\.notifies)
        for trigger in notifying {
            switch trigger.enabled {
            case "D":
                add(
                    "trigger \(trigger.name) is enabled", .failed,
                    "trigger \(trigger.name) (\(trigger.function)) is disabled: it never fires",
                    fix: "ALTER TABLE \(table) ENABLE TRIGGER \(trigger.name);")
            case "R":
                add(
                    "trigger \(trigger.name) is enabled", .failed,
                    "trigger \(trigger.name) fires only for replica sessions (ENABLE REPLICA): ordinary INSERTs on this server do not fire it",
                    fix: "ALTER TABLE \(table) ENABLE ALWAYS TRIGGER \(trigger.name); if it must fire both here and on a subscriber")
            default:
                add(
                    "trigger \(trigger.name) is enabled", .passed,
                    "\(trigger.timing.rawValue) \(trigger.operations.sorted().map(\.keyword).joined(separator: " OR ")) FOR EACH \(trigger.forEachRow ? "ROW" : "STATEMENT"), \(trigger.enabledDescription), notifies on \(describeChannels(trigger))"
                )
            }
            if trigger.hasUnresolvedChannel {
                let unresolved = trigger.channelSources.filter { trigger.resolutions(of: $0).isEmpty }
                add(
                    "channel of \(trigger.name) is known", .skipped,
                    "its channel is computed at run time (\(unresolved.map(\.description).joined(separator: ", "))); only channels named in the spec or found elsewhere are listened to",
                    fix: "name the channel in the spec: tables.\(table).notify")
            }
        }
        if let name = spec?.trigger {
            if let trigger = triggers.first(where: { $0.name == name }) {
                let fires = trigger.firesLocally
                add(
                    "trigger \(name) exists and is enabled", fires ? .passed : .failed,
                    fires
                        ? "\(trigger.enabledDescription), function \(trigger.function)" : "it exists but is \(trigger.enabledDescription)",
                    fix: fires ? nil : "ALTER TABLE \(table) ENABLE ALWAYS TRIGGER \(name);")
            } else {
                let names = triggers.map(\.name)
                add(
                    "trigger \(name) exists and is enabled", .failed,
                    "no trigger \(name) on \(table) (its triggers: \(names.isEmpty ? "none" : names.joined(separator: ", ")))",
                    fix: "create it, or correct tables.\(table).trigger in the spec")
            }
        }
    }

    private func describeChannels(_ trigger: TriggerInfo) -> String {
        trigger.channelSources.map { source in
            let channels = trigger.resolutions(of: source)
            if channels.isEmpty { return "\(source) (unknown until run)" }
            if case .literal = source { return channels[0] }
            return "\(channels.joined(separator: ", ")) (\(source))"
        }.joined(separator: ", ")
    }

    // MARK: Statements that fail

    private mutating func judgeFailures() {
        var reported = Set<String>()
        var valuesRefused = 0
        // The ordinary row refused: said once, naming every operation it stopped.
        // (A statement the table's publication makes fail is PublicationJudge's to report.)
        let refusedBase = operations.filter {
            $0.isBase && $0.error.map { !TableExercise.isTriggerFailure($0) && !PublicationJudge.isPublicationFailure($0) } == true
        }
        if let first = refusedBase.first, let error = first.error {
            add(
                "a generated row can be written", .skipped,
                "\(refusedBase.map(\.kind.rawValue).joined(separator: ", ")) of a generated row failed before any trigger ran: \(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "")"
                    + (first.refusedBy.map { "; the constraint that refused it: \($0)" } ?? ""),
                row: first.row, fix: "give the columns fixed values in the spec: tables.\(table).values")
        }
        var publicationFailures = Set<String>()
        for operation in operations {
            guard let error = operation.error else { continue }
            if PublicationJudge.isPublicationFailure(error) {
                publicationFailures.insert(operation.kind.rawValue)  // reported with the publication's checks
                continue
            }
            guard TableExercise.isTriggerFailure(error) else {
                // The value itself was refused (a constraint, a cast): the schema does not allow it — not a finding,
                // except for the ordinary row, which the generator should be able to write (said above).
                if !operation.isBase {
                    valuesRefused += 1
                }
                continue
            }
            let key = "\(operation.kind.rawValue) \(operation.column ?? "") \(error.sqlState ?? "")"
            guard reported.insert(key).inserted else { continue }
            var message = "\(operation.kind.rawValue) fails: \(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "")"
            if let smallest = operation.smallestFailure { message += ", \(smallest)" }
            if let context = error.context?.split(separator: "\n").first { message += " — in \(context)" }
            let fix: String =
                if error.message.contains("channel name too long") {
                    "PostgreSQL refuses channel names over 63 bytes, and a trigger that builds a longer one makes the user's statement fail: bound the column the name is built from (varchar(n), or a CHECK on octet_length) so that the channel stays within 63 bytes, or name the channel by a hash of it"
                } else if error.message.contains("payload string too long") {
                    "a NOTIFY payload must stay under 8,000 bytes, and a trigger that exceeds it makes the user's statement fail: send the row's key and let the consumer fetch the row, or use the journal (sql/pgevents: pgevents.emit has no size limit)"
                } else {
                    "the trigger must not fail on values the schema allows: this \(operation.kind.rawValue) is rolled back for the user"
                }
            add("\(operation.kind.rawValue) succeeds for every value the schema allows", .failed, message, row: operation.row, fix: fix)
        }
        for kind in [ExercisedOperation.Kind.insert, .update, .delete]
        where !reported.contains(where: { $0.hasPrefix(kind.rawValue + " ") }) && !publicationFailures.contains(kind.rawValue) {
            let tried = operations.filter { $0.kind == kind }.count
            if tried > 0 {
                add(
                    "\(kind.rawValue) succeeds for every value the schema allows", .passed,
                    "\(tried) \(kind.rawValue)s, with NULLs, empty, long, quoted and multi-byte text, extreme numbers and far dates where the columns allow them"
                )
            }
        }
        _ = valuesRefused
    }

    // MARK: Which operations notify, where

    private mutating func judgeOperations() {
        for kind in [ExercisedOperation.Kind.insert, .update, .delete] {
            guard let operationName = kind.operation, let operation = operations.first(where: { $0.kind == kind && $0.isBase }),
                operation.error == nil
            else { continue }
            let arrived = operation.notifications
            let firing = triggers.filter { $0.notifies && $0.operations.contains(operationName) }
            if !firedAlone.isEmpty {
                // Exact: what each trigger sent when it alone was enabled.
                for trigger in firing {
                    for (channel, payload) in firedAlone[trigger.name]?[operationName] ?? []
                    where !observed.contains(where: { $0.operation == kind.rawValue && $0.channel == channel && $0.trigger == trigger.name }
                    ) {
                        observed.append(
                            ObservedChannel(
                                table: group, trigger: trigger.name, operation: kind.rawValue, channel: channel, samplePayload: payload))
                    }
                }
            } else {
                for (channel, payload) in arrived
                where !observed.contains(where: { $0.operation == kind.rawValue && $0.channel == channel }) {
                    observed.append(
                        ObservedChannel(
                            table: group,
                            trigger: firing.map(\.name).joined(separator: ", ").isEmpty ? "?" : firing.map(\.name).joined(separator: ", "),
                            operation: kind.rawValue, channel: channel, samplePayload: payload))
                }
            }
            guard let spec else { continue }
            let summary = arrived.isEmpty ? "nothing" : arrived.map { "\($0.channel)" }.joined(separator: ", ")
            if let expected = spec.notify[operationName] {
                let onChannel = arrived.filter { $0.channel == expected }
                if onChannel.count == 1 {
                    add(
                        "\(kind.rawValue) notifies on \(expected) once per row", .passed, "one notification on \(expected)",
                        payload: onChannel[0].payload)
                } else {
                    add(
                        "\(kind.rawValue) notifies on \(expected) once per row", .failed,
                        "one \(kind.rawValue) of one row sent \(onChannel.count) notification(s) on \(expected) (received on: \(summary))",
                        payload: onChannel.first?.payload ?? arrived.first?.payload, row: operation.row,
                        fix: onChannel.isEmpty
                            ? "check that a trigger fires \(kind.rawValue == "UPDATE" ? "AFTER UPDATE" : "AFTER \(kind.rawValue)") FOR EACH ROW, is enabled, and notifies on '\(expected)'"
                            : "fire the notification once per row")
                }
                let elsewhere = arrived.filter { $0.channel != expected }
                if !elsewhere.isEmpty {
                    add(
                        "\(kind.rawValue) notifies only on \(expected)", .failed,
                        "it also sent on \(Set(elsewhere.map(\.channel)).sorted().joined(separator: ", "))", payload: elsewhere[0].payload)
                }
            } else {
                add(
                    "\(kind.rawValue) does not notify", arrived.isEmpty ? .passed : .failed,
                    arrived.isEmpty
                        ? "no notification, as the spec says"
                        : "the spec lists no notification for \(kind.rawValue), but it sent on \(summary)",
                    payload: arrived.first?.payload,
                    fix: arrived.isEmpty
                        ? nil
                        : "add \(kind.rawValue.lowercased()): <channel> to tables.\(table).notify, or stop the trigger firing on \(kind.rawValue)"
                )
            }
        }
    }

    // MARK: Transactions

    private mutating func judgeTransactions() {
        if let rolledBack = operations.first(where: { $0.kind == .rolledBackInsert }), rolledBack.error == nil {
            add(
                "a rolled-back INSERT notifies nothing", rolledBack.notifications.isEmpty ? .passed : .failed,
                rolledBack.notifications.isEmpty
                    ? "nothing arrived"
                    : "\(rolledBack.notifications.count) notification(s) arrived from a transaction that rolled back (sent outside the transaction, e.g. through dblink?)",
                payload: rolledBack.notifications.first?.payload)
        }
        // Two rows in one transaction: as many notifications as a single INSERT sends, twice.
        guard let single = operations.first(where: { $0.kind == .insert && $0.isBase }), single.error == nil, !single.notifications.isEmpty,
            let double = operations.first(where: { $0.kind == .twoRowInsert }), double.error == nil
        else { return }
        for channel in Set(single.notifications.map(\.channel)).sorted() {
            let perSingle = single.notifications.filter { $0.channel == channel }.count
            let got = double.notifications.filter { $0.channel == channel }.count
            let sending = triggers.filter { $0.notifies && $0.channels.contains(channel) }
            let statementLevel = !sending.isEmpty && sending.allSatisfy { !$0.forEachRow }
            // The spec asks for one notification per row only where it declares this channel for INSERT and
            // does not say `once_per: transaction`; everything else is a wake-up signal until said otherwise.
            let perRow = spec.map { $0.notify[.insert] == channel && $0.oncePer == .row } ?? false
            if !perRow, spec?.notify[.insert] == channel {
                add(
                    "two rows in one transaction notify at least once on \(channel)", got >= 1 ? .passed : .failed,
                    got >= 1
                        ? "\(got) notification(s) (once_per: transaction)" : "two INSERTs committed together sent nothing on \(channel)",
                    fix: got >= 1 ? nil : "check that a trigger fires AFTER INSERT and notifies on '\(channel)'")
                continue
            }
            let expected = perSingle * 2
            if got >= expected {
                add("two rows in one transaction notify twice on \(channel)", .passed, "\(got) notifications")
                continue
            }
            let payload = double.notifications.first { $0.channel == channel }?.payload
            let what =
                statementLevel
                ? "\(sending.map(\.name).joined(separator: ", ")) \(sending.count == 1 ? "is a" : "are") FOR EACH STATEMENT trigger\(sending.count == 1 ? "" : "s"): two INSERTs committed together gave \(got) notification(s) on \(channel), not \(expected)"
                : "two INSERTs committed together gave \(got) notification(s) on \(channel), not \(expected): PostgreSQL delivers identical payloads of one transaction once"
            if perRow {
                add(
                    "two rows in one transaction notify twice on \(channel)", .failed,
                    what + "; the spec says one notification per row",
                    payload: payload,
                    fix: statementLevel
                        ? "a statement-level trigger cannot send one notification per row: make it FOR EACH ROW with the row's key in the payload, or write once_per: transaction in tables.\(table) if it is a wake-up signal"
                        : "put the row's key (its primary key) in the payload, or write once_per: transaction in tables.\(table) if it is a wake-up signal"
                )
            } else {
                add(
                    "two rows in one transaction notify twice on \(channel)", .warning,
                    what + " — fine for a wake-up signal, not for one event per row",
                    payload: payload,
                    fix: statementLevel
                        ? "nothing to do for a wake-up; if each row must reach the listener, use a FOR EACH ROW trigger with the row's key in the payload"
                        : "nothing to do for a wake-up; if each row must reach the listener, put the row's key in the payload")
            }
        }
    }

    // MARK: Payloads

    private mutating func judgePayloads() {
        var byChannel: [String: [(payload: String, operation: ExercisedOperation)]] = [:]
        for operation in operations where operation.error == nil {
            for notification in operation.notifications {
                byChannel[notification.channel, default: []].append((notification.payload, operation))
            }
        }
        for (channel, payloads) in byChannel.sorted(by: { $0.key < $1.key }) {
            if let channelSpec = channels[channel] {
                var failing: [(PayloadProblem, String, ExercisedOperation)] = []
                for (payload, operation) in payloads {
                    if let problem = PayloadJudge.problems(in: payload, for: channelSpec).first {
                        failing.append((problem, payload, operation))
                    }
                }
                let described = describe(channelSpec)
                if let (problem, payload, operation) = failing.first {
                    add(
                        "payloads on \(channel) match the spec (\(described))", .failed,
                        "\(failing.count) of \(payloads.count) payloads do not; the first, from \(operation.kind.rawValue) (\(operation.variant)): \(problem.message)",
                        payload: payload, row: operation.row, fix: fix(for: problem.kind, channel: channel))
                } else {
                    add(
                        "payloads on \(channel) match the spec (\(described))", .passed,
                        "\(payloads.count) payloads, largest \(payloads.map(\.payload.utf8.count).max() ?? 0) bytes")
                }
            } else {
                // No spec for this channel: the payloads must at least agree on one format.
                let formats = payloads.map { PayloadJudge.detectFormat($0.payload) }
                let jsonCount = formats.filter { $0 == .json }.count
                if jsonCount > 0, let index = formats.firstIndex(where: { $0 != .json }) {
                    let (payload, operation) = payloads[index]
                    add(
                        "payloads on \(channel) are all JSON", .failed,
                        "\(payloads.count - jsonCount) of \(payloads.count) payloads are not JSON while the others are; the first, from \(operation.kind.rawValue) (\(operation.variant))\(payload.isEmpty ? ", is empty" : "")",
                        payload: payload, row: operation.row,
                        fix:
                            "build the payload with json_build_object()/row_to_json() for every operation and every value; an empty payload on DELETE usually means it was built from NEW"
                    )
                } else {
                    let format = formats.first ?? .text
                    add(
                        "payloads on \(channel) are of one format", .passed,
                        "\(payloads.count) payloads, all \(format.rawValue), largest \(payloads.map(\.payload.utf8.count).max() ?? 0) bytes"
                    )
                }
            }
        }
    }

    private func describe(_ channel: ChannelSpec) -> String {
        switch channel.format {
        case .json: channel.fields.isEmpty ? "json" : "json: " + channel.fields.map { "\($0.name) \($0.type)" }.joined(separator: ", ")
        case .csv: "csv" + (channel.columns.map { ": \($0.count) columns" } ?? "")
        case .text: "text"
        }
    }

    private func fix(for kind: PayloadProblem.Kind, channel: String) -> String {
        switch kind {
        case .tooLong: "send the key, not the row: the consumer can fetch it (or use the journal, which has no size limit)"
        case .notJSON, .empty: "build the payload with json_build_object() (never by concatenating strings), for every operation"
        case .missingField, .wrongType, .nullNotAllowed: "make the trigger's payload match channels.\(channel).fields, or correct the spec"
        case .notCSV, .wrongColumnCount:
            "quote every CSV field (format('%s', quote_...)) so commas, quotes and newlines in values cannot split it"
        case .forbiddenWord: "leave that column out of the payload: consumers fetch what they are allowed to see"
        }
    }

    // MARK: DELETE built from NEW

    private mutating func judgeDeletePayloads() {
        guard let insert = operations.first(where: { $0.kind == .insert && $0.isBase && $0.error == nil }),
            let delete = operations.first(where: { $0.kind == .delete && $0.isBase && $0.error == nil })
        else { return }
        for notification in delete.notifications {
            let payload = notification.payload
            let trimmed = payload.trimmingCharacters(in: .whitespaces)
            var problem: String?
            let insertedPayload = insert.notifications.first { $0.channel == notification.channel }?.payload
            let insertWasEmpty = insertedPayload.map { ["", "null"].contains($0.trimmingCharacters(in: .whitespaces)) } ?? false
            if (trimmed.isEmpty || trimmed == "null") && !insertWasEmpty {
                // (An empty payload on every operation is a wake-up signal, not a row built from NEW.)
                problem = "the DELETE payload on \(notification.channel) is \(trimmed.isEmpty ? "empty" : "null")"
            } else if let deleted = jsonObject(payload),
                let inserted = insert.notifications.first(where: { $0.channel == notification.channel }).flatMap({ jsonObject($0.payload) })
            {
                let lost = inserted.keys.filter { key in !(inserted[key] is NSNull) && deleted[key] is NSNull }.sorted()
                if !lost.isEmpty {
                    problem =
                        "the DELETE payload on \(notification.channel) has null for \(lost.joined(separator: ", ")), which the INSERT payload filled"
                }
            }
            if let problem {
                add(
                    "DELETE payload describes the deleted row", .failed, "\(problem): it is built from NEW, which is NULL on DELETE",
                    payload: payload, fix: "use OLD on DELETE: CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END")
                return
            }
        }
        if !delete.notifications.isEmpty {
            add("DELETE payload describes the deleted row", .passed, "not empty, no field lost to NULL")
        }
    }

    private func jsonObject(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }
}
