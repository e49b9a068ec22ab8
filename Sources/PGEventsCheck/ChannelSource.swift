public import PGEventsHarness

/// Where a notifying function sends: a channel name, found by reading the function's source.
public enum ChannelSource: Sendable, Hashable, CustomStringConvertible {
    /// A literal: `pg_notify('orders', …)` or `NOTIFY orders`.
    case literal(String)
    /// The trigger's argument: `pg_notify(TG_ARGV[0], …)`.
    case argument(Int)
    /// `'prefix_' || TG_TABLE_NAME` and the like: literals, `TG_TABLE_NAME`, `TG_TABLE_SCHEMA` and `TG_ARGV[n]`
    /// joined by `||`.
    case concatenation([ChannelSource])
    /// The table the trigger is on (`TG_TABLE_NAME`) or its schema (`TG_TABLE_SCHEMA`).
    case tableName, tableSchema
    /// The operation that fired the trigger (`TG_OP`: `INSERT`, `UPDATE`, `DELETE`), as in pgmq's
    /// `'pgmq.' || TG_TABLE_NAME || '.' || TG_OP`.
    case operation
    /// Anything else (a variable, a lookup): known only by watching.
    case dynamic(String)

    public var description: String {
        switch self {
        case .literal(let name): "'\(name)'"
        case .argument(let index): "TG_ARGV[\(index)]"
        case .concatenation(let parts): parts.map(\.description).joined(separator: " || ")
        case .tableName: "TG_TABLE_NAME"
        case .tableSchema: "TG_TABLE_SCHEMA"
        case .operation: "TG_OP"
        case .dynamic(let expression): expression
        }
    }

    /// The channel for a trigger with `arguments` on `table`, fired by `operation`; nil when it cannot be known
    /// from the catalog (or depends on `TG_OP` and no operation is given).
    public func resolve(arguments: [String], table: QualifiedName, operation: TableOperation? = nil) -> String? {
        switch self {
        case .operation: operation?.keyword
        case .literal(let name): name
        case .argument(let index): arguments.indices.contains(index) ? arguments[index] : nil
        case .tableName: table.name
        case .tableSchema: table.schema
        case .concatenation(let parts):
            parts.reduce(Optional("")) { text, part in
                guard let text, let value = part.resolve(arguments: arguments, table: table, operation: operation) else { return nil }
                return text + value
            }
        case .dynamic: nil
        }
    }
}
