import struct Foundation.Date

/// The `created_at` of a stream entry: ISO-8601 in UTC with milliseconds.
enum StreamTimestamp {
    /// `date` as ISO-8601 in UTC with milliseconds, `2024-05-01T12:34:56.789Z` (truncated, not rounded, to
    /// the millisecond, so an entry never shows a later time than its event's).
    static func text(_ date: Date) -> String {
        // Whole microseconds first: the journal's clock has microsecond resolution, and a Double near
        // 1.7e9 s is not exact, so scaling straight to milliseconds could land just below the true value.
        let seconds = date.timeIntervalSince1970
        let micros = (seconds * 1_000_000).rounded()
        guard micros.isFinite, abs(micros) < 9e18 else { return "\(date)" }  // ±285,000 years: beyond Int64
        let millis = Int64(micros).floorDivided(by: 1_000)
        let days = millis.floorDivided(by: 86_400_000)
        let dayMillis = millis - days * 86_400_000
        let (year, month, day) = civil(fromDays: days)
        let hour = dayMillis / 3_600_000
        let minute = dayMillis / 60_000 % 60
        let second = dayMillis / 1_000 % 60
        let milli = dayMillis % 1_000
        var text = year < 0 ? "-" : ""
        text += pad(abs(year), 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
        text += "T" + pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2) + "." + pad(milli, 3) + "Z"
        return text
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = z.floorDivided(by: 146_097)
        let dayOfEra = z - era * 146_097  // [0, 146096]
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // [0, 399]
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // [0, 365]
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // [0, 11], March first
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension Int64 {
    /// The quotient rounded towards minus infinity (`/` rounds towards zero).
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
