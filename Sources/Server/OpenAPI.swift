/// The API described in OpenAPI 3.1 (served at `/openapi.json`): every route, its typed parameters, request and
/// response bodies as referenced schemas, the headers it sets, and which routes need no key. A test checks that
/// every route the router serves appears here and that real answers match their schemas.
enum OpenAPI {
    struct Parameter {
        let name: String, location: String, schema: String, description: String
        var required = false
    }

    struct Operation {
        let method: String, path: String, summary: String
        var body: String? = nil  // request schema name
        /// (status, description, response schema name or nil for no JSON body, response headers)
        let responses: [(String, String, String?, [String])]
        var query: [Parameter] = []
        /// Open routes (no API key): `/health`, `/metrics`, `/openapi.json`, `/`.
        var open = false
    }

    static let idParameter = Parameter(name: "id", location: "path", schema: #"{"type":"string","pattern":"^[A-Za-z0-9_-]{1,64}$"}"#,
                                       description: "Job id", required: true)
    static let queueParameter = Parameter(name: "queue", location: "path", schema: #"{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$"}"#,
                                          description: "Queue name", required: true)
    static let nameParameter = Parameter(name: "name", location: "path", schema: #"{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"}"#,
                                         description: "Schedule name", required: true)
    static let limit = Parameter(name: "limit", location: "query", schema: #"{"type":"integer","minimum":1,"maximum":1000,"default":50}"#,
                                 description: "Page size")
    static let cursor = Parameter(name: "cursor", location: "query", schema: #"{"type":"string","pattern":"^[0-9]{1,15}:[A-Za-z0-9_-]{1,64}$"}"#,
                                  description: "nextCursor of the previous page (a position: <ms>:<job id>)")
    static let queueQuery = Parameter(name: "queue", location: "query", schema: #"{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$"}"#,
                                      description: "Only this queue")
    static let typeQuery = Parameter(name: "type", location: "query", schema: #"{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"}"#,
                                     description: "Only this job type")
    static let since = Parameter(name: "since", location: "query", schema: #"{"type":"string","format":"date-time"}"#, description: "From (RFC 3339)")
    static let until = Parameter(name: "until", location: "query", schema: #"{"type":"string","format":"date-time"}"#, description: "Until (RFC 3339)")

    static let enqueueAnswers: [(String, String, String?, [String])] = [
        ("201", "Created job", "Job", ["Location", "X-Request-Id"]),
        ("200", "The existing job of a repeated idempotencyKey (Idempotent-Replay: true)", "Job", ["Idempotent-Replay", "X-Request-Id"]),
        ("409", "unique_conflict: a live job holds the unique key (jobId names it)", "Error", []),
        ("202", "Spooled: Redis unreachable; the job is journaled and pushed later (spooled: true)", "Job", ["X-Request-Id"]),
        ("413", "Body or payload too large", "Error", []), ("415", "Content-Type is not application/json", "Error", []),
    ]

    static let operations: [Operation] = [
        .init(method: "POST", path: "/jobs", summary: "Enqueue one job (write-ahead: journaled, then in Redis)", body: "EnqueueRequest",
              responses: enqueueAnswers),
        .init(method: "POST", path: "/enqueue", summary: "Alias of POST /jobs", body: "EnqueueRequest", responses: enqueueAnswers),
        .init(method: "POST", path: "/jobs/batch", summary: "Enqueue up to 1000 jobs, all or nothing", body: "BatchRequest",
              responses: [("201", "Created jobs", "JobList", ["X-Request-Id"]), ("202", "Spooled (Redis unreachable)", "JobList", ["X-Request-Id"]),
                          ("413", "Too large", "Error", []), ("415", "Content-Type is not application/json", "Error", [])]),
        .init(method: "GET", path: "/jobs/export", summary: "Every job the filters of GET /jobs match, newest first, as NDJSON with its events (streamed)",
              responses: [("200", "application/x-ndjson: one job per line, with events", nil, ["X-Request-Id"])],
              query: [typeQuery, queueQuery, since, until,
                      Parameter(name: "state", location: "query",
                                schema: #"{"type":"string","enum":["scheduled","pending","active","retrying","completed","dead","cancelled","purged"]}"#,
                                description: "Only jobs in this state"),
                      Parameter(name: "limit", location: "query", schema: #"{"type":"integer","minimum":1}"#, description: "At most this many jobs (default all)"),
                      cursor,
                      Parameter(name: "where", location: "query", schema: #"{"type":"string","pattern":"^(result)?/[^=]*=.*$","maxLength":1024}"#,
                                description: "pointer=value, as for GET /jobs; repeat for AND")]),
        .init(method: "POST", path: "/jobs/replay",
              summary: "Re-run journaled jobs matching a filter (even ones Redis dropped): each gets a copy with replayOf and a replayed event. A dry run unless dryRun is false; the same X-Request-Id replays nothing twice",
              body: "ReplayRequest",
              responses: [("200", "What was (or would be) replayed", "ReplayResult", ["X-Request-Id"]),
                          ("413", "Too large", "Error", []), ("415", "Content-Type is not application/json", "Error", [])]),
        .init(method: "GET", path: "/jobs/{id}", summary: "A job: live from Redis, else from the journal (source)",
              responses: [("200", "Job", "Job", ["X-Request-Id"]), ("404", "Unknown job", "Error", [])]),
        .init(method: "GET", path: "/jobs/{id}/events", summary: "A job's whole history by seq, and any conflicting copies",
              responses: [("200", "Events", "EventList", ["X-Request-Id"]), ("404", "Unknown job", "Error", [])]),
        .init(method: "GET", path: "/jobs", summary: "History query over the journal, newest first, keyset-paginated",
              responses: [("200", "A page of jobs", "JobPage", ["X-Request-Id"])],
              query: [Parameter(name: "state", location: "query",
                                schema: #"{"type":"string","enum":["scheduled","pending","active","retrying","completed","dead","cancelled","purged"]}"#,
                                description: "Only jobs in this state"), typeQuery, queueQuery, since, until, limit, cursor,
                      Parameter(name: "where", location: "query", schema: #"{"type":"string","pattern":"^(result)?/[^=]*=.*$","maxLength":1024}"#,
                                description: "pointer=value: a JSON pointer into the payload (result/… into the result) equal to a value (JSON when it parses, else a string); repeat for AND. Fields declared with --index-field use an index; others are read job by job, at most --scan-limit jobs per page (400 scan_limit beyond)")]),
        .init(method: "DELETE", path: "/jobs/{id}", summary: "Cancel a pending, scheduled or retrying job",
              responses: [("200", "Cancelled job", "Job", ["X-Request-Id"]), ("404", "Unknown job", "Error", []),
                          ("409", "Active or finished (or known only to the journal)", "Error", [])]),
        .init(method: "POST", path: "/jobs/{id}/retry", summary: "Requeue a dead or cancelled job",
              responses: [("200", "Requeued job", "Job", ["X-Request-Id"]), ("404", "Unknown job", "Error", []),
                          ("409", "Not dead or cancelled (or known only to the journal)", "Error", [])]),
        .init(method: "GET", path: "/dlq", summary: "Dead jobs, newest death first",
              responses: [("200", "A page of dead jobs", "JobPage", ["X-Request-Id"])], query: [queueQuery, limit, cursor]),
        .init(method: "POST", path: "/dlq/{id}/requeue", summary: "Requeue one dead job",
              responses: [("200", "Requeued job", "Job", ["X-Request-Id"]), ("404", "No such dead job", "Error", [])]),
        .init(method: "POST", path: "/dlq/requeue", summary: "Requeue up to limit dead jobs, oldest death first (optional queue and type filters)",
              body: "RequeueFilter", responses: [("200", "How many were requeued and how many remain", "Requeued", ["X-Request-Id"])]),
        .init(method: "DELETE", path: "/dlq/{id}", summary: "Purge one dead job from Redis (the journal keeps its history)",
              responses: [("200", "Purged", "Purged", ["X-Request-Id"]), ("404", "No such dead job", "Error", [])]),
        .init(method: "GET", path: "/queues", summary: "Queues with their counts", responses: [("200", "Queues", "QueueList", ["X-Request-Id"])]),
        .init(method: "POST", path: "/queues/{queue}/pause", summary: "Pause claims from a queue (enqueues still land)",
              responses: [("200", "The queue", "Queue", ["X-Request-Id"])]),
        .init(method: "POST", path: "/queues/{queue}/resume", summary: "Resume a paused queue", responses: [("200", "The queue", "Queue", ["X-Request-Id"])]),
        .init(method: "GET", path: "/stats", summary: "Counts by state, in total and per queue", responses: [("200", "Stats", "Stats", ["X-Request-Id"])]),
        .init(method: "GET", path: "/stats/history", summary: "Per-bucket history from the journal",
              responses: [("200", "Buckets", "StatsHistory", ["X-Request-Id"])],
              query: [since, until, Parameter(name: "bucket", location: "query", schema: #"{"type":"string","enum":["1m","1h","1d"],"default":"1h"}"#,
                                               description: "Bucket width"), queueQuery, typeQuery]),
        .init(method: "GET", path: "/health", summary: "Redis, journal and ingestion lag",
              responses: [("200", "ok", "Health", ["X-Request-Id"]), ("503", "degraded: Redis or the journal is down", "Health", ["Retry-After"])], open: true),
        .init(method: "GET", path: "/metrics", summary: "Prometheus text exposition", responses: [("200", "Metrics (text/plain)", nil, [])], open: true),
        .init(method: "GET", path: "/openapi.json", summary: "This document", responses: [("200", "OpenAPI 3.1", "OpenAPIDocument", [])], open: true),
        .init(method: "GET", path: "/", summary: "Dashboard (HTML shell; it asks for the key and fetches data with it)",
              responses: [("200", "HTML page", nil, [])], open: true),
        .init(method: "POST", path: "/admin/recover", summary: "Rebuild Redis from the journal (what was, or would be, restored)", body: "RecoverRequest",
              responses: [("200", "Recovery report", "RecoverReport", ["X-Request-Id"])]),
        .init(method: "POST", path: "/schedules", summary: "Create a schedule: a cron expression or an interval, and the job each tick enqueues",
              body: "ScheduleRequest",
              responses: [("201", "The schedule", "Schedule", ["Location", "X-Request-Id"]), ("409", "A schedule has that name", "Error", []),
                          ("413", "Too large", "Error", []), ("415", "Content-Type is not application/json", "Error", [])]),
        .init(method: "GET", path: "/schedules", summary: "Every schedule with its last and next tick",
              responses: [("200", "Schedules", "ScheduleList", ["X-Request-Id"])]),
        .init(method: "GET", path: "/schedules/{name}", summary: "A schedule with its last and next tick",
              responses: [("200", "The schedule", "Schedule", ["X-Request-Id"]), ("404", "Unknown schedule", "Error", [])]),
        .init(method: "PATCH", path: "/schedules/{name}", summary: "Pause or resume a schedule", body: "SchedulePatch",
              responses: [("200", "The schedule", "Schedule", ["X-Request-Id"]), ("404", "Unknown schedule", "Error", []),
                          ("415", "Content-Type is not application/json", "Error", [])]),
        .init(method: "DELETE", path: "/schedules/{name}", summary: "Delete a schedule (its history stays in the journal)",
              responses: [("204", "Deleted", nil, ["X-Request-Id"]), ("404", "Unknown schedule", "Error", [])]),
        .init(method: "POST", path: "/limits", summary: "Create a rate and/or concurrency limit on starting jobs (checked at claim time)",
              body: "LimitRequest",
              responses: [("201", "The limit", "Limit", ["Location", "X-Request-Id"]), ("409", "A limit has that name", "Error", []),
                          ("415", "Content-Type is not application/json", "Error", [])]),
        .init(method: "GET", path: "/limits", summary: "Every limit", responses: [("200", "Limits", "LimitList", ["X-Request-Id"])]),
        .init(method: "DELETE", path: "/limits/{name}", summary: "Delete a limit (claims stop applying it within a second)",
              responses: [("204", "Deleted", nil, ["X-Request-Id"]), ("404", "Unknown limit", "Error", [])]),
        .init(method: "GET", path: "/schedules/{name}/events", summary: "A schedule's history from this server's journal, newest first",
              responses: [("200", "Events", "ScheduleEventList", ["X-Request-Id"]), ("404", "Unknown schedule", "Error", [])],
              query: [Parameter(name: "limit", location: "query", schema: #"{"type":"integer","minimum":1,"maximum":1000,"default":100}"#,
                                description: "How many events")]),
    ]

    static let schemas = #"""
    "Error":{"type":"object","required":["error"],"properties":{"error":{"type":"object","required":["code","message","field"],"properties":{"code":{"type":"string"},"message":{"type":"string"},"field":{"type":["string","null"]},"jobId":{"type":"string","description":"unique_conflict: the job holding the key"}}}}},
    "Duration":{"oneOf":[{"type":"string","pattern":"^[0-9]{1,9}(ms|s|m|h|d)$","examples":["30s","250ms","5m","2h","1d"]},{"type":"integer","minimum":0,"maximum":1000000000000,"description":"milliseconds"}]},
    "EnqueueRequest":{"type":"object","additionalProperties":false,"required":["type"],"not":{"required":["delay","runAt"]},"description":"delay and runAt exclude each other","properties":{"type":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"},"payload":{"description":"any JSON value, at most 512 KiB, stored byte for byte"},"queue":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$","default":"default"},"priority":{"type":"string","enum":["critical","high","normal","low"],"default":"normal"},"maxAttempts":{"type":"integer","minimum":1,"maximum":100,"default":3},"timeout":{"$ref":"#/components/schemas/Duration"},"delay":{"$ref":"#/components/schemas/Duration"},"runAt":{"type":"string","format":"date-time"},"backoff":{"type":"object","additionalProperties":false,"properties":{"base":{"$ref":"#/components/schemas/Duration"},"max":{"$ref":"#/components/schemas/Duration"}}},"idempotencyKey":{"type":"string","minLength":1,"maxLength":64,"pattern":"^[^\\u0000-\\u001f\\u007f]+$","description":"at most 256 UTF-8 bytes, no control characters"},"unique":{"type":"object","additionalProperties":false,"required":["key"],"description":"refuse (409 unique_conflict, naming the holder's jobId) while a job with this key in this queue is in the states while names","properties":{"key":{"type":"string","minLength":1,"maxLength":64,"pattern":"^[^\\u0000-\\u001f\\u007f]+$"},"while":{"type":"string","enum":["pending","active","until_complete"],"default":"until_complete"}}}}},
    "BatchRequest":{"type":"object","additionalProperties":false,"required":["jobs"],"properties":{"jobs":{"type":"array","minItems":1,"maxItems":1000,"items":{"$ref":"#/components/schemas/EnqueueRequest"}}}},
    "RequeueFilter":{"type":"object","additionalProperties":false,"properties":{"queue":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$"},"type":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"},"limit":{"type":"integer","minimum":1,"maximum":10000,"default":1000}}},
    "RecoverRequest":{"type":"object","additionalProperties":false,"properties":{"dryRun":{"type":"boolean","default":false},"asOf":{"type":"string","format":"date-time"}}},
    "Job":{"type":"object","required":["id","type","queue","state","priority","payload","attempts","maxAttempts","timeout","backoff","createdAt","updatedAt"],"properties":{"id":{"type":"string"},"type":{"type":"string"},"queue":{"type":"string"},"state":{"type":"string","enum":["scheduled","pending","active","retrying","completed","dead","cancelled","purged"]},"priority":{"type":"string","enum":["critical","high","normal","low"]},"payload":{},"attempts":{"type":"integer","minimum":0},"maxAttempts":{"type":"integer"},"timeout":{"type":"string"},"backoff":{"type":"object","required":["base","max"],"properties":{"base":{"type":"string"},"max":{"type":"string"}}},"runAt":{"type":["string","null"],"format":"date-time"},"idempotencyKey":{"type":["string","null"]},"createdAt":{"type":"string","format":"date-time"},"updatedAt":{"type":"string","format":"date-time"},"startedAt":{"type":["string","null"],"format":"date-time"},"finishedAt":{"type":["string","null"],"format":"date-time"},"lastError":{"type":["string","null"]},"result":{},"progress":{},"source":{"type":"string","enum":["redis","journal"]},"spooled":{"type":"boolean"},"unique":{"type":"object","required":["key","while"],"properties":{"key":{"type":"string"},"while":{"type":"string","enum":["pending","active","until_complete"]}}},"uniqueConflict":{"type":"boolean","description":"batch: this entry is the job holding the unique key; nothing was created for it"},"replayOf":{"type":"string","description":"the job this one re-runs (POST /jobs/replay)"}}},
    "ReplayRequest":{"type":"object","additionalProperties":false,"properties":{"filter":{"type":"object","additionalProperties":false,"description":"the filters of GET /jobs","properties":{"state":{"type":"string","enum":["scheduled","pending","active","retrying","completed","dead","cancelled","purged"]},"type":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"},"queue":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$"},"since":{"type":"string","format":"date-time"},"until":{"type":"string","format":"date-time"},"cursor":{"type":"string","pattern":"^[0-9]{1,15}:[A-Za-z0-9_-]{1,64}$"},"where":{"oneOf":[{"type":"string","pattern":"^(result)?/[^=]*=.*$","maxLength":1024},{"type":"array","items":{"type":"string","pattern":"^(result)?/[^=]*=.*$","maxLength":1024}}]}}},"dryRun":{"type":"boolean","default":true},"limit":{"type":"integer","minimum":1,"maximum":10000,"default":1000},"queue":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$","description":"enqueue the copies here instead of each original's queue"}},"examples":[{"filter":{"type":"payment.charge","state":"dead","since":"2026-11-29T02:00:00Z","until":"2026-11-29T03:00:00Z"},"dryRun":false}]},
    "ReplayResult":{"type":"object","required":["matched","replayed","jobs","originals","dryRun","nextCursor"],"properties":{"matched":{"type":"integer","minimum":0,"description":"jobs the filter matches (all of them)"},"replayed":{"type":"integer","minimum":0,"description":"copies this request stands for (0 on a dry run)"},"jobs":{"type":"array","items":{"type":"string"},"description":"the copies' ids, in the order of originals"},"originals":{"type":"array","items":{"type":"string"},"description":"the jobs taken (newest first, at most limit)"},"dryRun":{"type":"boolean"},"created":{"type":"integer","description":"copies made now (not by an earlier request with the same X-Request-Id)"},"spooled":{"type":"integer","description":"copies journaled while Redis was unreachable (delivered later)"},"nextCursor":{"type":["string","null"],"description":"more jobs match than limit: pass as filter.cursor"}}},
    "JobList":{"type":"object","required":["jobs"],"properties":{"jobs":{"type":"array","items":{"$ref":"#/components/schemas/Job"}}}},
    "JobPage":{"type":"object","required":["jobs","nextCursor"],"properties":{"jobs":{"type":"array","items":{"$ref":"#/components/schemas/Job"}},"nextCursor":{"type":["string","null"]}}},
    "Event":{"type":"object","required":["seq","event","state","at","attempt"],"properties":{"seq":{"type":"integer","minimum":1},"event":{"type":"string"},"state":{"type":"string"},"at":{"type":"string","format":"date-time"},"attempt":{"type":"integer"},"worker":{"type":["string","null"]},"error":{"type":["string","null"]},"actor":{"type":["string","null"]},"detail":{"type":["string","null"]},"runMs":{"type":"integer"}}},
    "EventList":{"type":"object","required":["jobId","events","conflicts"],"properties":{"jobId":{"type":"string"},"events":{"type":"array","items":{"$ref":"#/components/schemas/Event"}},"conflicts":{"type":"array","items":{"$ref":"#/components/schemas/Event"}}}},
    "Counts":{"type":"object","required":["pending","scheduled","active","retrying","dead","completed","failed"],"properties":{"pending":{"type":"integer"},"scheduled":{"type":"integer"},"active":{"type":"integer"},"retrying":{"type":"integer"},"dead":{"type":"integer"},"completed":{"type":"integer"},"failed":{"type":"integer"},"paused":{"type":"boolean"}}},
    "Queue":{"type":"object","required":["name","counts"],"properties":{"name":{"type":"string"},"counts":{"$ref":"#/components/schemas/Counts"}}},
    "QueueList":{"type":"object","required":["queues"],"properties":{"queues":{"type":"array","items":{"$ref":"#/components/schemas/Queue"}}}},
    "Stats":{"allOf":[{"$ref":"#/components/schemas/Counts"},{"type":"object","required":["queues"],"properties":{"queues":{"type":"object","additionalProperties":{"$ref":"#/components/schemas/Counts"}}}}]},
    "StatsHistory":{"type":"object","required":["bucket","buckets"],"properties":{"bucket":{"type":"string","enum":["1m","1h","1d"]},"buckets":{"type":"array","items":{"type":"object","required":["start","enqueued","completed","failed","dead"],"properties":{"start":{"type":"string","format":"date-time"},"enqueued":{"type":"integer"},"completed":{"type":"integer"},"failed":{"type":"integer"},"dead":{"type":"integer"},"p50RunMs":{"type":["integer","null"]},"p95RunMs":{"type":["integer","null"]}}}}}},
    "Health":{"type":"object","required":["status","redis","journal","journalLag"],"properties":{"status":{"type":"string","enum":["ok","degraded"]},"redis":{"type":"string","enum":["up","down"]},"journal":{"type":"string","enum":["up","down"]},"journalLag":{"type":"string"}}},
    "Requeued":{"type":"object","required":["requeued","remaining"],"properties":{"requeued":{"type":"integer","minimum":0},"remaining":{"type":"integer","minimum":0}}},
    "Purged":{"type":"object","required":["purged"],"properties":{"purged":{"type":"string"}}},
    "RecoverReport":{"type":"object","required":["dryRun","candidates","alreadyInRedis","restored","stale","undefined","byState"],"properties":{"dryRun":{"type":"boolean"},"asOf":{"type":["string","null"],"format":"date-time"},"candidates":{"type":"integer"},"alreadyInRedis":{"type":"integer"},"restored":{"type":"integer"},"stale":{"type":"integer"},"undefined":{"type":"integer"},"byState":{"type":"object","additionalProperties":{"type":"integer"}}}},
    "OpenAPIDocument":{"type":"object","required":["openapi","paths"]},
    "ScheduleJob":{"type":"object","additionalProperties":false,"required":["type"],"properties":{"type":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"},"payload":{"description":"any JSON value"},"queue":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$","default":"default"},"priority":{"type":"string","enum":["critical","high","normal","low"],"default":"normal"},"maxAttempts":{"type":"integer","minimum":1,"maximum":100,"default":3},"timeout":{"$ref":"#/components/schemas/Duration"},"backoff":{"type":"object","additionalProperties":false,"properties":{"base":{"$ref":"#/components/schemas/Duration"},"max":{"$ref":"#/components/schemas/Duration"}}}}},
    "ScheduleRequest":{"type":"object","additionalProperties":false,"required":["name","job"],"oneOf":[{"required":["cron"]},{"required":["every"]}],"properties":{"name":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"},"cron":{"type":"string","description":"5 fields (minute hour day month weekday) or 6 (seconds first), or @hourly, @daily, @weekly, @monthly, @yearly","examples":["0 2 * * *","*/10 * * * * *"]},"every":{"type":"string","pattern":"^[0-9]{1,9}(ms|s|m|h|d)$","description":"an interval from 1s to 366d"},"timezone":{"type":"string","default":"UTC","description":"IANA zone, e.g. Europe/Berlin"},"job":{"$ref":"#/components/schemas/ScheduleJob"},"catchUp":{"type":"string","enum":["none","one","all"],"default":"one"},"catchUpLimit":{"type":"integer","minimum":1,"maximum":10000,"default":100},"paused":{"type":"boolean","default":false}}},
    "LimitRequest":{"type":"object","additionalProperties":false,"required":["name"],"anyOf":[{"required":["rate"]},{"required":["concurrency"]}],"properties":{"name":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"},"queue":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,64}$"},"type":{"type":"string","pattern":"^[A-Za-z0-9._:-]{1,128}$"},"key":{"type":"string","pattern":"^/[^\\u0000-\\u001f]{1,255}$","description":"JSON pointer into the payload: counted per distinct value"},"rate":{"type":"object","additionalProperties":false,"required":["limit","per"],"properties":{"limit":{"type":"integer","minimum":1,"maximum":1000000},"per":{"$ref":"#/components/schemas/Duration"}}},"concurrency":{"type":"integer","minimum":1,"maximum":100000}}},
    "Limit":{"type":"object","required":["name","queue","type","key","rate","concurrency","createdAt"],"properties":{"name":{"type":"string"},"queue":{"type":["string","null"]},"type":{"type":["string","null"]},"key":{"type":["string","null"]},"rate":{"type":["object","null"],"properties":{"limit":{"type":"integer"},"per":{"type":"string"}}},"concurrency":{"type":["integer","null"]},"createdAt":{"type":"string","format":"date-time"}}},
    "LimitList":{"type":"object","required":["limits"],"properties":{"limits":{"type":"array","items":{"$ref":"#/components/schemas/Limit"}}}},
    "SchedulePatch":{"type":"object","additionalProperties":false,"required":["paused"],"properties":{"paused":{"type":"boolean"}}},
    "Schedule":{"type":"object","required":["name","timezone","job","catchUp","catchUpLimit","paused","createdAt","updatedAt","lastRunAt","nextRunAt"],"properties":{"name":{"type":"string"},"cron":{"type":["string","null"]},"every":{"type":["string","null"]},"timezone":{"type":"string"},"job":{"type":"object","required":["type","queue","payload","priority","maxAttempts","timeout","backoff"],"properties":{"type":{"type":"string"},"queue":{"type":"string"},"payload":{},"priority":{"type":"string"},"maxAttempts":{"type":"integer"},"timeout":{"type":"string"},"backoff":{"type":"object"}}},"catchUp":{"type":"string","enum":["none","one","all"]},"catchUpLimit":{"type":"integer"},"paused":{"type":"boolean"},"createdAt":{"type":"string","format":"date-time"},"updatedAt":{"type":"string","format":"date-time"},"lastRunAt":{"type":["string","null"],"format":"date-time"},"nextRunAt":{"type":["string","null"],"format":"date-time"}}},
    "ScheduleList":{"type":"object","required":["schedules"],"properties":{"schedules":{"type":"array","items":{"$ref":"#/components/schemas/Schedule"}}}},
    "ScheduleEventList":{"type":"object","required":["name","events"],"properties":{"name":{"type":"string"},"events":{"type":"array","items":{"type":"object","required":["at","event"],"properties":{"at":{"type":"string","format":"date-time"},"event":{"type":"string","enum":["created","updated","paused","resumed","deleted","fired","skipped"]},"tick":{"type":["string","null"],"format":"date-time"},"jobId":{"type":["string","null"]},"detail":{"type":["string","null"]}}}}}}
    """#

    static let headers = #"""
    "X-Request-Id":{"description":"The request's id: the client's (at most 128 visible ASCII characters) or a generated req-…","schema":{"type":"string"}},
    "Location":{"description":"The created job","schema":{"type":"string"}},
    "Idempotent-Replay":{"description":"true: nothing was created, this is the first job of the idempotency key","schema":{"type":"string","enum":["true"]}},
    "Retry-After":{"description":"Seconds to wait before trying again","schema":{"type":"integer"}},
    "Allow":{"description":"The methods the path serves","schema":{"type":"string"}},
    "WWW-Authenticate":{"description":"Bearer","schema":{"type":"string"}}
    """#

    /// Answers every operation can give besides its own: bad input, keys, browser checks, limits, outages.
    static func common(_ op: Operation) -> [(String, String, String?, [String])] {
        var answers: [(String, String, String?, [String])] = [
            ("403", "Host or Origin refused (see Security in the README)", "Error", []), ("405", "Method not allowed here", "Error", ["Allow"]),
        ]
        if op.body != nil || !op.query.isEmpty || op.path.contains("{") || op.method == "POST" { answers.append(("400", "Invalid request; field names what", "Error", [])) }
        if !op.open {
            answers.append(("401", "Missing or invalid API key", "Error", ["WWW-Authenticate"]))
            answers.append(("429", "Rate limited", "Error", ["Retry-After"]))
            answers.append(("503", "Redis or the journal is unavailable (redis_unavailable, journal_unavailable)", "Error", ["Retry-After"]))
        }
        return answers.filter { extra in !op.responses.contains { $0.0 == extra.0 } }
    }

    static let document: String = {
        var paths = [String: [String]]()
        var order = [String]()
        for op in operations {
            let params = (op.path.contains("{id}") ? [idParameter] : []) + (op.path.contains("{queue}") ? [queueParameter] : [])
                + (op.path.contains("{name}") ? [nameParameter] : []) + op.query
            let parameterText = params.map {
                #"{"name":\#(JSONObject.quote($0.name)),"in":"\#($0.location)","required":\#($0.required),"description":\#(JSONObject.quote($0.description)),"schema":\#($0.schema)}"#
            }.joined(separator: ",")
            let responses = (op.responses + common(op)).map { status, text, schema, headers -> String in
                var content = ""
                if let schema {
                    content = ##","content":{"application/json":{"schema":{"$ref":"#/components/schemas/\##(schema)"}}}"##
                } else if op.path == "/jobs/export" {
                    content = #","content":{"application/x-ndjson":{"schema":{"type":"string"}}}"#
                } else if op.path == "/metrics" {
                    content = #","content":{"text/plain":{"schema":{"type":"string"}}}"#
                } else if op.path == "/" {
                    content = #","content":{"text/html":{"schema":{"type":"string"}}}"#
                }
                let headerText = headers.isEmpty ? "" : ",\"headers\":{" + headers.map { ##""\##($0)":{"$ref":"#/components/headers/\##($0)"}"## }.joined(separator: ",") + "}"
                return "\(JSONObject.quote(status)):{\"description\":\(JSONObject.quote(text))\(headerText)\(content)}"
            }.joined(separator: ",")
            let body = op.body.map { ##","requestBody":{"required":\##(op.path != "/dlq/requeue" && op.path != "/admin/recover"),"content":{"application/json":{"schema":{"$ref":"#/components/schemas/\##($0)"}}}}"## } ?? ""
            let security = op.open ? #","security":[]"# : ""
            let operation = "\(JSONObject.quote(op.method.lowercased())):{\"summary\":\(JSONObject.quote(op.summary)),\"parameters\":[\(parameterText)]\(body),\"responses\":{\(responses)}\(security)}"
            if paths[op.path] == nil { order.append(op.path) }
            paths[op.path, default: []].append(operation)
        }
        let pathText = order.map { "\(JSONObject.quote($0)):{\(paths[$0]!.joined(separator: ","))}" }.joined(separator: ",")
        return #"{"openapi":"3.1.0","info":{"title":"Docket","version":"0.1.0","description":"Distributed job queue: Redis hot path, SQLite journal. Every GET route also answers HEAD."},"components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"},"apiKey":{"type":"apiKey","in":"header","name":"X-API-Key"}},"headers":{\#(headers)},"schemas":{\#(schemas)}},"security":[{"bearer":[]},{"apiKey":[]}],"paths":{\#(pathText)}}"#
    }()
}
