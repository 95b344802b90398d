import DocketQueue
import Foundation

/// Builds JSON text in one growing string; raw values (payloads, results) are embedded as they were stored.
struct JSONObject {
    private var out = "{"

    private mutating func key(_ key: String) {
        if out.utf8.count > 1 { out += "," }
        Self.quote(key, into: &out)
        out += ":"
    }

    mutating func add(_ key: String, _ value: String?) {
        self.key(key)
        if let value { Self.quote(value, into: &out) } else { out += "null" }
    }
    mutating func add(_ key: String, _ value: Int?) {
        self.key(key)
        out += value.map(String.init) ?? "null"
    }
    mutating func add(_ key: String, _ value: Bool) {
        self.key(key)
        out += value ? "true" : "false"
    }
    mutating func add(_ key: String, _ date: Date?) { add(key, date.map(Timestamp.format)) }
    mutating func add(_ key: String, raw: String?) {
        self.key(key)
        out += raw ?? "null"
    }

    var text: String { out + "}" }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }

    static func quote(_ s: String) -> String {
        var out = ""
        quote(s, into: &out)
        return out
    }

    /// Appends `s` as a JSON string; text with nothing to escape (the usual case) is appended whole.
    static func quote(_ s: String, into out: inout String) {
        out += "\""
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += s
            out += "\""
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += scalar.value < 0x10 ? "\\u000" : "\\u001"
                out += String(scalar.value & 0xF, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
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
