import NIOCore
import Synchronization

/// A stream entry made ready for fan-out: parsed once, its items' relations known, its messages rendered once
/// per (database, visible relations) and shared by every client they fit.
///
/// A single job is one item (its payload). A batch (`count` field) is its payload's `items`. What a client with
/// a relation filter receives is the items of relations it may read; an entry with none of them is not sent.
public final class GatewayEvent: Sendable {
    /// The stream the entry is in.
    public let stream: ServeConfiguration.Stream
    /// The entry's ID.
    public let id: StreamID
    /// The processor channel the entry came from (the `channel` field).
    public let channel: String?
    let fields: [String: String]
    let payload: JSONValue?
    let items: [Item]
    let isBatch: Bool
    // Messages already rendered, by who they were rendered for. Guarded by the mutex: fan-out renders from the
    // reader's task, catch-up from clients' tasks.
    private let rendered = Mutex<[RenderKey: Rendering?]>([:])

    /// A message as text (SSE) and as the bytes of a WebSocket text frame, made once and shared by every client
    /// it is for (a `ByteBuffer` is copied on write only, so sending it to a thousand clients copies nothing).
    struct Rendering: Sendable {
        var text: String
        var bytes: ByteBuffer
    }

    struct Item: Sendable {
        var relation: String?
        var value: JSONValue
    }

    private struct RenderKey: Hashable {
        var database: String
        var relations: Set<String>?
    }

    /// Parses an entry of `stream`.
    public init(entry: StreamEntry, stream: ServeConfiguration.Stream) {
        self.stream = stream
        self.id = entry.id
        self.fields = entry.fields
        self.channel = entry.fields["channel"]
        let payload = entry.fields["payload"].flatMap(JSONValue.parse)
        self.payload = payload
        self.isBatch = entry.fields["count"] != nil && entry.fields["seq"] == nil
        let values: [JSONValue]
        if isBatch, case .array(let list)? = payload?["items"] {
            values = list
        } else if let payload {
            values = [payload]
        } else {
            values = [.string(entry.fields["payload"] ?? "")]
        }
        items = values.map { Item(relation: Self.relation(of: $0, source: stream.relation), value: $0) }
    }

    /// The relation an item names, `schema.table`, or nil when its payload does not say.
    static func relation(of value: JSONValue, source: ServeConfiguration.RelationSource?) -> String? {
        switch source {
        case nil: return nil
        case .field(let name)?: return value[name]?.string
        case .fields(let schema, let table)?:
            guard let schema = value[schema]?.string, let table = value[table]?.string else { return nil }
            return "\(schema).\(table)"
        }
    }

    /// Whether a client of `database` receives anything of this stream at all.
    public func isVisible(toDatabase database: String) -> Bool {
        stream.database == nil || stream.database == database
    }

    /// The message for a client of `database` allowed `relations` (nil: every relation, including items whose
    /// relation is unknown), or nil when nothing of the entry is for it.
    public func message(database: String, relations: Set<String>?) -> String? {
        rendering(database: database, relations: relations)?.text
    }

    /// ``message(database:relations:)`` with its bytes.
    func rendering(database: String, relations: Set<String>?) -> Rendering? {
        guard isVisible(toDatabase: database) else { return nil }
        let key = RenderKey(
            database: database,
            relations: relations.flatMap { filter in
                // Clients whose filter lets every item through share the unfiltered rendering.
                items.allSatisfy { $0.relation.map(filter.contains) ?? false } ? nil : filter
            })
        if let cached = rendered.withLock({ $0[key] }) { return cached }
        let visible = key.relations.map { filter in items.filter { $0.relation.map(filter.contains) ?? false } } ?? items
        let text = visible.isEmpty ? nil : render(database: database, items: visible)
        let rendering = text.map { Rendering(text: $0, bytes: ByteBuffer(string: $0)) }
        rendered.withLock { $0[key] = rendering }
        return rendering
    }

    private func render(database: String, items visible: [Item]) -> String {
        var message: [String: JSONValue] = [
            "id": .string(id.description),
            "stream": .string(stream.key),
        ]
        if let channel { message["channel"] = .string(channel) }
        switch stream.format {
        case .raw:
            if isBatch {
                message["type"] = .string("batch")
                message["count"] = .number(Double(visible.count))
                var body: [String: JSONValue] = [:]
                if case .object(let members)? = payload { body = members }
                body["items"] = .array(visible.map(\.value))
                body["count"] = .number(Double(visible.count))
                message["payload"] = .object(body)
            } else {
                message["type"] = .string("event")
                message["payload"] = visible[0].value
            }
        case .gc2:
            let db = stream.database ?? database
            message["type"] = .string("batch")
            message["db"] = .string(db)
            message["batch"] = .object([db: .object(Self.gc2Tables(visible))])
        }
        return JSONValue.object(message).text
    }

    /// GC2's per-table grouping: `{"schema.table": {"INSERT": [[key column, key]], …, "full_data": [rows]}}`.
    static func gc2Tables(_ items: [Item]) -> [String: JSONValue] {
        var tables: [String: [String: [JSONValue]]] = [:]
        for item in items {
            let table = item.relation ?? item.value["table"]?.string ?? "unknown"
            let op = item.value["op"]?.string ?? "UNKNOWN"
            let keyColumn = item.value["key_column"]?.scalarText ?? "key"
            let key = item.value["key"]?.scalarText ?? ""
            tables[table, default: [:]][op, default: []].append(.array([.string(keyColumn), .string(key)]))
            if op != "DELETE", let row = item.value["row"], case .object = row {
                tables[table, default: [:]]["full_data", default: []].append(row)
            }
        }
        return tables.mapValues { groups in .object(groups.mapValues { .array($0) }) }
    }
}
