import Foundation

/// What a Sqitch project's `sqitch.conf` says about its deploy scripts: where the plan and the deploy scripts are
/// (`top_dir`, `plan_file`, `deploy_dir` of `[core]`, overridden by `[engine "pg"]`), and the psql variables its
/// scripts read (`[core "variables"]`, then `[deploy "variables"]`, as `sqitch deploy --set` would give them).
///
/// Paths are relative to the directory holding `sqitch.conf`; without a file (or a key) Sqitch's defaults apply:
/// `sqitch.plan` and `deploy/` in `top_dir`, which is `.`.
struct SqitchConfiguration: Sendable, Equatable {
    var planFile: String
    var deployDirectory: String
    var variables: [String: String] = [:]

    /// The configuration of the project in `directory` (its defaults when there is no `sqitch.conf`).
    static func read(directory: String) throws -> SqitchConfiguration {
        let path = directory + "/sqitch.conf"
        guard FileManager.default.fileExists(atPath: path) else { return parse("", file: path, directory: directory) }
        do {
            return parse(try String(contentsOfFile: path, encoding: .utf8), file: path, directory: directory)
        } catch {
            throw HarnessError(
                code: .invalidInput, message: "cannot read \(path) as UTF-8 text", underlying: DescribedError(description: "\(error)"))
        }
    }

    /// Parses the git-config style `text`.
    static func parse(_ text: String, file: String, directory: String) -> SqitchConfiguration {
        var values: [String: String] = [:]  // "section.key", or "section.subsection.key"
        var section = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmed()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), let close = line.lastIndex(of: "]") {
                // [core], [engine "pg"], [deploy "variables"]
                let inside = line[line.index(after: line.startIndex)..<close].trimmed()
                let words = inside.split(separator: " ", maxSplits: 1).map { $0.trimmed() }
                section =
                    words[0].lowercased() + (words.count > 1 ? "." + words[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) : "")
                continue
            }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmed() }
            guard let key = parts.first, !key.isEmpty else { continue }
            var value = parts.count > 1 ? parts[1] : "true"
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            values[section + "." + (section.hasSuffix(".variables") ? key : key.lowercased())] = value
        }
        func setting(_ key: String) -> String? { values["engine.pg.\(key)"] ?? values["core.\(key)"] }
        func absolute(_ path: String) -> String { joined(directory, path) }
        let top = absolute(setting("top_dir") ?? ".")
        var configuration = SqitchConfiguration(
            planFile: setting("plan_file").map(absolute) ?? top + "/sqitch.plan",
            deployDirectory: setting("deploy_dir").map(absolute) ?? top + "/deploy")
        for (key, value) in values {
            for prefix in ["core.variables.", "deploy.variables."] where key.hasPrefix(prefix) {
                let name = String(key.dropFirst(prefix.count))
                if prefix == "deploy.variables." || configuration.variables[name] == nil { configuration.variables[name] = value }
            }
        }
        return configuration
    }
}

/// `path` under `directory` (unless absolute), without `./` steps or a trailing slash: `a` + `./db/` is `a/db`.
func joined(_ directory: String, _ path: String) -> String {
    if path.hasPrefix("/") { return path }
    let parts = path.split(separator: "/").filter { $0 != "." }
    return parts.isEmpty ? directory : directory + "/" + parts.joined(separator: "/")
}
