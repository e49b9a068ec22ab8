import Foundation

/// What a benchmark run does with its results besides printing them: write them as JSON and as an HTML report,
/// and compare them with a baseline. Shared by `pgevents bench` (its `--json`, `--html`, `--baseline`,
/// `--max-regression` options) and the micro-benchmarks, so both are compared the same way.
public struct BenchOutput: Sendable {
    /// A file that cannot be read, parsed or written, named in the message.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String

        public init(_ message: String) {
            self.message = message
        }

        public var description: String { message }
    }

    /// Where to write the results as JSON (the results file of Benchmarks/README.md).
    public var jsonPath: String?
    /// Where to write the HTML report.
    public var htmlPath: String?
    /// The results to compare with.
    public var baselinePath: String?
    /// How much worse, in percent of the baseline, a figure may be before it is a regression.
    public var maxRegressionPercent: Double

    public init(jsonPath: String? = nil, htmlPath: String? = nil, baselinePath: String? = nil, maxRegressionPercent: Double = 10) {
        self.jsonPath = jsonPath
        self.htmlPath = htmlPath
        self.baselinePath = baselinePath
        self.maxRegressionPercent = maxRegressionPercent
    }

    /// Reads the baseline (before anything is written, so a wrong `--baseline` costs nothing), writes the files,
    /// and returns the comparison with the baseline, or nil without one.
    public func emit(_ results: [BenchResult]) throws(Failure) -> BenchComparison? {
        let baseline = try baselinePath.map { path throws(Failure) in
            try Self.readResults(
                path, role: "baseline",
                missingHint: "; record one with: pgevents bench baseline update --from RESULTS.json --to \(path)")
        }
        if let jsonPath {
            let json: String
            do { json = try BenchResult.json(results) } catch { throw Failure("cannot encode the results as JSON: \(error)") }
            try Self.write(json + "\n", to: jsonPath, what: "the JSON results")
        }
        if let htmlPath {
            try Self.write(BenchHTML.render(results), to: htmlPath, what: "the HTML report")
        }
        return baseline.map { BenchComparison(current: results, baseline: $0, maxRegressionPercent: maxRegressionPercent) }
    }

    /// The results in the JSON file at `path`; a missing, unreadable, malformed or empty file is a ``Failure`` naming
    /// it (`role` says what the file is for: "baseline", "results").
    public static func readResults(_ path: String, role: String, missingHint: String = "") throws(Failure) -> [BenchResult] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            guard FileManager.default.fileExists(atPath: path) else {
                throw Failure("the \(role) file \(path) does not exist\(missingHint)")
            }
            throw Failure("the \(role) file \(path) cannot be read: \(error.localizedDescription)")
        }
        let results: [BenchResult]
        do {
            results = try BenchResult.decode(json: data)
        } catch {
            throw Failure("the \(role) file \(path) is not benchmark results JSON: \(describe(error))")
        }
        if results.isEmpty { throw Failure("the \(role) file \(path) holds no results") }
        return results
    }

    /// Writes `text` to `path` (atomically); `what` names it in the error.
    public static func write(_ text: String, to path: String, what: String) throws(Failure) {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw Failure("cannot write \(what) to \(path): \(error.localizedDescription)")
        }
    }

    /// A decoding error in words: what is wrong, and where (`at [0].latency_us.p99`).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return error.localizedDescription }
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "" : " at \(path.hasPrefix(".") ? String(path.dropFirst()) : path)"
        }
        switch error {
        case .keyNotFound(let key, let context): return "'\(key.stringValue)' is missing\(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(context.debugDescription)\(path(context))"
        case .dataCorrupted(let context):
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return (underlying ?? context.debugDescription) + path(context)
        @unknown default: return "\(error)"
        }
    }
}
