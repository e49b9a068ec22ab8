import Foundation

/// What a Flyway project's `flyway.conf` says about its migrations: where they are (`flyway.locations`) and the
/// placeholders' values (`flyway.placeholders.NAME=VALUE`; `flyway.placeholderReplacement=false` turns
/// substitution off). Other keys are Flyway's business (the database, the history table) and are ignored.
///
/// Read from `DIR/flyway.conf`, else `DIR/conf/flyway.conf`, where `DIR` is the directory `check` or `bench` is
/// given. Locations are resolved against `DIR`: `filesystem:PATH`, and `classpath:PATH` (or a bare `PATH`, which
/// Flyway reads as a classpath location) as `src/main/resources/PATH` of a Maven or Gradle project. Flyway scans
/// each location and its subdirectories.
struct FlywayConfiguration: Sendable, Equatable {
    /// The file read.
    var file: String
    /// The directories to read migrations from, absolute; empty: `DIR` itself.
    var locations: [String] = []
    var placeholders: [String: String] = [:]
    /// False when the file says `flyway.placeholderReplacement=false`.
    var replacePlaceholders = true

    /// The configuration of the project in `directory`, or nil when it has none.
    static func read(directory: String) throws -> FlywayConfiguration? {
        for candidate in ["flyway.conf", "conf/flyway.conf"] {
            let path = directory + "/" + candidate
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw HarnessError(
                    code: .invalidInput, message: "cannot read \(path) as UTF-8 text", underlying: DescribedError(description: "\(error)"))
            }
            return try parse(text, file: path, directory: directory)
        }
        return nil
    }

    /// Parses the Java properties text of `file`; locations are resolved against `directory`.
    static func parse(_ text: String, file: String, directory: String) throws -> FlywayConfiguration {
        var configuration = FlywayConfiguration(file: file)
        for (line, key, value) in properties(text) {
            if key == "flyway.locations" {
                configuration.locations = try value.split(separator: ",").map { $0.trimmed() }.filter { !$0.isEmpty }.map { location in
                    try resolve(location, directory: directory, at: "\(file):\(line)")
                }
            } else if key.hasPrefix("flyway.placeholders."), key.count > "flyway.placeholders.".count {
                configuration.placeholders[String(key.dropFirst("flyway.placeholders.".count))] = value
            } else if key == "flyway.placeholderReplacement" {
                configuration.replacePlaceholders = value.lowercased() != "false"
            }
        }
        return configuration
    }

    private static func resolve(_ location: String, directory: String, at place: String) throws -> String {
        let path: String
        if location.hasPrefix("filesystem:") {
            let given = String(location.dropFirst("filesystem:".count))
            path = joined(directory, given)
        } else {
            let given = location.hasPrefix("classpath:") ? String(location.dropFirst("classpath:".count)) : location
            path = joined(directory + "/src/main/resources", String(given.drop { $0 == "/" }))
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw HarnessError(
                code: .invalidInput, message: "\(place): flyway.locations names \(location), which is not a directory here (\(path))",
                hint: location.hasPrefix("filesystem:")
                    ? "correct the location, or give the migrations directory itself"
                    : "classpath locations are read from src/main/resources/ of the project; give filesystem:PATH for other places")
        }
        return path
    }

    /// `(line, key, value)` of each property: `key=value`, `key: value` or `key value`; `#` and `!` start comments;
    /// a line ending in a backslash continues on the next.
    static func properties(_ text: String) -> [(line: Int, key: String, value: String)] {
        var result: [(Int, String, String)] = []
        var pending: (line: Int, text: String)?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmed()
            if pending == nil, line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            var logical = (pending?.text ?? "") + line
            let start = pending?.line ?? index + 1
            if logical.hasSuffix("\\") {
                logical.removeLast()
                pending = (start, logical)
                continue
            }
            pending = nil
            guard let separator = logical.firstIndex(where: { $0 == "=" || $0 == ":" || $0 == " " }) else {
                result.append((start, logical, ""))
                continue
            }
            let key = logical[..<separator].trimmed()
            var value = logical[logical.index(after: separator)...].trimmed()
            if let first = value.first, first == "=" || first == ":" { value = String(value.dropFirst()).trimmed() }
            result.append((start, key, value))
        }
        if let pending { result.append(contentsOf: properties(pending.text).map { (pending.line, $0.key, $0.value) }) }
        return result
    }
}
