import DocketQueue
import Foundation
import Hummingbird

/// `/limits` (SPEC §8): rate and concurrency limits on starting jobs, enforced inside `claim.lua`.
extension DocketAPI {
    static let limitFields: Set<String> = ["name", "queue", "type", "key", "rate", "concurrency"]

    /// Validates a limit body; every rule names its field.
    static func limit(from value: JSONValue) throws(APIError) -> Limit {
        let (body, name) = try definition(value, allowed: limitFields)
        func string(_ field: String) throws(APIError) -> String? { try Self.string(body, field) }
        let queue = try string("queue"), type = try string("type"), key = try string("key")
        if let queue, QueueName(rawValue: queue) == nil { throw APIError.invalid("queue", "must be 1-64 characters of A-Z a-z 0-9 . _ : -") }
        if let type, JobType(rawValue: type) == nil { throw APIError.invalid("type", "must be 1-128 characters of A-Z a-z 0-9 . _ : -") }
        if let key {
            guard key.hasPrefix("/"), (2...256).contains(key.utf8.count), !key.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw APIError.invalid("key", "must be a JSON pointer into the payload, e.g. /customer_id")
            }
        }
        var limit = Limit(name: name, queue: queue, type: type, key: key)
        switch body["rate"] {
        case nil, .null?: break
        case .object(let rate)?:
            if let unknown = rate.keys.sorted().first(where: { $0 != "limit" && $0 != "per" }) { throw APIError.invalid("rate.\(unknown)", "unknown field") }
            guard case .int(let n)? = rate["limit"], (1...1_000_000).contains(n) else { throw APIError.invalid("rate.limit", "must be an integer 1-1000000") }
            let per: Duration?
            switch rate["per"] {
            case .string(let s)?: per = DurationText.parse(s)
            case .int(let ms)?: per = .milliseconds(ms)
            default: per = nil
            }
            guard let per, per >= .milliseconds(1), per <= .seconds(86_400) else { throw APIError.invalid("rate.per", "must be a duration from 1ms to 24h") }
            limit.rateLimit = Int(n)
            limit.ratePerMs = per.milliseconds
        case let other?: throw APIError.invalid("rate", "must be {\"limit\": N, \"per\": duration}, not \(other.kind)")
        }
        switch body["concurrency"] {
        case nil, .null?: break
        case .int(let n)? where (1...100_000).contains(n): limit.concurrency = Int(n)
        default: throw APIError.invalid("concurrency", "must be an integer 1-100000")
        }
        guard limit.rateLimit != nil || limit.concurrency != nil else { throw APIError.invalid("rate", "give rate, concurrency or both") }
        return limit
    }

    /// A limit from its JSON (a `POST /limits` body), for `docket bench --limit`.
    public static func limit(json text: String) throws -> Limit {
        let value: JSONValue
        do { value = try JSONValue.parse(Array(text.utf8)) } catch { throw APIError.invalid("limit", "not JSON: \(error)") }
        return try limit(from: value)
    }

    /// The limits of a `--limits` file: a JSON array of `POST /limits` bodies. Errors name the item.
    public static func limits(file text: String) throws -> [Limit] {
        try definitions(file: text, of: "limits", name: \.name) { (item) throws(APIError) in try limit(from: item) }
    }

    /// Applies a `--limits` file at start: limits it names are created, or replaced when they differ; others stay.
    public static func apply(_ limits: [Limit], to driver: RedisQueueDriver) async throws -> (created: Int, updated: Int) {
        let existing = Dictionary(try await driver.limits().map { ($0.name, $0) }) { a, _ in a }
        var created = 0, updated = 0
        for limit in limits {
            guard let old = existing[limit.name] else {
                if try await driver.addLimit(limit) { created += 1 }
                continue
            }
            var same = limit
            same.createdAt = old.createdAt
            guard same != old else { continue }
            try await driver.putLimit(same)
            updated += 1
        }
        return (created, updated)
    }

    static func render(_ limit: Limit) -> String {
        var o = JSONObject()
        o.add("name", limit.name)
        o.add("queue", limit.queue)
        o.add("type", limit.type)
        o.add("key", limit.key)
        if let n = limit.rateLimit, let per = limit.ratePerMs {
            var rate = JSONObject()
            rate.add("limit", n)
            rate.add("per", DurationText.format(.milliseconds(per)))
            o.add("rate", raw: rate.text)
        } else {
            o.add("rate", raw: "null")
        }
        o.add("concurrency", limit.concurrency)
        o.add("createdAt", limit.createdAt)
        return o.text
    }

    func createLimit(_ request: Request, _ context: DocketContext) async throws -> Response {
        let limit = try Self.limit(from: try await body(request, context))
        guard try await driver.addLimit(limit) else {
            throw APIError(.conflict, code: "conflict", message: "limit \(limit.name) exists (DELETE it first)", field: "name")
        }
        var response = Response.json(Self.render(limit), status: .created)
        response.headers[.location] = "/limits/\(limit.name)"
        return response
    }

    func listLimits() async throws -> Response {
        Response.json(#"{"limits":\#(JSONObject.array(try await driver.limits().map(Self.render)))}"#)
    }

    func deleteLimit(_ context: DocketContext) async throws -> Response {
        let name = context.parameters.get("name") ?? ""
        guard Schedule.validName(name), try await driver.deleteLimit(name) else { throw APIError.notFound("limit \"\(name.prefix(80))\"") }
        return Response(status: .noContent)
    }
}
