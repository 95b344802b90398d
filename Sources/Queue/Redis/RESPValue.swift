/// One Redis reply (RESP2).
public enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case array([RESPValue])
    case null

    /// The reply as text: bulk and simple strings, and integers in decimal.
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulkString(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    /// The reply as an integer: integer replies and numeric strings.
    public var int: Int64? {
        switch self {
        case .integer(let i): return i
        case .bulkString, .simpleString: return string.flatMap { Int64($0) }
        default: return nil
        }
    }

    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// A flat field/value array (HGETALL, a stream entry's fields) as a dictionary of text;
    /// nil when the reply is not an array.
    public var fieldMap: [String: String]? {
        guard let items = array else { return nil }
        var fields = [String: String](minimumCapacity: items.count / 2)
        for i in stride(from: 0, to: items.count - 1, by: 2) {
            if let key = items[i].string, let value = items[i + 1].string { fields[key] = value }
        }
        return fields
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

/// An argument of a Redis command: text, bytes or a number, always sent as a bulk string.
public struct RESPArgument: Sendable, Hashable, ExpressibleByStringInterpolation, ExpressibleByIntegerLiteral {
    public let bytes: [UInt8]
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init<I: BinaryInteger>(_ value: I) { self.bytes = Array(String(value).utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
    public init(_ key: RedisKey) { self.init(key.description) }
}

/// A complete Redis command: its name and arguments.
public struct RedisCommand: Sendable, Hashable {
    public let arguments: [RESPArgument]
    public init(_ name: String, _ arguments: [RESPArgument] = []) {
        self.arguments = [RESPArgument(name)] + arguments
    }
    public var name: String { String(decoding: arguments[0].bytes, as: UTF8.self) }
}
