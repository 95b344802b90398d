/// The API described in OpenAPI 3.0 (served at `/openapi.json`). A test checks that every route the
/// router serves appears here.
enum OpenAPI {
    struct Operation {
        let method: String, path: String, summary: String
        let body: String?  // request schema ref
        let responses: [(String, String)]  // status, description
        var query: [String] = []
    }

    static let operations: [Operation] = [
        .init(method: "POST", path: "/jobs", summary: "Enqueue one job (write-ahead: journaled, then in Redis)", body: "EnqueueRequest",
              responses: [("201", "Created job"), ("200", "Existing job for a repeated idempotencyKey (Idempotent-Replay: true)"),
                          ("202", "Spooled: Redis unreachable, job journaled and pushed later"), ("400", "Invalid request"),
                          ("401", "Missing or invalid API key"), ("413", "Body or payload too large"), ("415", "Not JSON"),
                          ("429", "Rate limited")]),
        .init(method: "POST", path: "/enqueue", summary: "Alias of POST /jobs", body: "EnqueueRequest",
              responses: [("201", "Created job"), ("200", "Idempotent replay"), ("202", "Spooled"), ("400", "Invalid request"), ("413", "Too large")]),
        .init(method: "POST", path: "/jobs/batch", summary: "Enqueue up to 1000 jobs, all or nothing", body: "BatchRequest",
              responses: [("201", "{jobs: [Job]}"), ("202", "Spooled"), ("400", "Invalid request; field names the index, e.g. jobs[3].type"),
                          ("413", "Too large")]),
        .init(method: "GET", path: "/jobs/{id}", summary: "A job: live from Redis, else from the journal (source)", body: nil,
              responses: [("200", "Job"), ("404", "Unknown job")]),
        .init(method: "GET", path: "/jobs/{id}/events", summary: "A job's whole history by seq", body: nil,
              responses: [("200", "{jobId, events: [Event], conflicts: [Event]}"), ("404", "Unknown job")]),
        .init(method: "GET", path: "/jobs", summary: "History query over the journal, newest first, keyset-paginated", body: nil,
              responses: [("200", "{jobs: [Job], nextCursor}"), ("400", "Invalid query")],
              query: ["state", "type", "queue", "since", "until", "limit", "cursor"]),
        .init(method: "DELETE", path: "/jobs/{id}", summary: "Cancel a pending, scheduled or retrying job", body: nil,
              responses: [("200", "Cancelled job"), ("404", "Unknown job"), ("409", "Active or finished")]),
        .init(method: "POST", path: "/jobs/{id}/retry", summary: "Requeue a dead or cancelled job", body: nil,
              responses: [("200", "Requeued job"), ("404", "Unknown job"), ("409", "Not dead or cancelled")]),
        .init(method: "GET", path: "/dlq", summary: "Dead jobs, newest death first", body: nil,
              responses: [("200", "{jobs: [Job], nextCursor}"), ("400", "Invalid query")], query: ["queue", "limit", "cursor"]),
        .init(method: "POST", path: "/dlq/{id}/requeue", summary: "Requeue one dead job", body: nil,
              responses: [("200", "Requeued job"), ("404", "No such dead job")]),
        .init(method: "POST", path: "/dlq/requeue", summary: "Requeue up to limit dead jobs, oldest death first (optional queue and type filters)", body: "RequeueFilter",
              responses: [("200", "{requeued: n, remaining: m}"), ("400", "Invalid filter")]),
        .init(method: "DELETE", path: "/dlq/{id}", summary: "Purge one dead job from Redis (the journal keeps its history)", body: nil,
              responses: [("200", "{purged: id}"), ("404", "No such dead job")]),
        .init(method: "GET", path: "/queues", summary: "Queues with their counts", body: nil, responses: [("200", "{queues: [...]}")]),
        .init(method: "POST", path: "/queues/{queue}/pause", summary: "Pause claims from a queue (enqueues still land)", body: nil,
              responses: [("200", "Queue with counts"), ("400", "Invalid queue name")]),
        .init(method: "POST", path: "/queues/{queue}/resume", summary: "Resume a paused queue", body: nil,
              responses: [("200", "Queue with counts"), ("400", "Invalid queue name")]),
        .init(method: "GET", path: "/stats", summary: "Counts by state, in total and per queue", body: nil, responses: [("200", "Stats")]),
        .init(method: "GET", path: "/stats/history", summary: "Per-bucket history from the journal", body: nil,
              responses: [("200", "{bucket, buckets: [...]}"), ("400", "Invalid query")], query: ["since", "until", "bucket", "queue", "type"]),
        .init(method: "GET", path: "/health", summary: "Redis, journal and ingestion lag (no auth)", body: nil,
              responses: [("200", "ok or degraded"), ("503", "Journal unavailable")]),
        .init(method: "GET", path: "/metrics", summary: "Prometheus text (no auth)", body: nil, responses: [("200", "Metrics")]),
        .init(method: "GET", path: "/openapi.json", summary: "This document", body: nil, responses: [("200", "OpenAPI 3.0")]),
        .init(method: "GET", path: "/", summary: "Dashboard (HTML): counts, queues with pause/resume, recent jobs, DLQ with requeue", body: nil,
              responses: [("200", "HTML page")]),
        .init(method: "POST", path: "/admin/recover", summary: "Rebuild Redis from the journal (what was, or would be, restored)", body: "RecoverRequest",
              responses: [("200", "{dryRun, asOf, candidates, alreadyInRedis, restored, stale, undefined, byState}"), ("400", "Invalid request")]),
    ]

