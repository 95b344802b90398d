import Foundation

/// A cron expression: 5 fields (`minute hour day-of-month month day-of-week`) or 6 (seconds first), or a macro
/// (`@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`). Fields take `*`, numbers, ranges `a-b`, steps `*/n`,
/// `a-b/n`, `a/n`, lists `a,b`, and names (`JAN`–`DEC`, `SUN`–`SAT`; 7 is Sunday too).
///
/// Matching follows Vixie cron: when both day-of-month and day-of-week are restricted (neither starts with `*`),
/// a day matches if either does. Times are wall-clock times in the schedule's zone:
/// - a time that does not exist (the hour skipped when DST starts) fires once, at the first instant after the gap;
/// - a time that happens twice (the hour repeated when DST ends) fires once, at its first occurrence.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    public let description: String
    /// True for 6 fields (seconds precision).
    public let hasSeconds: Bool
    private let seconds: [Bool], minutes: [Bool], hours: [Bool], days: [Bool], months: [Bool], weekdays: [Bool]
    private let dayOfMonthRestricted: Bool, dayOfWeekRestricted: Bool

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    private static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    private static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    public init(_ text: String) throws(ParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let expanded = Self.macros[trimmed.lowercased()] ?? trimmed
        var fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw ParseError(description: "a cron expression has 5 fields (minute hour day month weekday) or 6 (seconds first), not \(fields.count)")
        }
        hasSeconds = fields.count == 6
        if !hasSeconds { fields.insert("0", at: 0) }
        description = trimmed
        seconds = try Self.field(fields[0], "second", 0...59)
        minutes = try Self.field(fields[1], "minute", 0...59)
        hours = try Self.field(fields[2], "hour", 0...23)
        days = try Self.field(fields[3], "day of month", 1...31)
        months = try Self.field(fields[4], "month", 1...12, names: Self.monthNames, nameBase: 1)
        var weekdays = try Self.field(fields[5], "day of week", 0...7, names: Self.dayNames, nameBase: 0)
        if weekdays[7] { weekdays[0] = true }
        self.weekdays = Array(weekdays[0...6])
        dayOfMonthRestricted = !(fields[3].hasPrefix("*") || fields[3] == "?")
        dayOfWeekRestricted = !(fields[5].hasPrefix("*") || fields[5] == "?")
    }

    /// One field as a table of allowed values (index = value).
    private static func field(_ text: String, _ name: String, _ range: ClosedRange<Int>, names: [String] = [], nameBase: Int = 0) throws(ParseError)
        -> [Bool]
    {
        var allowed = [Bool](repeating: false, count: range.upperBound + 1)
        func value(_ token: Substring) throws(ParseError) -> Int {
            if let n = Int(token), range.contains(n) { return n }
            if let i = names.firstIndex(of: token.uppercased()) { return i + nameBase }
            throw ParseError(description: "\(name): \"\(token)\" is not in \(range.lowerBound)-\(range.upperBound)\(names.isEmpty ? "" : " or a name")")
        }
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            var step = 1
            if parts.count == 2 {
                guard let n = Int(parts[1]), n > 0, n <= range.upperBound + 1 else { throw ParseError(description: "\(name): bad step in \"\(item)\"") }
                step = n
            }
            let base = parts[0]
            guard !base.isEmpty else { throw ParseError(description: "\(name): empty item in \"\(text)\"") }
            var low = range.lowerBound, high = range.upperBound
            if base == "*" || base == "?" {
                // the whole range
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(base[..<dash])
                high = try value(base[base.index(after: dash)...])
                guard low <= high else { throw ParseError(description: "\(name): the range \"\(base)\" runs backwards") }
            } else {
                low = try value(base)
                high = parts.count == 2 ? range.upperBound : low
            }
            for v in stride(from: low, through: high, by: step) { allowed[v] = true }
        }
        return allowed
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        if dayOfMonthRestricted && dayOfWeekRestricted { return days[day] || weekdays[weekday] }
        return days[day] && weekdays[weekday]
    }

    /// The first tick strictly after `date`, in `zone`; nil if none within the next 5 years (e.g. `0 0 30 2 *`).
    public func next(after date: Date, in zone: TimeZone) -> Date? {
        let after = Int64((date.timeIntervalSince1970).rounded(.down))
        // Search wall-clock time (seconds since 1970 as if the zone were UTC), then map the match to an instant.
        var wall = after + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(after)))) + 1
        let limit = wall + 5 * 366 * 86_400
        while wall < limit {
            let days = Self.floorDiv(wall, 86_400), secondOfDay = wall - days * 86_400
            let (y, m, d) = Self.civil(days)
            let weekday = Int((days % 7 + 7 + 4) % 7)  // 1970-01-01 was a Thursday
            let h = Int(secondOfDay / 3600), mi = Int(secondOfDay / 60 % 60), s = Int(secondOfDay % 60)
            if !months[m] {
                wall = Self.daysFromCivil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86_400
            } else if !dayMatches(day: d, weekday: weekday) {
                wall = (days + 1) * 86_400
            } else if !hours[h] {
                wall = (Self.floorDiv(wall, 3600) + 1) * 3600
            } else if !minutes[mi] {
                wall = (Self.floorDiv(wall, 60) + 1) * 60
            } else if !seconds[s] {
                // The next allowed second of this minute, or the next minute.
                if let next = seconds[(s + 1)...].firstIndex(of: true) { wall += Int64(next - s) } else { wall = (Self.floorDiv(wall, 60) + 1) * 60 }
            } else {
                let instant = Self.instant(wall: wall, in: zone)
                if instant > after { return Date(timeIntervalSince1970: Double(instant)) }
                // The second pass of a repeated hour: its first occurrence already was the tick.
                wall += 1
            }
        }
        return nil
    }

    /// The instant a wall-clock time names in `zone`: its first occurrence, or the end of the gap it falls in.
    static func instant(wall: Int64, in zone: TimeZone) -> Int64 {
        let offsets = Set([-86_400, 0, 86_400].map { Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(wall + Int64($0))))) })
        let valid = offsets.map { wall - $0 }.filter { Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double($0)))) == wall - $0 }
        if let first = valid.min() { return first }
        // In a gap: the transition is the first instant after it.
        let from = wall - (offsets.max() ?? 0) - 1
        if let transition = zone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: Double(from))) {
            return Int64(transition.timeIntervalSince1970.rounded(.up))
        }
        return wall - (offsets.min() ?? 0)
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
    static func civil(_ days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = Int64(month > 2 ? month - 3 : month + 9)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
