import Testing

@testable import PGEvents

/// Seconds of a Duration, for comparisons with a tolerance.
func backoffTestSeconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

@Suite("Exponential backoff with jitter")
struct BackoffTests {
    @Test("the defaults are 0.1 s, ×2, at most 10 s, 20 % jitter, never give up")
    func defaults() {
        let configuration = Backoff.Configuration()
        #expect(configuration.initial == .milliseconds(100))
        #expect(configuration.multiplier == 2)
        #expect(configuration.maximum == .seconds(10))
        #expect(configuration.jitter == 0.2)
        #expect(configuration.maxAttempts == nil)
    }

    @Test("base delays double from the initial delay and stop at the maximum")
    func baseDelays() {
        let backoff = Backoff()
        let expected = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10, 10]
        for (index, value) in expected.enumerated() {
            #expect(abs(backoffTestSeconds(backoff.baseDelay(forAttempt: index + 1)) - value) < 1e-9, "attempt \(index + 1)")
        }
        #expect(backoff.baseDelay(forAttempt: 1_000_000) == .seconds(10))
        #expect(backoff.baseDelay(forAttempt: Int.max) == .seconds(10))
    }

    @Test("jitter only shortens a delay, by at most the jitter fraction")
    func jitterBounds() {
        let backoff = Backoff()
        #expect(backoff.delay(forAttempt: 3, unitRandom: 0) == backoff.baseDelay(forAttempt: 3))
        #expect(abs(backoffTestSeconds(backoff.delay(forAttempt: 3, unitRandom: 0.5)) - 0.36) < 1e-9)
        #expect(abs(backoffTestSeconds(backoff.delay(forAttempt: 20, unitRandom: 0.999_999)) - 8) < 1e-4)
        var generator = SplitMix64(seed: 7)
        for attempt in 1...40 {
            let delay = backoffTestSeconds(backoff.delay(forAttempt: attempt, using: &generator))
            let base = backoffTestSeconds(backoff.baseDelay(forAttempt: attempt))
            #expect(delay <= base && delay >= base * 0.8 - 1e-9, "attempt \(attempt): \(delay) not in [0.8, 1] × \(base)")
        }
    }

    @Test("the same seed gives the same delays")
    func deterministic() {
        let backoff = Backoff()
        var first = SplitMix64(seed: 42)
        var second = SplitMix64(seed: 42)
        let a = (1...10).map { backoff.delay(forAttempt: $0, using: &first) }
        let b = (1...10).map { backoff.delay(forAttempt: $0, using: &second) }
        #expect(a == b)
        var other = SplitMix64(seed: 43)
        #expect(a != (1...10).map { backoff.delay(forAttempt: $0, using: &other) })
    }

    @Test("without jitter the delays are exact")
    func noJitter() {
        let backoff = Backoff(.init(initial: .milliseconds(50), multiplier: 3, maximum: .seconds(1), jitter: 0))
        var generator = SplitMix64(seed: 1)
        let delays = (1...5).map { backoffTestSeconds(backoff.delay(forAttempt: $0, using: &generator)) }
        #expect(zip(delays, [0.05, 0.15, 0.45, 1, 1]).allSatisfy { abs($0 - $1) < 1e-9 })
    }

    @Test("maxAttempts limits retries; nil never gives up")
    func maxAttempts() {
        let forever = Backoff()
        #expect(forever.allowsRetry(afterFailedAttempts: 1))
        #expect(forever.allowsRetry(afterFailedAttempts: 1_000_000))
        let three = Backoff(.init(maxAttempts: 3))
        #expect(three.allowsRetry(afterFailedAttempts: 1))
        #expect(three.allowsRetry(afterFailedAttempts: 2))
        #expect(!three.allowsRetry(afterFailedAttempts: 3))
        #expect(!three.allowsRetry(afterFailedAttempts: 4))
    }

    @Test("out-of-range settings are tolerated, never trap")
    func tolerant() {
        let odd = Backoff(.init(initial: .seconds(-1), multiplier: 0.5, maximum: .seconds(2), jitter: 7))
        #expect(odd.baseDelay(forAttempt: 5) == .zero)
        #expect(odd.delay(forAttempt: 5, unitRandom: 0.5) == .zero)
        let shrinking = Backoff(.init(initial: .seconds(1), multiplier: 0.5, maximum: .seconds(10), jitter: -1))
        #expect(shrinking.baseDelay(forAttempt: 4) == .seconds(1))  // multiplier below 1 counts as 1
        #expect(shrinking.delay(forAttempt: 4, unitRandom: 0.9) == .seconds(1))  // negative jitter counts as 0
        let nan = Backoff(.init(multiplier: .nan, jitter: .nan))
        #expect(nan.baseDelay(forAttempt: 3) == .milliseconds(100))
        #expect(nan.delay(forAttempt: 0, unitRandom: .infinity) == .milliseconds(100))
        let full = Backoff(.init(jitter: 1))
        #expect(full.delay(forAttempt: 1, unitRandom: 2) >= .zero)
    }
}