    static let schemas = #"""
    "Error":{"type":"object","required":["error"],"properties":{"error":{"type":"object","required":["code","message"],"properties":{"code":{"type":"string"},"message":{"type":"string"},"field":{"type":"string","nullable":true}}}}},
    "Duration":{"oneOf":[{"type":"string","example":"30s"},{"type":"integer","description":"milliseconds"}]},
    "EnqueueRequest":{"type":"object","additionalProperties":false,"required":["type"],"properties":{"type":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"},"payload":{"description":"any JSON value, at most 512 KiB encoded"},"queue":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$","default":"default"},"priority":{"type":"string","enum":["critical","high","normal","low"],"default":"normal"},"maxAttempts":{"type":"integer","minimum":1,"maximum":100,"default":3},"timeout":{"$ref":"#/components/schemas/Duration"},"delay":{"$ref":"#/components/schemas/Duration"},"runAt":{"type":"string","format":"date-time"},"backoff":{"type":"object","additionalProperties":false,"properties":{"base":{"$ref":"#/components/schemas/Duration"},"max":{"$ref":"#/components/schemas/Duration"}}},"idempotencyKey":{"type":"string","maxLength":256}}},
    "BatchRequest":{"type":"object","additionalProperties":false,"required":["jobs"],"properties":{"jobs":{"type":"array","minItems":1,"maxItems":1000,"items":{"$ref":"#/components/schemas/EnqueueRequest"}}}},
    "RecoverRequest":{"type":"object","additionalProperties":false,"properties":{"dryRun":{"type":"boolean","default":false},"asOf":{"type":"string","format":"date-time"}}},
    "RequeueFilter":{"type":"object","additionalProperties":false,"properties":{"queue":{"type":"string"},"type":{"type":"string"},"limit":{"type":"integer","minimum":1,"maximum":10000,"default":1000}}},
    "Job":{"type":"object","properties":{"id":{"type":"string"},"type":{"type":"string"},"queue":{"type":"string"},"state":{"type":"string","enum":["scheduled","pending","active","retrying","completed","dead","cancelled","purged"]},"priority":{"type":"string"},"payload":{},"attempts":{"type":"integer"},"maxAttempts":{"type":"integer"},"timeout":{"type":"string"},"backoff":{"type":"object"},"runAt":{"type":"string","format":"date-time","nullable":true},"idempotencyKey":{"type":"string","nullable":true},"createdAt":{"type":"string","format":"date-time"},"updatedAt":{"type":"string","format":"date-time"},"startedAt":{"type":"string","format":"date-time","nullable":true},"finishedAt":{"type":"string","format":"date-time","nullable":true},"lastError":{"type":"string","nullable":true},"result":{},"progress":{},"source":{"type":"string","enum":["redis","journal"]},"spooled":{"type":"boolean"}}}
    """#

    static let document: String = {
        var paths = [String: [String]]()
        var order = [String]()
        for op in operations {
            let params = (op.path.contains("{id}") ? [#"{"name":"id","in":"path","required":true,"schema":{"type":"string"}}"#] : [])
                + (op.path.contains("{queue}") ? [#"{"name":"queue","in":"path","required":true,"schema":{"type":"string"}}"#] : [])
                + op.query.map { #"{"name":"\#($0)","in":"query","required":false,"schema":{"type":"string"}}"# }
            let responses = op.responses.map { status, text -> String in
                let schema = status.hasPrefix("2") ? (op.path == "/metrics" || op.path == "/" ? "" : #","content":{"application/json":{"schema":{"type":"object"}}}"#)
                    : ##","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}"##
                return "\(JSONObject.quote(status)):{\"description\":\(JSONObject.quote(text))\(schema)}"
            }.joined(separator: ",")
            let body = op.body.map { ##","requestBody":{"required":true,"content":{"application/json":{"schema":{"$ref":"#/components/schemas/\##($0)"}}}}"## } ?? ""
            let operation = "\(JSONObject.quote(op.method.lowercased())):{\"summary\":\(JSONObject.quote(op.summary)),\"parameters\":[\(params.joined(separator: ","))]\(body),\"responses\":{\(responses)}}"
            if paths[op.path] == nil { order.append(op.path) }
            paths[op.path, default: []].append(operation)
        }
        let pathText = order.map { "\(JSONObject.quote($0)):{\(paths[$0]!.joined(separator: ","))}" }.joined(separator: ",")
        return #"{"openapi":"3.0.3","info":{"title":"Docket","version":"0.1.0","description":"Distributed job queue: Redis hot path, SQLite journal."},"components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"},"apiKey":{"type":"apiKey","in":"header","name":"X-API-Key"}},"schemas":{\#(schemas)}},"security":[{"bearer":[]},{"apiKey":[]}],"paths":{\#(pathText)}}"#
    }()
}
