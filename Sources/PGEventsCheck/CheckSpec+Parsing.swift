import Foundation
import PGEvents
import PGEventsHarness
import PGEventsSystem

// Reading `pgevents.yml`. Every error is a `HarnessError` (`.invalidInput`) whose message starts with
// `file:line:column: key.path: `, so that a typo is found without reading the parser.
//
// ```yaml
// migrations: sql/migrations        # *.sql directory, relative to the spec's directory (default: that directory)
// postgres: [15, 18]                # major versions; one number allowed; default: [] (= the newest found)
// channels:
//   new_event:
//     format: json                  # json | csv | text (required)
//     fields: {event_id: string, chain_id: integer, note: string?}   # json only
//     columns: [op, schema, table, key, value]                       # csv only
//     max_bytes: 7999               # 1...7999; default: the server's limit
//     forbid: [password, secret, token]
// tables:
//   public.events:                  # schema.table, or table (= public.table)
//     notify: {insert: new_event}   # the operations that must notify and their channel; {}: none may
//     trigger: trigger_notify_new_event
//     values: {json: '{"type":"m.room.message"}'}
//     once_per: row                 # row (default): one notification per row | transaction: a wake-up signal
//   public.orders:
//     publication:                  # the table's changes go through this publication (or just: publication: NAME)
//       name: orders_pub
//       operations: [insert, update, delete]   # exactly these are published (default: all four, with truncate)
//       old: key                    # key (default) | full | none: the old values UPDATE/DELETE must carry
//       columns: [id, status]       # exactly these columns are published (default: not checked)
//       where: "status <> 'draft'"  # the row filter (default: not checked)
//     # notify may be left out when publication is given: it then means {}
// replication:
//   publication: event_json_pub
//   tables: [public.event_json]
//   subscriber_migrations: sql/subscriber
// ```
//
// A null value (`key:` with nothing after it, `~`, `null`) of an optional key is the same as leaving the key out.

extension CheckSpec {
    /// The keys of each level, for the "unknown key" errors.
    static let rootKeys: Set<String> = ["migrations", "postgres", "channels", "tables", "replication"]
    static let channelKeys: Set<String> = ["format", "fields", "columns", "max_bytes", "forbid"]
    static let tableKeys: Set<String> = ["notify", "trigger", "values", "once_per", "publication"]
    static let publicationKeys: Set<String> = ["name", "operations", "old", "columns", "where"]
    static let replicationKeys: Set<String> = ["publication", "tables", "subscriber_migrations"]
    /// PostgreSQL identifiers (channel, table, trigger, publication names) have at most 63 bytes.
    static let identifierBytes = 63

    /// Reads a spec file; relative paths in it are resolved against the file's directory.
    public init(contentsOf path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HarnessError(code: .invalidInput, message: "cannot read \(path): there is no such file")
        }
        if isDirectory.boolValue {
            throw HarnessError(
                code: .invalidInput, message: "cannot read \(path): it is a directory (give the spec file, e.g. \(path)/pgevents.yml)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw HarnessError(code: .invalidInput, message: "cannot read \(path): \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw HarnessError(code: .invalidInput, message: "cannot read \(path): it is not UTF-8 text")
        }
        let absolute = Self.resolve(path, against: FileManager.default.currentDirectoryPath)
        let directory = URL(fileURLWithPath: absolute).deletingLastPathComponent().standardizedFileURL.path
        try self.init(yaml: text, file: path, baseDirectory: directory)
        file = absolute
    }

    /// Parses a spec from YAML text. `file` names it in messages; relative paths are resolved against
    /// `baseDirectory` (itself resolved against the current directory when relative).
    public init(yaml: String, file: String, baseDirectory: String) throws {
        do {
            self = try Self.parse(yaml: yaml, file: file, baseDirectory: baseDirectory)
        } catch let error as ProcessorError {
            throw HarnessError(code: .invalidInput, message: error.message)
        }
    }

