/// How a channel's jobs are batched (`batch: {max_items: 10, max_seconds: 2, group_by: [event.table, event.op]}`).
public struct BatchSpec: Sendable, Hashable {
    public var maxItems: Int
    public var maxAge: Duration
    /// The fields whose values make an event's group; empty: one group.
    public var groupBy: [FieldPath]

    public init(maxItems: Int = 10, maxAge: Duration = .seconds(2), groupBy: [FieldPath] = []) {
        self.maxItems = maxItems
        self.maxAge = maxAge
        self.groupBy = groupBy
    }

    /// The group of `context`: a JSON object of its `groupBy` paths and their values (a missing one is null), so
    /// that different values never make the same key: `{"event.table":"parcels","event.op":"INSERT"}`; `{}` when
    /// `groupBy` is empty.
    public func key(for context: EvaluationContext) -> String {
        EventValue.object(EventObject(groupBy.map { ($0.description, context.value(at: $0) ?? .null) })).jsonText
    }
}
