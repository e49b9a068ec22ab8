/// Where one Redis server listens: a host (name, IPv4 or IPv6 address) and a TCP port.
///
/// Written `host:port`, with an IPv6 address in brackets (`[::1]:7000`), as Redis Cluster's own replies and
/// redirections name nodes.
public struct RedisNodeAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port` or an unbracketed IPv6 address whose last `:` starts the port (as in
    /// `MOVED 3999 ::1:7000`); nil when there is no valid port or no host.
    public init?(_ text: some StringProtocol) {
        let text = Substring(text)
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains("/"), let port = RedisConfiguration.number(portText), (1...65535).contains(port) else {
            return nil
        }
        self.init(host: String(host), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