    private static func parse(yaml: String, file: String, baseDirectory: String) throws -> CheckSpec {
        let base = resolve(baseDirectory, against: FileManager.default.currentDirectoryPath)
        let document = try ConfigurationNode.parse(yaml, file: file)
        if document.isNull { throw ProcessorError(code: .invalidConfiguration, message: "\(file): the file is empty") }
        let root = try document.mapping(allowed: rootKeys)
        var spec = CheckSpec(migrations: base)
        if let node = present(root["migrations"]) {
            spec.migrations = resolve(try path(node, what: "the migrations directory"), against: base)
        }
        if let node = present(root["postgres"]) {
            spec.postgres = try postgresVersions(node)
        }
        if let node = present(root["channels"]) {
            for (name, keyNode, value) in try node.orderedEntries() {
                if name.isEmpty || name.utf8.count > identifierBytes {
                    throw keyNode.error("a channel name must have 1 to \(identifierBytes) bytes, '\(name)' has \(name.utf8.count)")
                }
                try refuseNUL(name, "a channel name", at: keyNode)
                spec.channels[name] = try channel(named: name, value)
            }
        }
        if let node = present(root["tables"]) {
            var written: [QualifiedName: String] = [:]
            for (name, keyNode, value) in try node.orderedEntries() {
                let table = try tableName(name, at: keyNode)
                if let earlier = written[table] {
                    throw keyNode.error("\(table) is given twice (as '\(earlier)' and as '\(name)')")
                }
                written[table] = name
                spec.tables[table] = try self.table(table, value)
            }
        }
        if let node = present(root["replication"]) {
            spec.replication = try replication(node, base: base)
        }
        return spec
    }

    // MARK: Sections

    private static func postgresVersions(_ node: ConfigurationNode) throws -> [Int] {
        var result: [Int] = []
        for item in node.isList ? try node.items() : [node] {
            let version = try item.int()
            guard (10...99).contains(version) else {
                throw item.error("\(version) is not a PostgreSQL major version (expected a whole number from 10 to 99, e.g. 15 or 18)")
            }
            if !result.contains(version) { result.append(version) }
        }
        return result
    }

    private static func channel(named name: String, _ node: ConfigurationNode) throws -> ChannelSpec {
        let fields = node.isNull ? [:] : try node.mapping(allowed: channelKeys)
        guard let formatNode = present(fields["format"]) else {
            throw node.error("'format' is missing: say how this channel's payloads are written (json, csv or text)")
        }
        let formatName = try formatNode.string()
        guard let format = PayloadFormat(rawValue: formatName) else {
            throw formatNode.error("unknown format '\(formatName)' (expected json, csv or text)")
        }
        var channel = ChannelSpec(name: name, format: format)
        if let node = present(fields["fields"]) {
            guard format == .json else {
                throw node.error("'fields' is only read with format: json (this channel's format is \(format.rawValue))")
            }
            for (field, typeNode) in try node.orderedMapping() {
                let typeName = try typeNode.string()
                guard let type = JSONFieldType(parsing: typeName) else {
                    throw typeNode.error(
                        "unknown field type '\(typeName)' (expected string, integer, number, boolean, object or array; add ? to allow null, e.g. string?)"
                    )
                }
                channel.fields.append((name: field, type: type))
            }
        }
        if let node = present(fields["columns"]) {
            guard format == .csv else {
                throw node.error("'columns' is only read with format: csv (this channel's format is \(format.rawValue))")
            }
            let columns = try node.strings()
            if columns.isEmpty { throw node.error("name at least one column (or leave 'columns' out)") }
            channel.columns = columns
        }
        if let node = present(fields["max_bytes"]) {
            let value = try node.int()
            guard (1...PayloadJudge.serverLimit).contains(value) else {
                throw node.error(
                    "max_bytes must be from 1 to \(PayloadJudge.serverLimit) (the most a NOTIFY payload can have), found \(value)")
            }
            channel.maxBytes = value
        }
        if let node = present(fields["forbid"]) {
            let words = try node.strings()
            for (word, item) in zip(words, try node.items()) where word.isEmpty {
                throw item.error("a forbidden word cannot be empty (it would match every payload)")
            }
            channel.forbid = words
        }
        return channel
    }

