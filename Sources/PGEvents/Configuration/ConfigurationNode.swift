import Yams

/// A node of a YAML configuration file with its place (file, line, column, key path), so that every error
/// says where it is: `processor.yml:7:5: channels.new_event.queue: expected a string, found a list`.
public struct ConfigurationNode {
    let node: Node
    /// The key path from the document root, e.g. `channels.new_event.queue`.
    public let path: String
    /// The file name used in messages.
    public let file: String

    /// Parses `text`; a YAML syntax error is reported with its line and column.
    public static func parse(_ text: String, file: String) throws -> ConfigurationNode {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ProcessorError(code: .invalidConfiguration, message: "\(file): the file is empty")
            }
            return ConfigurationNode(node: node, path: "", file: file)
        } catch let error as YamlError {
            throw ProcessorError(code: .invalidConfiguration, message: "\(file):\(Self.location(of: error)) invalid YAML: \(Self.problem(of: error))")
        }
    }

    /// `file:line:column` of this node.
    public var location: String {
        guard let mark = node.mark else { return file }
        return "\(file):\(mark.line):\(mark.column)"
    }

    /// An error located at this node.
    public func error(_ message: String) -> ProcessorError {
        ProcessorError(code: .invalidConfiguration, message: "\(location): \(path.isEmpty ? "" : path + ": ")\(message)")
    }

    private var kind: String {
        switch node {
        case .scalar: "a scalar"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// The entries of a mapping; a key not in `allowed` is an error (a typo must not be silently ignored).
    public func mapping(allowed: Set<String>) throws -> [String: ConfigurationNode] {
        guard let mapping = node.mapping else { throw error("expected a mapping, found \(kind)") }
        var entries: [String: ConfigurationNode] = [:]
        for (key, value) in mapping {
            let child = ConfigurationNode(node: key, path: path, file: file)
            guard let name = key.string else { throw child.error("keys must be strings") }
            guard allowed.isEmpty || allowed.contains(name) else {
                throw child.error("unknown key '\(name)' (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
            entries[name] = ConfigurationNode(node: value, path: path.isEmpty ? name : "\(path).\(name)", file: file)
        }
        return entries
    }

    /// The entries of a mapping with any keys, in file order.
    public func orderedMapping() throws -> [(key: String, value: ConfigurationNode)] {
        guard let mapping = node.mapping else { throw error("expected a mapping, found \(kind)") }
        return try mapping.map { key, value in
            guard let name = key.string else { throw ConfigurationNode(node: key, path: path, file: file).error("keys must be strings") }
            return (name, ConfigurationNode(node: value, path: path.isEmpty ? name : "\(path).\(name)", file: file))
        }
    }

    /// The entries of a mapping with any keys, in file order, each with a node for its key (located at the key,
    /// with this mapping's path), so that an error about a key itself points at it.
    public func orderedEntries() throws -> [(key: String, keyNode: ConfigurationNode, value: ConfigurationNode)] {
        guard let mapping = node.mapping else { throw error("expected a mapping, found \(kind)") }
        return try mapping.map { key, value in
            let keyNode = ConfigurationNode(node: key, path: path, file: file)
            guard let name = key.string else { throw keyNode.error("keys must be strings") }
            return (name, keyNode, ConfigurationNode(node: value, path: path.isEmpty ? name : "\(path).\(name)", file: file))
        }
    }

    /// True for a YAML null: `~`, `null`, or nothing at all after the key (but not `''` or `'null'`).
    public var isNull: Bool {
        node.null != nil
    }

    /// True for a list (a YAML sequence).
    public var isList: Bool {
        if case .sequence = node { return true }
        return false
    }

    public func string() throws -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a string, found \(kind)") }
        return scalar.string
    }

    public func int(in range: ClosedRange<Int>? = nil) throws -> Int {
        guard case .scalar = node, let value = node.int else { throw error("expected a whole number, found \(describeValue)") }
        if let range, !range.contains(value) { throw error("\(value) is out of range (\(range.lowerBound)…\(range.upperBound))") }
        return value
    }

    /// A number of seconds (`5`, `0.5`), positive.
    public func seconds() throws -> Double {
        guard case .scalar = node, let value = node.float, value > 0, value.isFinite else {
            throw error("expected a positive number of seconds, found \(describeValue)")
        }
        return value
    }

    public func bool() throws -> Bool {
        guard case .scalar = node, let value = node.bool else { throw error("expected true or false, found \(describeValue)") }
        return value
    }

    public func strings() throws -> [String] {
        guard case .sequence(let sequence) = node else { throw error("expected a list, found \(kind)") }
        return try sequence.enumerated().map { index, item in
            try ConfigurationNode(node: item, path: "\(path)[\(index)]", file: file).string()
        }
    }

    /// The items of a list, each located and with its index in the path (`tables[2]`).
    public func items() throws -> [ConfigurationNode] {
        guard case .sequence(let sequence) = node else { throw error("expected a list, found \(kind)") }
        return sequence.enumerated().map { index, item in ConfigurationNode(node: item, path: "\(path)[\(index)]", file: file) }
    }

    private var describeValue: String {
        if case .scalar(let scalar) = node { return "'\(scalar.string)'" }
        return kind
    }

    private static func location(of error: YamlError) -> String {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return "\(mark.line):\(mark.column):"
        case .duplicatedKeysInMapping(_, let context):
            return "\(context.mark.line):\(context.mark.column):"
        default:
            return ""
        }
    }

    private static func problem(of error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _), .composer(let context, let problem, _, _):
            return [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicate keys: \(duplicates.joined(separator: ", "))"
        default:
            return "\(error)"
        }
    }
}
