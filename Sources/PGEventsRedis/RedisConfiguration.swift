/// Where and how to connect to Redis: the parsed form of a `redis://` or `unix://` URL.
///
/// Accepted URLs:
/// - `redis://[[username]:password@]host[:port][/database]` — port 6379 and database 0 by default; IPv6 hosts
///   in brackets. As in `redis-cli`, userinfo without a `:` is the password.
/// - `unix:///path/to/redis.sock[?db=N&password=…]` and `redis+unix:///path/to/redis.sock?db=N`.
///
/// - `redis+cluster://[[username]:password@]host[:port][?addr=host:port&addr=…]` — a Redis Cluster: the host (and
///   each `addr`, as go-redis reads them) is a node to discover the cluster from; every node takes the same
///   credentials; the database is always 0 (``RedisCluster``).
///
/// Query parameters (all forms): `db`, `username`, `password`, `connect_timeout` and `command_timeout` (seconds).
/// Username, password and socket path are percent-decoded.
/// `description` and `url` mask the password; nothing in this module logs or throws it.
public struct RedisConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Host name or IP address of the server (ignored when `unixSocketPath` is set).
    public var host: String
    /// TCP port of the server (ignored when `unixSocketPath` is set).
    public var port: Int
    /// Path of the server's Unix domain socket; when set, `host` and `port` are not used.
    public var unixSocketPath: String?
    /// The logical database to `SELECT` after connecting.
    public var database: Int
    /// The ACL user for `AUTH` (Redis 6+); nil authenticates as the default user.
    public var username: String?
    /// The password for `AUTH`; nil sends no `AUTH`.
    public var password: String?
    /// Seconds to wait for the connection to be established.
    public var connectTimeout: Double
    /// Seconds to wait for each reply, or nil to wait as long as it takes (needed for long blocking commands
    /// such as `BRPOP key 0`). A command that times out leaves the connection unusable.
    public var commandTimeout: Double?
    /// Whether `host`/`port` (and ``clusterSeeds``) are nodes of a Redis Cluster, to be reached through ``RedisCluster``.
    public var isCluster: Bool
    /// More cluster nodes to discover the cluster from when `host`/`port` does not answer.
    public var clusterSeeds: [RedisNodeAddress]

    /// The port Redis listens on unless configured otherwise.
    public static let defaultPort = 6379
    /// The connect timeout used unless configured otherwise, in seconds.
    public static let defaultConnectTimeout = 5.0

    /// Creates a configuration from its fields; `connect` validates them.
    public init(
        host: String = "127.0.0.1", port: Int = RedisConfiguration.defaultPort, unixSocketPath: String? = nil,
        database: Int = 0, username: String? = nil, password: String? = nil,
        connectTimeout: Double = RedisConfiguration.defaultConnectTimeout,
        commandTimeout: Double? = nil, isCluster: Bool = false, clusterSeeds: [RedisNodeAddress] = []
    ) {
        self.host = host
        self.port = port
        self.unixSocketPath = unixSocketPath
        self.database = database
        self.username = username
        self.password = password
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.isCluster = isCluster
        self.clusterSeeds = clusterSeeds
    }

    /// The same credentials and timeouts for one node at `address` (a cluster's node, reached directly).
    public func node(_ address: RedisNodeAddress) -> RedisConfiguration {
        var node = self
        node.host = address.host
        node.port = address.port
        node.isCluster = false
        node.clusterSeeds = []
        return node
    }

    /// The node this configuration names first.
    public var address: RedisNodeAddress { RedisNodeAddress(host: host, port: port) }

    /// Parses a `redis://`, `unix://` or `redis+unix://` URL.
    public init(_ url: String) throws(RedisError) {
        self.init()
        try parse(url)
        try validate()
    }

    /// Throws `.invalidConfiguration` if a field is out of range or cannot be passed to hiredis.
    public func validate() throws(RedisError) {
        if let unixSocketPath {
            guard !unixSocketPath.isEmpty else { throw Self.invalid("the unix socket path is empty") }
            guard !unixSocketPath.utf8.contains(0) else { throw Self.invalid("the unix socket path contains a NUL byte") }
            // hiredis copies the path into sockaddr_un.sun_path (108 bytes) and silently truncates a longer one.
            guard unixSocketPath.utf8.count <= Self.maximumSocketPathLength else {
                throw Self.invalid(
                    "the unix socket path is \(unixSocketPath.utf8.count) bytes long; at most \(Self.maximumSocketPathLength) are supported"
                )
            }
        } else {
            guard !host.isEmpty else { throw Self.invalid("the host is empty") }
            guard !host.utf8.contains(0) else { throw Self.invalid("the host contains a NUL byte") }
            guard (1...65535).contains(port) else { throw Self.invalid("invalid port \(port): expected 1 to 65535") }
        }
        guard (0...Int(Int32.max)).contains(database) else {
            throw Self.invalid("invalid database \(database): expected a non-negative integer")
        }
        if username != nil && password == nil {
            throw Self.invalid("a username needs a password")
        }
        guard connectTimeout.isFinite && connectTimeout > 0 else {
            throw Self.invalid("invalid connect timeout \(connectTimeout): expected a positive number of seconds")
        }
        if let commandTimeout, !(commandTimeout.isFinite && commandTimeout > 0) {
            throw Self.invalid("invalid command timeout \(commandTimeout): expected a positive number of seconds")
        }
        if isCluster {
            guard unixSocketPath == nil else { throw Self.invalid("a Redis Cluster is reached over TCP (redis+cluster://host:port)") }
            guard database == 0 else { throw Self.invalid("a Redis Cluster has database 0 only; \(database) was asked for") }
        }
    }

    static let maximumSocketPathLength = 107

    // MARK: URLs

    /// The URL with the password masked (`redis://user:********@host:6379/0`).
    public var url: String { url(password: .masked) }

    /// The URL including the password: parse it again or pass it to a child process, never to a log.
    public var urlIncludingSecrets: String { url(password: .included) }

    /// The URL with the password masked.
    public var description: String { url }

    /// `RedisConfiguration(<url>)` with the password masked.
    public var debugDescription: String { "RedisConfiguration(\(description))" }

    /// The fields, with the password masked (so `dump` and debuggers do not show it).
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "unixSocketPath": unixSocketPath as Any, "database": database,
                "username": username as Any, "password": password.map { _ in "********" } as Any,
                "connectTimeout": connectTimeout, "commandTimeout": commandTimeout as Any, "isCluster": isCluster,
                "clusterSeeds": clusterSeeds,
            ], displayStyle: .struct)
    }

    /// The URL without any password or timeouts, for messages (`redis://user@host:6379/0`).
    var target: String { url(password: .omitted, timeouts: false) }

    enum PasswordStyle { case masked, included, omitted }

    func url(password style: PasswordStyle, timeouts: Bool = true) -> String {
        let secret: String? =
            switch style {
            case .masked: password.map { _ in "********" }
            case .included: password.map { Self.percentEncode($0, keeping: []) }
            case .omitted: nil
            }
        var query: [String] = []
        var text: String
        if let unixSocketPath {
            text = "unix://" + Self.percentEncode(unixSocketPath, keeping: [UInt8(ascii: "/")])
            query.append("db=\(database)")
            if let username { query.append("username=" + Self.percentEncode(username, keeping: [])) }
            if let secret { query.append("password=" + secret) }
        } else {
            var userinfo = ""
            if let username { userinfo = Self.percentEncode(username, keeping: []) }
            if let secret { userinfo += ":" + secret }
            if !userinfo.isEmpty { userinfo += "@" }
            if isCluster {
                text = "redis+cluster://\(userinfo)\(address)"
                query += clusterSeeds.map { "addr=\($0)" }
            } else {
                text = "redis://\(userinfo)\(address)/\(database)"
            }
        }
        if timeouts {
            if connectTimeout != Self.defaultConnectTimeout { query.append("connect_timeout=\(connectTimeout)") }
            if let commandTimeout { query.append("command_timeout=\(commandTimeout)") }
        }
        if !query.isEmpty { text += "?" + query.joined(separator: "&") }
        return text
    }

    // MARK: Parsing

    private mutating func parse(_ url: String) throws(RedisError) {
        guard let separator = url.firstRange(of: "://") else {
            throw Self.invalid("expected a URL such as redis://host:6379/0 or unix:///path/to/redis.sock")
        }
        let scheme = url[..<separator.lowerBound].lowercased()
        var rest = url[separator.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var queryText: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        var pathDatabase: Int?
        switch scheme {
        case "redis":
            pathDatabase = try parseTCP(rest)
        case "redis+cluster":
            isCluster = true
            pathDatabase = try parseTCP(rest)
        case "unix", "redis+unix":
            try parseUnix(rest)
        case "rediss":
            throw Self.invalid(
                "TLS (rediss://) is not supported: it needs hiredis with SSL (libhiredis_ssl, hiredis 1.0 or later), and pgevents is built against the system's hiredis (Debian 12 ships 0.14, without SSL). Reach Redis over a private network or a TLS tunnel (stunnel, spiped) with redis://"
            )
        default:
            let shown = scheme.count <= 20 && scheme.allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) }
            throw Self.invalid(
                shown
                    ? "unsupported scheme '\(scheme)': expected redis, redis+cluster, unix or redis+unix"
                    : "unsupported scheme: expected redis, redis+cluster, unix or redis+unix")
        }
        try parseQuery(queryText, pathDatabase: pathDatabase)
    }

    /// Parses `[userinfo@]host[:port][/database]`; returns the database from the path, if any.
    private mutating func parseTCP(_ text: Substring) throws(RedisError) -> Int? {
        var rest = text
        // The last `@` ends the userinfo, so an unencoded `@` or `/` in a password still parses.
        if let at = rest.lastIndex(of: "@") {
            try parseUserinfo(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[slash...]
            rest = rest[..<slash]
        }
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw Self.invalid("unterminated '[' in the host") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Self.invalid("unexpected text after the bracketed host") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
            if portText?.contains(":") == true { throw Self.invalid("IPv6 addresses must be written in brackets, e.g. redis://[::1]:6379") }
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { throw Self.invalid("missing host") }
        if let portText {
            guard let port = Self.number(portText), (1...65535).contains(port) else {
                throw Self.invalid(Self.numberHint(portText, "invalid port", expected: "a number from 1 to 65535"))
            }
            self.port = port
        }
        switch path {
        case "", "/":
            return nil
        default:
            let digits = path.dropFirst()
            guard let database = Self.number(digits) else {
                throw Self.invalid(Self.numberHint(digits, "invalid database in the path", expected: "/N with N a non-negative integer"))
            }
            return database
        }
    }

    /// Parses `[userinfo@]/path/to/socket`.
    private mutating func parseUnix(_ text: Substring) throws(RedisError) {
        var path = text
        if !text.hasPrefix("/") {
            guard let userinfoEnd = text.firstRange(of: "@/") else {
                throw Self.invalid("a unix socket URL needs an absolute path: unix:///path/to/redis.sock")
            }
            try parseUserinfo(text[..<userinfoEnd.lowerBound])
            path = text[text.index(after: userinfoEnd.lowerBound)...]
        }
        guard let decoded = Self.percentDecode(path) else { throw Self.invalid("the unix socket path is not valid percent-encoded UTF-8") }
        guard decoded.count > 1 else { throw Self.invalid("the unix socket URL has no path") }
        unixSocketPath = decoded
    }

    /// Parses `[username]:password` or, as redis-cli does, a bare `password`.
    private mutating func parseUserinfo(_ userinfo: Substring) throws(RedisError) {
        var passwordText = userinfo
        if let colon = userinfo.firstIndex(of: ":") {
            guard let user = Self.percentDecode(userinfo[..<colon]) else {
                throw Self.invalid("the username is not valid percent-encoded UTF-8")
            }
            username = user.isEmpty ? nil : user
            passwordText = userinfo[userinfo.index(after: colon)...]
        }
        guard let secret = Self.percentDecode(passwordText) else {
            throw Self.invalid("the password is not valid percent-encoded UTF-8")
        }
        password = secret.isEmpty ? nil : secret
    }

    private mutating func parseQuery(_ query: Substring, pathDatabase: Int?) throws(RedisError) {
        database = pathDatabase ?? 0
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key = item.prefix { $0 != "=" }
            let rawValue = item.dropFirst(key.count + 1)
            guard item.contains("=") else { throw Self.invalid("query parameter '\(key)' has no value") }
            switch key {
            case "db":
                guard pathDatabase == nil else { throw Self.invalid("the database is given both in the path and as db=") }
                guard let value = Self.number(rawValue) else {
                    throw Self.invalid(Self.numberHint(rawValue, "invalid db", expected: "a non-negative integer"))
                }
                database = value
            case "password":
                guard password == nil else { throw Self.invalid("the password is given twice") }
                guard let value = Self.percentDecode(rawValue) else {
                    throw Self.invalid("the password is not valid percent-encoded UTF-8")
                }
                password = value.isEmpty ? nil : value
            case "username", "user":
                guard username == nil else { throw Self.invalid("the username is given twice") }
                guard let value = Self.percentDecode(rawValue) else {
                    throw Self.invalid("the username is not valid percent-encoded UTF-8")
                }
                username = value.isEmpty ? nil : value
            case "connect_timeout":
                guard let value = Double(rawValue), value.isFinite, value > 0 else {
                    throw Self.invalid("invalid connect_timeout: expected a positive number of seconds")
                }
                connectTimeout = value
            case "addr" where isCluster:
                guard let address = RedisNodeAddress(rawValue) else {
                    throw Self.invalid("invalid addr: expected host:port, e.g. addr=10.0.0.2:6379")
                }
                clusterSeeds.append(address)
            case "command_timeout":
                guard let value = Double(rawValue), value.isFinite, value > 0 else {
                    throw Self.invalid("invalid command_timeout: expected a positive number of seconds")
                }
                commandTimeout = value
            default:
                throw Self.invalid(
                    "unknown query parameter '\(key)': expected db, username, password, connect_timeout or command_timeout"
                        + (isCluster ? " or addr" : ""))
            }
        }
    }

    // MARK: Helpers

    static func invalid(_ message: String) -> RedisError {
        RedisError(code: .invalidConfiguration, message: message)
    }

    /// A non-negative decimal integer of at most 10 digits (no sign, no spaces), or nil.
    static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 10, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }

    /// An error message that quotes the offending text only if it is made of digits: anything else could be a
    /// password that ended up in the wrong place of a malformed URL.
    static func numberHint(_ text: Substring, _ what: String, expected: String) -> String {
        if !text.isEmpty, text.count <= 20, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return "\(what) \(text): expected \(expected)"
        }
        return "\(what): expected \(expected)"
    }

    /// Decodes `%HH` escapes; nil if an escape is malformed or the bytes are not UTF-8.
    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Percent-encodes everything except unreserved characters (RFC 3986) and `keeping`.
    static func percentEncode(_ text: String, keeping: Set<UInt8>) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            let unreserved =
                (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            if unreserved || keeping.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}
