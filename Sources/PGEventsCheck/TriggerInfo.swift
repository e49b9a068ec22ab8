public import PGEventsHarness

/// A user trigger, as the catalog describes it, with the channels its function notifies on.
public struct TriggerInfo: Sendable, Hashable {
    public enum Timing: String, Sendable, Hashable {
        case before = "BEFORE"
        case after = "AFTER"
        case insteadOf = "INSTEAD OF"
    }

    public var table: QualifiedName
    public var name: String
    /// `schema.function`.
    public var function: String
    public var timing: Timing
    public var operations: Set<TableOperation>
    public var firesOnTruncate: Bool
    public var forEachRow: Bool
    /// `pg_trigger.tgenabled`: `O` (origin and local), `D` (disabled), `R` (replica only), `A` (always).
    public var enabled: Character
    public var arguments: [String]
    /// Where its function (or a function it calls with the channel) notifies; empty: it does not notify.
    public var channelSources: [ChannelSource]
    /// Its `WHEN (…)` condition, as PostgreSQL prints it; nil without one.
    public var condition: String? = nil
    /// The columns of `UPDATE OF a, b`; empty: any UPDATE.
    public var updateColumns: [String] = []

    /// The channels known from the catalog.
    public var channels: [String] {
        var found: [String] = []
        for source in channelSources {
            for channel in resolutions(of: source) where !found.contains(channel) { found.append(channel) }
        }
        return found
    }
    /// Whether some channel can be known only by watching.
    public var hasUnresolvedChannel: Bool { channelSources.contains { resolutions(of: $0).isEmpty } }

    /// The channels `source` names: one, or one per operation the trigger fires on when it uses `TG_OP`.
    public func resolutions(of source: ChannelSource) -> [String] {
        if let channel = source.resolve(arguments: arguments, table: table) { return [channel] }
        return operations.sorted().compactMap { source.resolve(arguments: arguments, table: table, operation: $0) }
    }
    public var notifies: Bool { !channelSources.isEmpty }

    /// `O`/`A` fire for ordinary sessions; `R`/`A` for the logical replication apply worker.
    public var firesLocally: Bool { enabled == "O" || enabled == "A" }
    public var firesOnReplica: Bool { enabled == "R" || enabled == "A" }

    public var enabledDescription: String {
        switch enabled {
        case "O": "enabled"
        case "D": "disabled"
        case "R": "enabled for replica sessions only (ENABLE REPLICA)"
        case "A": "enabled always (ENABLE ALWAYS)"
        default: "tgenabled = \(enabled)"
        }
    }
}
