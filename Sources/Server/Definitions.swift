import DocketQueue

/// What `/schedules` and `/limits` bodies (and their `--schedules` / `--limits` files) share: a JSON object of known
/// fields with a name, and a file that is a JSON list of such bodies.
extension DocketAPI {
    /// A definition body: an object with only `allowed` fields, and its valid `name`.
    static func definition(_ value: JSONValue, allowed: Set<String>) throws(APIError) -> (body: [String: JSONValue], name: String) {
        guard case .object(let body) = value else { throw APIError.invalid("body", "must be a JSON object") }
        if let unknown = body.keys.sorted().first(where: { !allowed.contains($0) }) { throw APIError.invalid(unknown, "unknown field") }
        guard let name = try string(body, "name") else { throw APIError.invalid("name", "is required") }
        guard Schedule.validName(name) else { throw APIError.invalid("name", "must be 1-128 characters of A-Z a-z 0-9 . _ : -") }
        return (body, name)
    }

    /// An optional string field of a body.
    static func string(_ body: [String: JSONValue], _ name: String) throws(APIError) -> String? {
        switch body[name] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case let other?: throw APIError.invalid(name, "must be a string, not \(other.kind)")
        }
    }

    /// A file of definitions: a JSON list of bodies, each parsed by `parse`, names unique. Errors name the item.
    static func definitions<T>(file text: String, of what: String, verbatim: Set<String> = [], name: (T) -> String,
                               _ parse: (JSONValue) throws(APIError) -> T) throws -> [T] {
        let value: JSONValue
        do { value = try JSONValue.parse(Array(text.utf8), verbatim: verbatim) } catch { throw APIError.invalid("file", "not JSON: \(error)") }
        guard case .array(let items) = value else { throw APIError.invalid("file", "must be a JSON array of \(what)") }
        var seen = Set<String>()
        return try items.enumerated().map { i, item in
            do {
                let definition = try parse(item)
                guard seen.insert(name(definition)).inserted else { throw APIError.invalid("name", "\(name(definition)) appears twice") }
                return definition
            } catch let error as APIError {
                throw APIError.invalid("[\(i)].\(error.field ?? "")", error.message)
            }
        }
    }
}
