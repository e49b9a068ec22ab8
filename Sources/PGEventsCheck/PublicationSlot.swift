import Foundation
import PGEvents
import PGEventsHarness
import PGEventsPostgres

/// One change of the checked table as a consumer of the publication receives it from the slot.
struct PublishedChange: Sendable, Hashable {
    var operation: PublishedOperation
    /// The published columns, as the relation message describes them (a column list leaves some out).
    var columns: [String]
    /// The replica identity's columns among them (all of them under `REPLICA IDENTITY FULL`).
    var keyColumns: [String]
    /// The new row (INSERT, UPDATE): each column's text, nil for NULL; a TOASTed column the change did not
    /// touch is absent (see `unchanged`).
    var new: [String: String?]?
    /// The old row, as far as the server sends it (UPDATE, DELETE).
    var old: [String: String?]?
    /// Whether `old` holds only the replica identity's key (`K`) rather than the whole old row (`O`).
    var oldIsKey: Bool = false
}

/// A temporary logical replication slot with the `pgoutput` plugin, on a connection of its own in the database an
/// exercise runs in: `changes()` decodes what committed since the last call, with the processor's decoder. The
/// slot is created before the first statement and disappears with its connection (`close()`).
final class PublicationSlot {
    let connection: PostgresConnection
    let name: String
    let publication: String
    let table: QualifiedName
    private var relations: [UInt32: PgOutputRelation] = [:]

    /// Every wait of the slot's connection (creating the slot waits for the server's running transactions) is bounded.
    static let statementTimeout = "30s"

    private init(connection: PostgresConnection, name: String, publication: String, table: QualifiedName) {
        self.connection = connection
        self.name = name
        self.publication = publication
        self.table = table
    }

    /// Creates the slot in `database`.
    static func create(in database: CheckDatabase, publication: String, table: QualifiedName) async throws -> PublicationSlot {
        let connection = try await database.connect()
        let name = "pgevents_check_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        do {
            try await connection.execute("SET statement_timeout = '\(statementTimeout)'")
            _ = try await connection.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput', true)", [name])
        } catch {
            await connection.close()
            throw error
        }
        return PublicationSlot(connection: connection, name: name, publication: publication, table: table)
    }

    /// The changes of `table` committed since the last call, in commit order.
    func changes() async throws -> [PublishedChange] {
        let rows = try await connection.query(
            """
            SELECT encode(data, 'hex') FROM pg_logical_slot_get_binary_changes($1, NULL, NULL,
                'proto_version', '1', 'publication_names', $2)
            """, [name, PostgresIdentifier.quote(publication)])
        var changes: [PublishedChange] = []
        for row in rows {
            let bytes = Self.bytes(hex: try row.decode(String.self, at: 0))
            try bytes.withUnsafeBytes { buffer in
                if let change = try decode(try PgOutputMessage.read(buffer)) { changes.append(change) }
            }
        }
        return changes
    }

    func close() async { await connection.close() }

    private func decode(_ message: PgOutputMessage) throws -> PublishedChange? {
        switch message {
        case .relation(let relation):
            relations[relation.id] = relation
            return nil
        case .insert(let id, let new):
            guard let relation = ours(id) else { return nil }
            return change(.insert, relation, new: new, old: nil, oldIsKey: false)
        case .update(let id, let old, let oldIsKey, let new):
            guard let relation = ours(id) else { return nil }
            return change(.update, relation, new: new, old: old, oldIsKey: oldIsKey)
        case .delete(let id, let old, let oldIsKey):
            guard let relation = ours(id) else { return nil }
            return change(.delete, relation, new: nil, old: old, oldIsKey: oldIsKey)
        case .truncate(let ids, _, _):
            guard let relation = ids.lazy.compactMap({ self.ours($0) }).first else { return nil }
            return change(.truncate, relation, new: nil, old: nil, oldIsKey: false)
        case .begin, .commit, .message, .ignored:
            return nil
        }
    }

    private func ours(_ id: UInt32) -> PgOutputRelation? {
        guard let relation = relations[id], relation.schema == table.schema, relation.name == table.name else { return nil }
        return relation
    }

    private func change(
        _ operation: PublishedOperation, _ relation: PgOutputRelation, new: PgOutputMessage.TupleData?, old: PgOutputMessage.TupleData?,
        oldIsKey: Bool
    ) -> PublishedChange {
        PublishedChange(
            operation: operation, columns: relation.columns.map(\.name), keyColumns: relation.columns.filter(\.isKey).map(\.name),
            new: new.map { row($0, relation) }, old: old.map { row($0, relation) }, oldIsKey: oldIsKey)
    }

    /// A tuple's values by column; a key-only old tuple holds NULLs for the other columns, which are left out.
    private func row(_ tuple: PgOutputMessage.TupleData, _ relation: PgOutputRelation) -> [String: String?] {
        var values: [String: String?] = [:]
        for (column, value) in zip(relation.columns, tuple.values) {
            switch value {
            case .null: values[column.name] = .some(nil)
            case .unchanged: continue
            case .text(let bytes): values[column.name] = String(decoding: bytes, as: UTF8.self)
            }
        }
        return values
    }

    /// `bytea` as `encode(…, 'hex')` writes it.
    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for character in hex.utf8 {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = character - UInt8(ascii: "A") + 10
            default: continue
            }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return bytes
    }
}
