extension Duration {
    /// The duration in seconds, as a `Double` (for messages, settings and arithmetic with `TimeInterval`s).
    public var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, truncated (Redis' and PostgreSQL's timeouts take these).
    public var inMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
