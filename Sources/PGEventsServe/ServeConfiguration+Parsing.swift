import Foundation
public import PGEvents

extension ServeConfiguration {
    /// Reads the YAML file at `path`.
    public init(contentsOf path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ProcessorError(code: .invalidConfiguration, message: "\(path): cannot read the file: \(error.localizedDescription)")
        }
        try self.init(yaml: text, file: path)
    }

    /// Parses YAML text; every problem names its place in the file.
    public init(yaml: String, file: String = "serve.yml") throws {
        let root = try ConfigurationNode.parse(yaml, file: file)
        let top = try root.mapping(allowed: ["listen", "streams", "auth", "clients", "sql"])
        self.init()
        if let listen = top["listen"] {
            let fields = try listen.mapping(allowed: ["host", "port"])
            if let host = fields["host"] {
                self.host = try host.string()
                if self.host.isEmpty { throw host.error("the host is empty") }
            }
            if let port = fields["port"] { self.port = try port.int(in: 0...65_535) }
        }
        guard let streamsNode = top["streams"] else { throw root.error("'streams' is missing: name at least one stream to fan out") }
        for item in try streamsNode.items() {
            streams.append(try Self.stream(item))
        }
        if streams.isEmpty { throw streamsNode.error("the list is empty: name at least one stream to fan out") }
        var seen: Set<String> = []
        for (index, stream) in streams.enumerated() where !seen.insert(stream.key).inserted {
            throw try streamsNode.items()[index].error("stream '\(stream.key)' is listed twice")
        }
        if let auth = top["auth"] { self.auth = try Self.auth(auth) }
        if auth.key == nil && auth.jwksFile == nil {
            throw (top["auth"] ?? root).error("no signing key: set auth.key ({env: NAME} or {file: PATH}) or auth.jwks")
        }
        if let clients = top["clients"] { self.clients = try Self.clients(clients) }
        if let sql = top["sql"] {
            let fields = try sql.mapping(allowed: ["enabled", "statement_timeout", "max_rows", "max_queued"])
            if let enabled = fields["enabled"] { self.sql.enabled = try enabled.bool() }
            if let timeout = fields["statement_timeout"] { self.sql.statementTimeout = try timeout.seconds(in: 0.001...3600) }
            if let rows = fields["max_rows"] { self.sql.maxRows = try rows.int(in: 1...1_000_000) }
            if let queued = fields["max_queued"] { self.sql.maxQueued = try queued.int(in: 1...10_000) }
        }
    }

    private static func stream(_ node: ConfigurationNode) throws -> Stream {
        let fields = try node.mapping(allowed: ["key", "database", "format", "relation"])
        guard let keyNode = fields["key"] else { throw node.error("'key' is missing (the Redis key of the stream)") }
        let key = try keyNode.string()
        if key.isEmpty { throw keyNode.error("the key is empty") }
        if key.contains(",") || key.contains("@") {
            throw keyNode.error("a stream key read by serve cannot hold ',' or '@' (they separate a resume cursor's parts)")
        }
        var stream = Stream(key: key)
        if let database = fields["database"] { stream.database = try database.string() }
        if let format = fields["format"] {
            let text = try format.string()
            guard let value = Format(rawValue: text) else { throw format.error("unknown format '\(text)' (expected raw or gc2)") }
            stream.format = value
        }
        if let relation = fields["relation"] {
            if relation.isList {
                let names = try relation.strings()
                guard names.count == 2, !names[0].isEmpty, !names[1].isEmpty else {
                    throw relation.error("expected [schema field, table field], or one field holding schema.table")
                }
                stream.relation = .fields(schema: names[0], table: names[1])
            } else {
                let name = try relation.string()
                if name.isEmpty { throw relation.error("the field name is empty") }
                stream.relation = .field(name)
            }
        } else if stream.format == .gc2 {
            stream.relation = .field("table")  // the gc2 items' own field
        }
        return stream
    }

    private static func auth(_ node: ConfigurationNode) throws -> Auth {
        let fields = try node.mapping(allowed: ["algorithm", "key", "jwks", "claims", "leeway", "privilege"])
        var auth = Auth()
        if let algorithm = fields["algorithm"] {
            let text = try algorithm.string()
            guard let value = Algorithm(rawValue: text.uppercased()) else {
                throw algorithm.error(
                    "unknown algorithm '\(text)' (expected one of: \(Algorithm.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            auth.algorithm = value
        }
        if let key = fields["key"] {
            let source = try key.mapping(allowed: ["env", "file"])
            switch (source["env"], source["file"]) {
            case (let env?, nil):
                let name = try env.string()
                if name.isEmpty { throw env.error("the variable's name is empty") }
                auth.key = .environment(name)
            case (nil, let file?):
                let path = try file.string()
                if path.isEmpty { throw file.error("the path is empty") }
                auth.key = .file(path)
            default:
                throw key.error("expected {env: NAME} or {file: PATH}")
            }
        }
        if let jwks = fields["jwks"] {
            auth.jwksFile = try jwks.string()
            if auth.jwksFile?.isEmpty == true { throw jwks.error("the path is empty") }
        }
        if let claims = fields["claims"] {
            let names = try claims.mapping(allowed: ["database", "user", "superuser", "role"])
            func name(_ key: String) throws -> String? {
                guard let node = names[key] else { return nil }
                let value = try node.string()
                if value.isEmpty { throw node.error("the claim name is empty") }
                return value
            }
            if let value = try name("database") { auth.claims.database = value }
            if let value = try name("user") {
                auth.claims.user = value
                if names["role"] == nil { auth.claims.role = value }
            }
            if let value = try name("superuser") { auth.claims.superuser = value }
            if let value = try name("role") { auth.claims.role = value }
        }
        if let leeway = fields["leeway"] {
            auth.leeway = try leeway.isNull ? 0 : leeway.seconds(in: 0.001...3600)
        }
        if let privilege = fields["privilege"] {
            let text = try privilege.string().uppercased()
            let known = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]
            guard known.contains(text) else {
                throw privilege.error("unknown privilege '\(text)' (expected one of: \(known.joined(separator: ", ")))")
            }
            auth.privilege = text
        }
        return auth
    }

    private static func clients(_ node: ConfigurationNode) throws -> Clients {
        let fields = try node.mapping(allowed: ["queue", "max_connections", "max_message_bytes", "ping_interval", "block", "close_timeout"])
        var clients = Clients()
        if let queue = fields["queue"] { clients.queue = try queue.int(in: 1...1_000_000) }
        if let max = fields["max_connections"] { clients.maxConnections = try max.int(in: 1...1_000_000) }
        if let bytes = fields["max_message_bytes"] { clients.maxMessageBytes = try bytes.int(in: 16...(64 << 20)) }
        if let ping = fields["ping_interval"] { clients.pingInterval = try ping.seconds(in: 0.01...3600) }
        if let block = fields["block"] { clients.block = try block.seconds(in: 0.01...60) }
        if let close = fields["close_timeout"] { clients.closeTimeout = try close.seconds(in: 0.01...3600) }
        return clients
    }
}
