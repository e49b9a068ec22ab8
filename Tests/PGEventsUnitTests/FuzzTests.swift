import Foundation
import PGEventsFuzzOracles
import Testing

/// The seeded random-input runner: every parser that reads outside input gets its seed corpus
/// (`Benchmarks/Fuzz/corpus/<target>/`, shared with the libFuzzer targets of `ci/fuzz`) and then mutations of
/// it, and must keep the promises `FuzzTarget.check` checks, within 2 s per input.
///
/// Reproducible: the seed is fixed (`PGEVENTS_FUZZ_SEED=<number>` explores others), and a failure shows the
/// input as a Swift literal and in base64 (`base64 -d > crash && .build/…/pgevents-fuzz-<target> crash`).
/// `PGEVENTS_FUZZ_SCALE=<factor>` runs more (or fewer) inputs; `PGEVENTS_FUZZ_TARGETS=json,sql` only some targets;
/// `PGEVENTS_FUZZ_SHOW=<input number>` prints that input (the slowest, say).
@Suite("Fuzz: seeded random inputs for every parser of outside input")
struct FuzzTests {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["PGEVENTS_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_260_401
    static let scale: Double = ProcessInfo.processInfo.environment["PGEVENTS_FUZZ_SCALE"].flatMap { Double($0) } ?? 1
    static let show: Int? = ProcessInfo.processInfo.environment["PGEVENTS_FUZZ_SHOW"].flatMap { Int($0) }
    static let targets: Set<String>? = ProcessInfo.processInfo.environment["PGEVENTS_FUZZ_TARGETS"].map {
        Set($0.split(separator: ",").map(String.init))
    }

    /// Inputs per target, seeds included: about 1.5 s each in a debug build, 6,100 inputs in all (some 12 s of
    /// CPU time, 7 s on two cores).
    static func inputs(for target: FuzzTarget) -> Int {
        let base =
            switch target {
            case .json: 1_200
            case .csv: 1_200
            case .text: 700
            case .spec: 400
            case .config: 400
            case .resp: 1_200
            case .sql: 600
            }
        return max(1, Int(Double(base) * scale))
    }

    /// The longest one input may take, however slow the machine: a hang or a quadratic blow-up, not noise.
    static let timeLimit = Duration.seconds(2)

    @Test("every input is accepted, or refused with the parser's error and a clear message, in time", arguments: FuzzTarget.allCases)
    func fuzz(_ target: FuzzTarget) throws {
        if let targets = Self.targets, !targets.contains(target.rawValue) { return }
        let seeds = try Self.corpus(target)
        try #require(seeds.count >= 5, "the seed corpus of \(target) is missing or too small")
        let mutator = Mutator.for(target.rawValue)
        var random = SplitMix64(seed: Self.seed ^ SplitMix64.seed(target.rawValue))
        let clock = ContinuousClock()
        let count = max(seeds.count, Self.inputs(for: target))
        var accepted = 0
        var rejected = 0
        var failures = 0
        var slowest = (time: Duration.zero, input: 0)
        for iteration in 0..<count {
            let input = iteration < seeds.count ? seeds[iteration] : mutator.mutate(seeds, using: &random)
            if iteration == Self.show { print("fuzz \(target): \(Self.reproduction(target, input, iteration: iteration))") }
            let start = clock.now
            let outcome: FuzzOutcome
            do {
                outcome = try target.check(input)
            } catch {
                failures += 1
                Issue.record("\(target): \(error)\n\(Self.reproduction(target, input, iteration: iteration))")
                if failures >= 5 { break }
                continue
            }
            let elapsed = start.duration(to: clock.now)
            if elapsed > slowest.time { slowest = (elapsed, iteration) }
            if elapsed > Self.timeLimit {
                Issue.record("\(target): one input took \(elapsed)\n\(Self.reproduction(target, input, iteration: iteration))")
            }
            if outcome == .accepted { accepted += 1 } else { rejected += 1 }
        }
        print(
            "fuzz \(target): \(accepted + rejected + failures) inputs (\(seeds.count) seeds), \(accepted) accepted, \(rejected) refused, \(failures) failed; slowest \(slowest.time) (input \(slowest.input)); seed \(Self.seed)"
        )
        // Mutations that only ever produce garbage, or seeds that are all broken, would test little.
        #expect(accepted > 0, "no input of \(target) was accepted")
        #expect(rejected > 0, "no input of \(target) was refused")
    }

    @Test("the mutations are deterministic for a seed")
    func deterministic() throws {
        let seeds = try Self.corpus(.json)
        var first = SplitMix64(seed: 7)
        var second = SplitMix64(seed: 7)
        let mutator = Mutator.for("json")
        for _ in 0..<50 {
            #expect(mutator.mutate(seeds, using: &first) == mutator.mutate(seeds, using: &second))
        }
    }

    // MARK: Helpers

    /// The seed corpus of a target, in file name order; the sql target also starts from the project's own
    /// migrations (the journal, an example) rather than copies of them.
    static func corpus(_ target: FuzzTarget) throws -> [[UInt8]] {
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var directories = ["Benchmarks/Fuzz/corpus/\(target.rawValue)"]
        if target == .sql { directories += ["sql/pgevents", "sql/examples/chat-channels"] }
        return try directories.flatMap { directory in
            let root = repository.appendingPathComponent(directory)
            let names = try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
                .filter { !$0.hasPrefix(".") && (directory.hasPrefix("Benchmarks/") || $0.hasSuffix(".sql")) }
            return try names.map { Array(try Data(contentsOf: root.appendingPathComponent($0))) }
        }
    }

    /// How to run the input again: where it came from, as a Swift literal, and in base64.
    static func reproduction(_ target: FuzzTarget, _ input: [UInt8], iteration: Int) -> String {
        let literal: String
        if target == .resp || String(validating: input, as: UTF8.self) == nil {
            literal = "[" + input.map { "0x" + String($0, radix: 16) }.joined(separator: ", ") + "] as [UInt8]"
        } else {
            literal = String(decoding: input, as: UTF8.self).debugDescription
        }
        let shown = literal.count > 600 ? String(literal.prefix(600)) + "… (\(input.count) bytes)" : literal
        let base64 = input.count <= 2_048 ? Data(input).base64EncodedString() : "(\(input.count) bytes, not shown: run the seed again)"
        return "input \(iteration) of seed \(seed): \(shown)\nbase64: \(base64)"
    }
}
