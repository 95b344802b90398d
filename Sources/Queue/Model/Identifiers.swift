import Foundation
import Synchronization

/// A job id: a UUIDv7 in lowercase text, so ids sort by creation time.
public struct JobID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String

    /// Accepts 1–64 characters of `[A-Za-z0-9_-]` (so an id can never traverse a path or a key).
    public init?(rawValue: String) {
        guard (1...64).contains(rawValue.utf8.count),
            rawValue.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") })
        else { return nil }
        self.rawValue = rawValue
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A new UUIDv7: 48 bits of Unix milliseconds, then random bits (monotonic within a process).
    public static func make(at date: Date = Date()) -> JobID {
        var bytes = [UInt8](repeating: 0, count: 16)
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        // Within one millisecond, 12 bits of counter keep ids of one process in creation order.
        let (ms, counter) = uuidClock.withLock { state -> (UInt64, UInt16) in
            if millis > state.ms {
                state = (millis, UInt16.random(in: 0..<0x400))
            } else {
                state.counter &+= 1
                if state.counter > 0xFFF { state = (state.ms + 1, 0) }
            }
            return (state.ms, state.counter)
        }
        for i in 0..<6 { bytes[i] = UInt8((ms >> (8 * (5 - UInt64(i)))) & 0xFF) }
        bytes[6] = 0x70 | UInt8(counter >> 8)
        bytes[7] = UInt8(counter & 0xFF)
        var rng = SystemRandomNumberGenerator()
        let tail = rng.next() as UInt64
        for i in 0..<8 { bytes[8 + i] = UInt8((tail >> (8 * UInt64(i))) & 0xFF) }
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        // 8-4-4-4-12 lowercase hex, written byte by byte (this runs once per enqueued job).
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { text.append(UInt8(ascii: "-")) }
            text.append(Self.hexDigits[Int(b >> 4)])
            text.append(Self.hexDigits[Int(b & 0xF)])
        }
        return JobID(rawValue: String(decoding: text, as: UTF8.self))!
    }

    public var description: String { rawValue }
    public static func < (a: JobID, b: JobID) -> Bool { a.rawValue < b.rawValue }
}

private let uuidClock = Mutex<(ms: UInt64, counter: UInt16)>((0, 0))

/// A job type: 1–128 characters of `[A-Za-z0-9._:-]`.
public struct JobType: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init?(rawValue: String) {
        guard (1...128).contains(rawValue.utf8.count), rawValue.utf8.allSatisfy(\.isNameCharacter) else { return nil }
        self.rawValue = rawValue
    }
    public init(stringLiteral value: String) {
        guard let type = JobType(rawValue: value) else { preconditionFailure("invalid job type literal \(value)") }
        self = type
    }
    public var description: String { rawValue }
}

/// A queue name: 1–64 characters of `[A-Za-z0-9._:-]`.
public struct QueueName: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init?(rawValue: String) {
        guard (1...64).contains(rawValue.utf8.count), rawValue.utf8.allSatisfy(\.isNameCharacter) else { return nil }
        self.rawValue = rawValue
    }
    public init(stringLiteral value: String) {
        guard let name = QueueName(rawValue: value) else { preconditionFailure("invalid queue name literal \(value)") }
        self = name
    }
    public static let `default`: QueueName = "default"
    public var description: String { rawValue }
}

/// A worker's id: unique per worker process (host, pid and a random suffix).
public struct WorkerID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// `host:pid:random`, unique across restarts and machines.
    public static func make() -> WorkerID {
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        return WorkerID(rawValue: "\(host):\(pid):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))")
    }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
    var isNameCharacter: Bool {
        isASCIIAlphanumeric || self == UInt8(ascii: ".") || self == UInt8(ascii: "_") || self == UInt8(ascii: ":")
            || self == UInt8(ascii: "-")
    }
}
