/// Exponential backoff with jitter: how long to wait before each reconnection attempt.
///
/// The delay before attempt `n` (1-based) is `initial × multiplier^(n−1)`, capped at `maximum`, then shortened
/// by a random fraction of up to `jitter` (so many clients that lost the same server do not come back in
/// step). Jitter only ever shortens a delay: the cap is a real cap, and clients at the cap stay spread out.
///
/// ```swift
/// let backoff = Backoff(.init(initial: .milliseconds(100), maximum: .seconds(10)))
/// backoff.delay(forAttempt: 3)        // between 0.32 s and 0.4 s
/// ```
///
/// The random source is a parameter, so tests can make the delays deterministic.
public struct Backoff: Sendable, Hashable {
    /// The shape of the backoff.
    public struct Configuration: Sendable, Hashable {
        /// The delay before the first retry.
        public var initial: Duration
        /// The factor between consecutive delays (values below 1 are treated as 1).
        public var multiplier: Double
        /// The longest delay.
        public var maximum: Duration
        /// The largest fraction (0…1) by which a delay is randomly shortened; 0 disables jitter.
        public var jitter: Double
        /// How many consecutive failed attempts are made before giving up; nil (the default) never gives up.
        public var maxAttempts: Int?

        /// A configuration; the defaults are 0.1 s, ×2, at most 10 s, 20 % jitter, never give up.
        public init(
            initial: Duration = .milliseconds(100),
            multiplier: Double = 2,
            maximum: Duration = .seconds(10),
            jitter: Double = 0.2,
            maxAttempts: Int? = nil
        ) {
            self.initial = initial
            self.multiplier = multiplier
            self.maximum = maximum
            self.jitter = jitter
            self.maxAttempts = maxAttempts
        }
    }

    /// The shape of the backoff.
    public var configuration: Configuration

    /// A backoff of the given shape.
    public init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The delay before attempt `attempt` (1-based) without jitter: `initial × multiplier^(attempt−1)`, capped.
    ///
    /// Out-of-range settings are tolerated: negative durations count as zero, a multiplier below 1 (or not a
    /// number) as 1, an attempt below 1 as 1.
    public func baseDelay(forAttempt attempt: Int) -> Duration {
        let initial = max(0, configuration.initial.inSeconds)
        let maximum = max(0, configuration.maximum.inSeconds)
        let multiplier = configuration.multiplier.isFinite ? max(1, configuration.multiplier) : 1
        let exponent = Double(max(1, attempt) - 1)
        let raw = initial * pow(multiplier, exponent)
        // pow overflows to infinity long before an Int does: the cap handles both.
        let capped = raw.isFinite ? min(raw, maximum) : maximum
        return .seconds(max(0, capped))
    }

    /// The delay before attempt `attempt`, shortened by up to `jitter` using `unitRandom` (a number in 0..<1).
    ///
    /// `unitRandom` 0 gives the full base delay, values towards 1 the shortest one.
    public func delay(forAttempt attempt: Int, unitRandom: Double) -> Duration {
        let base = baseDelay(forAttempt: attempt).inSeconds
        let jitter = configuration.jitter.isFinite ? min(1, max(0, configuration.jitter)) : 0
        let unit = unitRandom.isFinite ? min(1, max(0, unitRandom)) : 0
        return .seconds(base * (1 - jitter * unit))
    }

    /// The delay before attempt `attempt`, with jitter drawn from `generator`.
    public func delay(forAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        delay(forAttempt: attempt, unitRandom: Double.random(in: 0..<1, using: &generator))
    }

    /// The delay before attempt `attempt`, with jitter from the system's random source.
    public func delay(forAttempt attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(forAttempt: attempt, using: &generator)
    }

    /// Whether another attempt may follow `failedAttempts` consecutive failures (always, without `maxAttempts`).
    public func allowsRetry(afterFailedAttempts failedAttempts: Int) -> Bool {
        guard let maxAttempts = configuration.maxAttempts else { return true }
        return failedAttempts < maxAttempts
    }
}

/// `base` to the power `exponent`, by repeated squaring (Foundation's `pow` is not needed for this).
private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var factor = base
    var remaining = Int(min(exponent, 4096))
    while remaining > 0 {
        if remaining & 1 == 1 { result *= factor }
        factor *= factor
        remaining >>= 1
        if !result.isFinite { return .infinity }
    }
    return result
}
