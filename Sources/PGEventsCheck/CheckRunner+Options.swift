import Foundation
import PGEventsHarness

extension CheckRunner.Options {
    /// The options of `pgevents check PATH`, from its arguments as written: what PATH and `spec` say (the spec,
    /// if any, and the migrations directory), the layout's name, the `NAME=VALUE` placeholder definitions, and an
    /// existing server or bin directories. Throws `HarnessError` (`.invalidInput`) for arguments that do not fit,
    /// `Placeholders.Problem` for a malformed definition, and what `CheckSpec(contentsOf:)` throws for the spec.
    ///
    /// - Parameters:
    ///   - path: a spec file, a directory holding `pgevents.yml` (or `.yaml`), or a directory of migrations
    ///     without one (then every notifying trigger is discovered).
    ///   - spec: the spec file; with it, a `path` directory other than `.` is the migrations directory.
    public init(
        path: String, spec: String? = nil, postgresBinDirectories: [String] = [], layout: String? = nil,
        defines: [String] = [], databaseURL: String? = nil
    ) throws {
        self = try Self.resolving(path: path, spec: spec, postgresBinDirectories: postgresBinDirectories)
        if let layout {
            guard let known = MigrationLayout(rawValue: layout) else {
                throw HarnessError(
                    code: .invalidInput, message: "--layout \(layout): unknown layout", hint: "one of \(MigrationLayout.names)")
            }
            self.layout = known
        }
        placeholders = try Placeholders(definitions: defines)
        if let databaseURL {
            guard postgresBinDirectories.isEmpty else {
                throw HarnessError(
                    code: .invalidInput,
                    message:
                        "--database-url and --postgres-bin exclude each other: check runs on the given server, or on throwaway clusters")
            }
            self.databaseURL = databaseURL
        }
    }

    /// What PATH and --spec say: the spec (if any) and the migrations directory.
    private static func resolving(path: String, spec: String?, postgresBinDirectories postgresBin: [String]) throws -> Self {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard manager.fileExists(atPath: absolute, isDirectory: &isDirectory) else {
            throw HarnessError(
                code: .invalidInput, message: "\(path) does not exist",
                hint: "give a spec file, a directory with pgevents.yml, or a directory of *.sql migrations")
        }
        if let spec {
            let loaded = try CheckSpec(contentsOf: spec)
            return .init(
                spec: loaded, migrations: isDirectory.boolValue && path != "." ? absolute : nil, postgresBinDirectories: postgresBin)
        }
        if !isDirectory.boolValue {
            return .init(spec: try CheckSpec(contentsOf: absolute), postgresBinDirectories: postgresBin)
        }
        for name in ["pgevents.yml", "pgevents.yaml"] where manager.fileExists(atPath: absolute + "/" + name) {
            return .init(spec: try CheckSpec(contentsOf: absolute + "/" + name), postgresBinDirectories: postgresBin)
        }
        return .init(spec: nil, migrations: absolute, postgresBinDirectories: postgresBin)
    }
}
