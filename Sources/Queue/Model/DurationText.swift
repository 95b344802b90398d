/// Durations as the API and CLI write them: `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`, or bare milliseconds.
public enum DurationText {
    /// Parses `text`; nil for anything else (negative, empty, unknown unit, overflow).
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let trimmed = text.trimmingSpaces
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            // "5m" must not be read as "5" + "m" of "ms": the longest suffix wins because "ms" comes first.
            guard let value = Double(number), value >= 0, value.isFinite, value * Double(scale) < 1e15,
                number.allSatisfy({ $0.isNumber || $0 == "." })
            else { return nil }
            return .milliseconds(Int64((value * Double(scale)).rounded()))
        }
        guard let ms = Int64(trimmed), ms >= 0, ms < 1_000_000_000_000_000 else { return nil }
        return .milliseconds(ms)
    }

    /// The shortest exact spelling: `250ms`, `30s`, `5m`, `2h`.
    public static func format(_ duration: Duration) -> String {
        let ms = duration.milliseconds
        for (suffix, scale) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms != 0 && ms % scale == 0 {
            return "\(ms / scale)\(suffix)"
        }
        return "\(ms)ms"
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

extension Duration {
    /// Whole milliseconds (truncated).
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
    /// Whole nanoseconds (truncated).
    public var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
