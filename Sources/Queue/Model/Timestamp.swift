import Foundation

/// RFC 3339 UTC timestamps with milliseconds (`2026-11-23T12:00:00.000Z`).
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        var text = [UInt8]()
        text.reserveCapacity(24)
        write(date, into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the timestamp in quotes (a JSON string) to `out`.
    public static func write(_ date: Date, quotedInto out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        write(date, into: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// Appends the 24 bytes of the timestamp to `out`. Digits written by hand: String(format:) cost more than the
    /// rest of a job's JSON together.
    public static func write(_ date: Date, into out: inout [UInt8]) {
        let ms = date.millis
        var seconds = time_t(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func put(_ value: Int, _ width: Int) {
            let start = out.count
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width))
            var v = value
            var k = start + width - 1
            while k >= start {
                out[k] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                k -= 1
            }
        }
        put(Int(parts.tm_year) + 1900, 4)
        out.append(UInt8(ascii: "-"))
        put(Int(parts.tm_mon) + 1, 2)
        out.append(UInt8(ascii: "-"))
        put(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        put(Int(parts.tm_hour), 2)
        out.append(UInt8(ascii: ":"))
        put(Int(parts.tm_min), 2)
        out.append(UInt8(ascii: ":"))
        put(Int(parts.tm_sec), 2)
        out.append(UInt8(ascii: "."))
        put(Int(((ms % 1000) + 1000) % 1000), 3)
        out.append(UInt8(ascii: "Z"))
    }

    /// Parses RFC 3339 (`Z` or `±hh:mm`, optional fraction); nil for anything else.
    public static func parse(_ text: String) -> Date? {
        let pattern = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/
        guard let m = text.wholeMatch(of: pattern), let year = Int32(m.1), let month = Int32(m.2), let day = Int32(m.3),
            let hour = Int32(m.4), let minute = Int32(m.5), let second = Int32(m.6),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        let base = timegm(&parts)
        var offset = 0
        if m.8 != "Z" && m.8 != "z" {
            let sign = m.8.first == "-" ? -1 : 1
            let hh = Int(m.8.dropFirst().prefix(2)) ?? 0
            let mm = Int(m.8.suffix(2)) ?? 0
            offset = sign * (hh * 3600 + mm * 60)
        }
        let fraction = m.7.map { Double("0" + $0) ?? 0 } ?? 0
        return Date(timeIntervalSince1970: Double(base - offset) + fraction)
    }
}