    private static func table(_ table: QualifiedName, _ node: ConfigurationNode) throws -> TableSpec {
        let fields = node.isNull ? [:] : try node.mapping(allowed: tableKeys)
        let publication = try present(fields["publication"]).map { try self.publication($0) }
        if fields["notify"] == nil, publication != nil {
            // Changes that go through a publication need no trigger: no trigger may notify unless the spec says so.
            return try tableDetails(TableSpec(table: table, notify: [:], publication: publication), fields)
        }
        guard let notifyNode = fields["notify"] else {
            throw node.error(
                "'notify' is missing: map the operations that must notify to their channel, e.g. {insert: new_event}, or write {} if none may"
            )
        }
        if notifyNode.isNull {
            throw notifyNode.error(
                "no value: map the operations that must notify to their channel, e.g. {insert: new_event}, or write {} if none may")
        }
        var notify: [TableOperation: String] = [:]
        for (name, keyNode, value) in try notifyNode.orderedEntries() {
            guard let operation = TableOperation(rawValue: name) else {
                throw keyNode.error("unknown operation '\(name)' (expected insert, update or delete)")
            }
            let channel = try value.string()
            if channel.isEmpty || channel.utf8.count > identifierBytes {
                throw value.error("a channel name must have 1 to \(identifierBytes) bytes, '\(channel)' has \(channel.utf8.count)")
            }
            try refuseNUL(channel, "a channel name", at: value)
            notify[operation] = channel
        }
        return try tableDetails(TableSpec(table: table, notify: notify, publication: publication), fields)
    }

    /// The table's keys other than `notify` and `publication`.
    private static func tableDetails(_ table: TableSpec, _ fields: [String: ConfigurationNode]) throws -> TableSpec {
        var spec = table
        if let node = present(fields["trigger"]) {
            spec.trigger = try identifier(node, what: "a trigger name")
        }
        if let node = present(fields["once_per"]) {
            let text = try node.string()
            guard let multiplicity = NotificationMultiplicity(rawValue: text) else {
                throw node.error(
                    "unknown value '\(text)' (expected row: one notification per row, or transaction: a wake-up signal that may be collapsed)"
                )
            }
            spec.oncePer = multiplicity
        }
        if let node = present(fields["values"]) {
            for (column, keyNode, value) in try node.orderedEntries() {
                if column.isEmpty || column.utf8.count > identifierBytes {
                    throw keyNode.error("a column name must have 1 to \(identifierBytes) bytes, '\(column)' has \(column.utf8.count)")
                }
                try refuseNUL(column, "a column name", at: keyNode)
                spec.values[column] = try value.string()
            }
        }
        return spec
    }

    private static func publication(_ node: ConfigurationNode) throws -> PublicationSpec {
        if !node.isList, (try? node.string()) != nil {  // publication: NAME, with the defaults
            return PublicationSpec(name: try identifier(node, what: "a publication name"))
        }
        let fields = try node.mapping(allowed: publicationKeys)
        guard let nameNode = present(fields["name"]) else {
            throw node.error("'name' is missing: the publication the table's changes go through, e.g. name: orders_pub")
        }
        var spec = PublicationSpec(name: try identifier(nameNode, what: "a publication name"))
        if let operationsNode = present(fields["operations"]) {
            var operations: Set<PublishedOperation> = []
            for item in try operationsNode.items() {
                let text = try item.string()
                guard let operation = PublishedOperation(rawValue: text) else {
                    throw item.error("unknown operation '\(text)' (expected insert, update, delete or truncate)")
                }
                if !operations.insert(operation).inserted { throw item.error("\(text) is listed twice") }
            }
            if operations.isEmpty {
                throw operationsNode.error("name at least one operation (a publication that publishes nothing sends nothing)")
            }
            spec.operations = operations
        }
        if let oldNode = present(fields["old"]) {
            let text = try oldNode.string()
            guard let old = OldValues(rawValue: text) else {
                throw oldNode.error(
                    "unknown value '\(text)' (expected key: the replica identity's key columns, full: every column (REPLICA IDENTITY FULL), or none)"
                )
            }
            if old != .none, spec.operations.isDisjoint(with: [.update, .delete]) {
                throw oldNode.error("old values come only with update and delete, which operations does not list (write old: none)")
            }
            spec.old = old
        }
        if let columnsNode = present(fields["columns"]) {
            var columns: [String] = []
            for item in try columnsNode.items() {
                let column = try identifier(item, what: "a column name")
                if columns.contains(column) { throw item.error("\(column) is listed twice") }
                columns.append(column)
            }
            if columns.isEmpty { throw columnsNode.error("name at least one column (or leave 'columns' out)") }
            spec.columns = columns
        }
        if let whereNode = present(fields["where"]) {
            let text = try whereNode.string().trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { throw whereNode.error("the row filter is empty (leave 'where' out to not check it)") }
            try refuseNUL(text, "a row filter", at: whereNode)
            spec.rowFilter = text
        }
        return spec
    }

