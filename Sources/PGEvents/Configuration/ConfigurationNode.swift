// libyaml, as Yams builds it (an internal target of the Yams package, whose module SwiftPM makes visible to
// dependants): read for the document's shape before Yams composes it. See `checkShape`.
import CYaml
import PGEventsSystem
import Yams

/// A node of a YAML configuration file with its place (file, line, column, key path), so that every error
/// says where it is: `processor.yml:7:5: channels.new_event.queue: expected a string, found a list`.
public struct ConfigurationNode {
    let node: Node
    /// The key path from the document root, e.g. `channels.new_event.queue`.
    public let path: String
    /// The file name used in messages.
    public let file: String

    /// The deepest a document may nest mappings and lists (libyaml stops at 1,000).
    public static let maximumDepth = 64
    /// The most values a document may have once its aliases are expanded.
    public static let maximumExpandedValues = 100_000

    /// Parses `text`; a YAML syntax error is reported with its line and column.
    public static func parse(_ text: String, file: String) throws -> ConfigurationNode {
        try checkShape(text, file: file)
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ProcessorError(code: .invalidConfiguration, message: "\(file): the file is empty")
            }
            return ConfigurationNode(node: node, path: "", file: file)
        } catch let error as YamlError {
            throw ProcessorError(
                code: .invalidConfiguration,
                message: "\(file):\(Self.location(of: error)) invalid YAML: \(escaped(Self.problem(of: error)))")
        }
    }

    /// Refuses, before Yams composes it, a document that nests deeper than `maximumDepth`, has a mapping or
    /// list as a key, or whose aliases expand it to more than `maximumExpandedValues` values. Yams checks each
    /// mapping's keys for duplicates by hashing them (aliases expanded) and sorts duplicates by comparing them
    /// (twice per level): a few hundred bytes of aliases of aliases as a key (a "billion laughs") or a mapping
    /// key nested 40 deep and written twice take hours. Keys must be strings here anyway. libyaml's events
    /// give each anchor's expanded size and each node's place in one pass. A syntax error ends the check
    /// silently: composing reports it.
    static func checkShape(_ text: String, file: String) throws {
        let bytes = Array(text.utf8)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return }
        defer { yaml_parser_delete(&parser) }
        var anchorSizes: [String: Int] = [:]
        var collectionAnchors: Set<String> = []
        // Each mapping or list not closed yet: its anchor, its values so far (aliases expanded), whether it is
        // a mapping, and how many nodes it holds so far (in a mapping, keys and values alternate).
        var open: [(anchor: String?, values: Int, isMapping: Bool, nodes: Int)] = []
        var documentValues = 0
        func name(_ anchor: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            anchor.map { String(cString: $0) }
        }
        /// Counts a node starting in the innermost open collection; whether it is a key there.
        func startNode() -> Bool {
            guard let parent = open.last else { return false }
            open[open.count - 1].nodes += 1
            return parent.isMapping && parent.nodes % 2 == 0
        }
        try bytes.withUnsafeBufferPointer { buffer throws in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return }
                defer { yaml_event_delete(&event) }
                let location = "\(file):\(event.start_mark.line + 1):\(event.start_mark.column + 1)"
                var added = 0
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_DOCUMENT_START_EVENT:
                    anchorSizes = [:]
                    collectionAnchors = []
                    documentValues = 0
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let isMapping = event.type == YAML_MAPPING_START_EVENT
                    if startNode() {
                        throw ProcessorError(
                            code: .invalidConfiguration,
                            message: "\(location): keys must be strings, found \(isMapping ? "a mapping" : "a list")")
                    }
                    guard open.count < maximumDepth else {
                        throw ProcessorError(
                            code: .invalidConfiguration,
                            message: "\(location): mappings and lists are nested more than \(maximumDepth) deep")
                    }
                    open.append((name(isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor), 1, isMapping, 0))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let closed = open.popLast() else { return }
                    if let anchor = closed.anchor {
                        anchorSizes[anchor] = closed.values
                        collectionAnchors.insert(anchor)
                    }
                    added = closed.values
                case YAML_SCALAR_EVENT:
                    _ = startNode()
                    if let anchor = name(event.data.scalar.anchor) {
                        anchorSizes[anchor] = 1
                        collectionAnchors.remove(anchor)
                    }
                    added = 1
                case YAML_ALIAS_EVENT:
                    let isKey = startNode()
                    let anchor = name(event.data.alias.anchor)
                    if isKey, let anchor, collectionAnchors.contains(anchor) {
                        throw ProcessorError(
                            code: .invalidConfiguration, message: "\(location): keys must be strings, found an alias of a mapping or list")
                    }
                    added = anchor.flatMap { anchorSizes[$0] } ?? 1
                    documentValues += added  // an alias adds its anchor's values to the document once more
                    if documentValues > maximumExpandedValues {
                        throw ProcessorError(
                            code: .invalidConfiguration,
                            message:
                                "\(location): the aliases expand the document to more than \(maximumExpandedValues) values (aliases of aliases multiply); write the values out instead"
                        )
                    }
                default:
                    break
                }
                if added > 0, !open.isEmpty {
                    open[open.count - 1].values = min(open[open.count - 1].values + added, maximumExpandedValues + 1)
                }
            }
        }
    }

    /// `file:line:column` of this node.
    public var location: String {
        guard let mark = node.mark else { return file }
        return "\(file):\(mark.line):\(mark.column)"
    }

    /// An error located at this node. Keys and values it quotes from the file are shown escaped (see `escaped`).
    public func error(_ message: String) -> ProcessorError {
        ProcessorError(
            code: .invalidConfiguration, message: "\(location): \(Self.escaped(path.isEmpty ? "" : path + ": "))\(Self.escaped(message))")
    }

    /// `text` with control characters and line or paragraph separators written as escapes (`\n`, `\t`,
    /// `\u{1B}`, `\u{2028}`), so that a message quoting a key or value from the file stays on one line and
    /// sends nothing to the terminal.
    public static func escaped(_ text: String) -> String {
        TextExcerpt.escaped(text)
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
        var entries: [String: ConfigurationNode] = [:]
        for (name, keyNode, value) in try orderedEntries() {
            guard allowed.isEmpty || allowed.contains(name) else {
                throw keyNode.error("unknown key '\(name)' (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
            entries[name] = value
        }
        return entries
    }

    /// The entries of a mapping with any keys, in file order.
    public func orderedMapping() throws -> [(key: String, value: ConfigurationNode)] {
        try orderedEntries().map { ($0.key, $0.value) }
    }

    /// The entries of a mapping with any keys, in file order, each with a node for its key (located at the key,
    /// with this mapping's path), so that an error about a key itself points at it.
    ///
    /// Two keys with the same text are an error here even when YAML tells them apart by type (`1` and `"1"`,
    /// `true` and `"true"`): everything that reads these entries keys them by their text.
    public func orderedEntries() throws -> [(key: String, keyNode: ConfigurationNode, value: ConfigurationNode)] {
        guard let mapping = node.mapping else { throw error("expected a mapping, found \(kind)") }
        var seen: Set<String> = []
        return try mapping.map { key, value in
            let keyNode = ConfigurationNode(node: key, path: path, file: file)
            guard let name = key.string else { throw keyNode.error("keys must be strings") }
            guard seen.insert(name).inserted else {
                throw keyNode.error("duplicate key '\(name)' (written twice, once with quotes or a tag and once without)")
            }
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

    /// A number of seconds (`5`, `0.5`), positive and within `range`: by default from a millisecond (the
    /// resolution durations are kept in) to a year.
    public func seconds(in range: ClosedRange<Double> = 0.001...31_536_000) throws -> Double {
        guard case .scalar = node, let value = node.float, value > 0, value.isFinite else {
            throw error("expected a positive number of seconds, found \(describeValue)")
        }
        if !range.contains(value) { throw error("\(value) seconds is out of range (\(range.lowerBound)…\(range.upperBound))") }
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
        case .reader(_, let offset?, _, let yaml):
            guard let (line, column) = position(ofCharacter: offset, in: yaml) else { return "" }
            return "\(line):\(column):"
        default:
            return ""
        }
    }

    /// The line and column (1-based, columns in Unicode scalars) of the character at `offset`, counted as libyaml
    /// counts them for its other errors: a line ends at `\n`, `\r\n`, `\r`, U+0085, U+2028 or U+2029.
    static func position(ofCharacter offset: Int, in text: String) -> (line: Int, column: Int)? {
        guard offset >= 0, let end = text.index(text.startIndex, offsetBy: offset, limitedBy: text.endIndex) else { return nil }
        var line = 1
        var column = 1
        var afterCarriageReturn = false
        for scalar in text.unicodeScalars[..<end] {
            switch scalar {
            case "\n" where afterCarriageReturn:
                break
            case "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}":
                line += 1
                column = 1
            default:
                column += 1
            }
            afterCarriageReturn = scalar == "\r"
        }
        return (line, column)
    }

    private static func problem(of error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _), .composer(let context, let problem, _, _):
            return [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicate keys: \(duplicates.joined(separator: ", "))"
        case .reader(let problem, _, let value, _):
            // libyaml's reader refuses characters YAML does not allow (control characters, mostly); show which.
            guard value >= 0, let scalar = Unicode.Scalar(UInt32(value)) else { return problem }
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "\(problem) (U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))"
        default:
            return "\(error)"
        }
    }
}
