import DocketQueue
import Foundation

/// Builds JSON text in one growing byte array; raw values (payloads, results) are embedded as they were stored.
struct JSONObject {
    private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    private mutating func key(_ key: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        Self.quote(key, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func add(_ key: String, _ value: String?) {
        self.key(key)
        if let value { Self.quote(value, into: &bytes) } else { bytes.append(contentsOf: Self.null) }
    }
    mutating func add(_ key: String, _ value: Int?) {
        self.key(key)
        if let value { Self.append(value, into: &bytes) } else { bytes.append(contentsOf: Self.null) }
    }
    mutating func add(_ key: String, _ value: Bool) {
        self.key(key)
        bytes.append(contentsOf: value ? Self.true : Self.false)
    }
    mutating func add(_ key: String, _ date: Date?) {
        self.key(key)
        if let date { Timestamp.write(date, quotedInto: &bytes) } else { bytes.append(contentsOf: Self.null) }
    }
    mutating func add(_ key: String, raw: String?) {
        self.key(key)
        if let raw { bytes.append(contentsOf: raw.utf8) } else { bytes.append(contentsOf: Self.null) }
    }

    /// The object, closed.
    var closed: [UInt8] { bytes + [UInt8(ascii: "}")] }
    var text: String { String(decoding: closed, as: UTF8.self) }

    private static let null = Array("null".utf8), `true` = Array("true".utf8), `false` = Array("false".utf8)

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }

    static func quote(_ s: String) -> String {
        var out = [UInt8]()
        quote(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func append(_ n: Int, into out: inout [UInt8]) {
        if n >= 0 && n < 10 { out.append(UInt8(ascii: "0") + UInt8(n)); return }
        out.append(contentsOf: String(n).utf8)
    }

    /// Appends `s` as a JSON string.
    static func quote(_ s: String, into out: inout [UInt8]) { JSONText.appendQuoted(s, to: &out) }
}

/// A decoded JSON value, strict about types (a number is never a Bool and vice versa).
indirect enum JSONValue: Codable, Equatable {
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])
    /// A value kept as its exact source text (validated JSON), e.g. a payload stored byte for byte.
    case verbatim(String)

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .verbatim(let text): try c.encode(JSONParser.parse(Array(text.utf8)))
        }
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        case .verbatim(let text): (try? JSONParser.parse(Array(text.utf8)))?.kind ?? "JSON"
        }
    }

    /// Parses a request body: at most `maxDepth` levels of nesting, valid UTF-8, one JSON value, no duplicate keys.
    /// Members named in `verbatim` keep their source text.
    static func parse(_ bytes: [UInt8], maxDepth: Int = 64, verbatim: Set<String> = []) throws(APIError) -> JSONValue {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw APIError.invalid("body", "not valid UTF-8") }
        return try JSONParser.parse(bytes, maxDepth: maxDepth, verbatim: verbatim)
    }

    var text: String {
        if case .verbatim(let text) = self { return text }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "null"
    }
}
