import DocketJournal
import DocketQueue
import Hummingbird

/// History tools beyond listing (SPEC §9): replay from the journal, and the answer to a search the scan limit stops.
extension DocketAPI {
    /// `POST /jobs/replay` `{"filter": {the filters of GET /jobs}, "dryRun"?: true, "limit"?: 1000, "queue"?}`.
    func replay(_ request: Request, _ context: DocketContext) async throws -> Response {
        guard case .object(let body) = try await body(request, context) else { throw APIError.invalid("body", "must be a JSON object") }
        if let unknown = body.keys.sorted().first(where: { !["filter", "dryRun", "limit", "queue"].contains($0) }) {
            throw APIError.invalid(unknown, "unknown field")
        }
        let filter = try historyFilter(try Self.filterQuery(body["filter"]), defaultLimit: 1, maxLimit: 1, limitAllowed: false)
        let dryRun: Bool
        switch body["dryRun"] {
        case nil, .null?: dryRun = true
        case .bool(let b)?: dryRun = b
        case let other?: throw APIError.invalid("dryRun", "must be true or false, not \(other.kind)")
        }
        let limit: Int
        switch body["limit"] {
        case nil, .null?: limit = 1000
        case .int(let n)? where (1...Int64(JournaledQueue.maxReplay)).contains(n): limit = Int(n)
        default: throw APIError.invalid("limit", "must be an integer 1-\(JournaledQueue.maxReplay)")
        }
        let target = try Self.string(body, "queue").map { text throws(APIError) -> QueueName in
            guard let name = QueueName(rawValue: text) else { throw APIError.invalid("queue", "must be a queue name") }
            return name
        }
        let replay: JournaledQueue.Replay
        do {
            replay = try await queue.replay(filter, limit: limit, queue: target, dryRun: dryRun, requestID: context.requestID, actor: context.actor)
        } catch let error as JournalError where error.code == .invalidCursor {
            throw APIError.invalid("filter.cursor", "not a cursor this server issued")
        } catch let error as JournalError where error.code == .scanLimit {
            throw Self.scanLimited(filter, scanLimit)
        }
        var o = JSONObject()
        o.add("matched", replay.matched)
        o.add("replayed", replay.jobs.count)
        o.add("jobs", raw: JSONObject.array(replay.jobs.map { JSONObject.quote($0.rawValue) }))
        o.add("originals", raw: JSONObject.array(replay.originals.map { JSONObject.quote($0.rawValue) }))
        o.add("dryRun", dryRun)
        if !dryRun {
            o.add("created", replay.created)
            o.add("spooled", replay.spooled)
        }
        o.add("nextCursor", replay.nextCursor)
        if replay.nextCursor == nil { o.add("nextCursor", raw: "null") }
        return Response.json(o.text)
    }

    /// A filter object (`{"state": "dead", "where": ["/customer=42"]}`) as query parameters: strings as they are,
    /// `where` a string or a list of strings.
    static func filterQuery(_ value: JSONValue?) throws(APIError) -> Query {
        var multi = [String: [String]]()
        switch value {
        case nil, .null?: break
        case .object(let fields)?:
            for (name, value) in fields {
                switch value {
                case .string(let s): multi[name] = [s]
                case .array(let items) where name == "where":
                    multi[name] = try items.enumerated().map { i, item throws(APIError) -> String in
                        guard case .string(let s) = item else { throw APIError.invalid("filter.where[\(i)]", "must be a string /pointer=value") }
                        return s
                    }
                default:
                    throw APIError.invalid("filter.\(name)", name == "where" ? "must be a string or a list of strings" : "must be a string")
                }
            }
        case let other?: throw APIError.invalid("filter", "must be an object of GET /jobs filters, not \(other.kind)")
        }
        return Query(multi: multi, prefix: "filter.")
    }

    /// 400 for a search on fields without an index that reads more jobs than `--scan-limit` allows.
    static func scanLimited(_ filter: JournalReader.Filter, _ limit: Int?) -> APIError {
        let message = JournalReader.scanLimitError(filter, limit ?? 0).message
        return APIError(.badRequest, code: "scan_limit", message: message, field: "where")
    }
}
