/// A strict JSON (RFC 8259) parser for request bodies, straight from the bytes: no intermediate `Data`, no `Decoder`
/// machinery, no error thrown and caught per value. Duplicate object keys are an error naming the key. Members named
/// in `verbatim` (payloads) keep their exact source text (`JSONValue.verbatim`): a payload is stored byte for byte,
/// numbers and key order included.
struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0
    private let maxDepth: Int
    private let verbatim: Set<String>
    /// Member names from the root to the value being read (for error messages).
    private var path: [String] = []

    static func parse(_ body: [UInt8], maxDepth: Int = 64, verbatim: Set<String> = []) throws(APIError) -> JSONValue {
        let result: Result<JSONValue, APIError> = body.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(bytes: buffer, maxDepth: maxDepth, verbatim: verbatim)
            do throws(APIError) {
                parser.skipSpace()
                let value = try parser.value(depth: 0)
                parser.skipSpace()
                guard parser.i == buffer.count else { throw parser.malformed("unexpected text after the JSON value") }
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, verbatim: Set<String>) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.verbatim = verbatim
    }

    /// Where the parser is, as the API names fields: `jobs[3].payload`.
    private var field: String {
        if path.isEmpty { return "body" }
        var name = ""
        for part in path {
            if part.hasPrefix("[") || name.isEmpty { name += part } else { name += "." + part }
        }
        return name
    }

    private func malformed(_ why: String) -> APIError {
        APIError.invalid(field, "malformed JSON (\(why) at byte \(i))")
    }

    private mutating func skipSpace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) throws(APIError) -> JSONValue {
        guard i < bytes.count else { throw malformed("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw malformed("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(APIError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw malformed("unexpected end") }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw malformed("unexpected character") }
        i += n
    }

    private mutating func object(depth: Int) throws(APIError) -> JSONValue {
        guard depth <= maxDepth else { throw APIError.invalid("body", "JSON nested deeper than \(maxDepth) levels") }
        i += 1
        var members = [String: JSONValue]()
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw malformed("expected a member name") }
            let key = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw malformed("expected ':'") }
            i += 1
            skipSpace()
            path.append(key)
            let start = i
            var member = try value(depth: depth)
            if verbatim.contains(key) {
                member = .verbatim(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self))
            }
            if members.updateValue(member, forKey: key) != nil {
                throw APIError.invalid(field, "duplicate key")
            }
            path.removeLast()
            if try closes(UInt8(ascii: "}")) { return .object(members) }
        }
    }

    /// After a member or item: true when `close` ends the container, false after a `,` (another one follows).
    private mutating func closes(_ close: UInt8) throws(APIError) -> Bool {
        skipSpace()
        guard i < bytes.count else { throw malformed("unexpected end") }
        let next = bytes[i]
        i += 1
        if next == UInt8(ascii: ",") { return false }
        guard next == close else { i -= 1; throw malformed("expected ',' or '\(Character(Unicode.Scalar(close)))'") }
        return true
    }

    private mutating func array(depth: Int) throws(APIError) -> JSONValue {
        guard depth <= maxDepth else { throw APIError.invalid("body", "JSON nested deeper than \(maxDepth) levels") }
        i += 1
        var items = [JSONValue]()
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(items)
        }
        while true {
            skipSpace()
            path.append("[\(items.count)]")
            items.append(try value(depth: depth))
            path.removeLast()
            if try closes(UInt8(ascii: "]")) { return .array(items) }
        }
    }

    private mutating func string() throws(APIError) -> String {
        i += 1  // the opening quote
        let start = i
        // Fast path: no escapes.
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                defer { i += 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw malformed("control character in a string") }
            i += 1
        }
        var out = Array(bytes[start..<i])
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                i += 1
                guard i < bytes.count else { throw malformed("unexpected end") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw malformed("unpaired surrogate")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw malformed("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw malformed("unpaired surrogate")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw malformed("bad \\u escape") }
                    out.append(contentsOf: UTF8.encode(u)!)
                default: throw malformed("bad escape")
                }
            default:
                if b < 0x20 { throw malformed("control character in a string") }
                out.append(b)
                i += 1
            }
        }
        throw malformed("unterminated string")
    }

    private mutating func hex4() throws(APIError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw malformed("unexpected end") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw malformed("bad \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    private mutating func digits() -> Int {
        let start = i
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
        return i - start
    }

    private mutating func number() throws(APIError) -> JSONValue {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count else { throw malformed("unexpected end") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { throw malformed("leading zero") }
        } else if digits() == 0 {
            throw malformed("bad number")
        }
        var integral = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            integral = false
            guard digits() > 0 else { throw malformed("bad number") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            integral = false
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw malformed("bad number") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if integral, let n = Int64(text) { return .int(n) }
        guard let d = Double(text) else { throw malformed("bad number") }
        return .double(d)
    }
}
