/// How the row of an event is looked up: the row of `schema.table` whose column `keyColumn` equals the event's
/// value at `valuePath` (`fetch: {table: public.events, key: event_id, from: event.event_id}`).
public struct FetchSpec: Sendable, Hashable {
    public var schema: String
    public var table: String
    public var keyColumn: String
    /// An `event.` path.
    public var valuePath: FieldPath

    public init(schema: String = "public", table: String, keyColumn: String, valuePath: FieldPath) {
        self.schema = schema
        self.table = table
        self.keyColumn = keyColumn
        self.valuePath = valuePath
    }

    /// The key to look up for `context`, as text for `$1`: a string as it is, a number or boolean as its JSON text.
    /// `nil` when the value is missing, null, an array or an object: then there is no row to look up.
    public func parameter(for context: EvaluationContext) -> String? {
        switch context.value(at: valuePath) {
        case .string(let string): string
        case .integer(let integer): String(integer)
        case .number(let number, let literal) where number.isFinite: EventValue.number(number, literal: literal).jsonText
        case .bool(let bool): bool ? "true" : "false"
        default: nil
        }
    }
}