    private static func replication(_ node: ConfigurationNode, base: String) throws -> ReplicationSpec {
        let fields = try node.mapping(allowed: replicationKeys)
        guard let publicationNode = present(fields["publication"]) else {
            throw node.error("'publication' is missing: the publication the subscriber subscribes to")
        }
        let publication = try identifier(publicationNode, what: "a publication name")
        guard let tablesNode = present(fields["tables"]) else {
            throw node.error("'tables' is missing: the replicated tables, e.g. [public.event_json]")
        }
        var tables: [QualifiedName] = []
        let items = try tablesNode.items()
        for item in items {
            let table = try tableName(try item.string(), at: item)
            if tables.contains(table) { throw item.error("\(table) is listed twice") }
            tables.append(table)
        }
        if tables.isEmpty { throw tablesNode.error("name at least one replicated table") }
        guard let subscriberNode = present(fields["subscriber_migrations"]) else {
            throw node.error("'subscriber_migrations' is missing: the directory of the subscriber's *.sql migrations")
        }
        let subscriber = resolve(try path(subscriberNode, what: "the subscriber's migrations directory"), against: base)
        return ReplicationSpec(publication: publication, tables: tables, subscriberMigrations: subscriber)
    }

    // MARK: Values

    /// The node, unless it is absent or null.
    private static func present(_ node: ConfigurationNode?) -> ConfigurationNode? {
        guard let node, !node.isNull else { return nil }
        return node
    }

    private static func path(_ node: ConfigurationNode, what: String) throws -> String {
        let text = try node.string()
        if text.isEmpty { throw node.error("\(what) is an empty string") }
        return text
    }

    private static func identifier(_ node: ConfigurationNode, what: String) throws -> String {
        let text = try node.string()
        if text.isEmpty || text.utf8.count > identifierBytes {
            throw node.error("\(what) must have 1 to \(identifierBytes) bytes, '\(text)' has \(text.utf8.count)")
        }
        try refuseNUL(text, what, at: node)
        return text
    }

    /// PostgreSQL names (like all PostgreSQL text) cannot hold a NUL byte.
    private static func refuseNUL(_ text: String, _ what: String, at node: ConfigurationNode) throws {
        if text.utf8.contains(0) {
            throw node.error("\(what) cannot contain a NUL byte, '\(TextExcerpt.excerpt(text, limit: 80))' does")
        }
    }

    private static func tableName(_ text: String, at node: ConfigurationNode) throws -> QualifiedName {
        guard let name = QualifiedName(parsing: text) else {
            throw node.error("bad table name '\(text)' (expected schema.table, or table for public.table)")
        }
        for part in [name.schema, name.name] where part.utf8.count > identifierBytes {
            throw node.error(
                "bad table name '\(text)': '\(part)' has \(part.utf8.count) bytes, PostgreSQL names have at most \(identifierBytes)")
        }
        try refuseNUL(text, "a table name", at: node)
        return name
    }

    /// `path` made absolute against `base` (when relative) and normalised (`.`, `..`, repeated `/`).
    static func resolve(_ path: String, against base: String) -> String {
        let absolute: String
        if path.hasPrefix("/") {
            absolute = path
        } else if base.hasPrefix("/") {
            absolute = base.hasSuffix("/") ? base + path : base + "/" + path
        } else {
            absolute = resolve(base, against: FileManager.default.currentDirectoryPath) + "/" + path
        }
        return URL(fileURLWithPath: absolute).standardizedFileURL.path
    }
}
