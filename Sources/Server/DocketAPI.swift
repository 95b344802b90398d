import DocketJournal
import DocketQueue
import Foundation
import Hummingbird
import Logging

/// The REST API (SPEC §4). Handlers translate HTTP ⇄ domain; they never spell Redis keys or SQL.
public struct DocketAPI: Sendable {
    public struct Configuration: Sendable {
        /// Accepted API keys; empty = no auth.
        public var apiKeys: [String] = []
        /// Requests per minute per client; 0 = unlimited.
        public var rateLimit = 0
        public var maxBody = 1 << 20
        public var maxPayload = 512 * 1024
        /// The server listens on loopback only: `Host` must then be a loopback name or in `allowedHosts`.
        public var loopback = true
        /// Extra `Host` names (`DOCKET_ALLOWED_HOSTS`) and origins allowed to change state (`DOCKET_ALLOWED_ORIGINS`).
        public var allowedHosts: Set<String> = []
        public var allowedOrigins: Set<String> = []
        /// Proxies whose `X-Forwarded-For` names the client (`DOCKET_TRUSTED_PROXIES`), for rate limits.
        public var trustedProxies: Set<String> = []
        /// The most jobs a search on fields without an index reads (`--scan-limit`); 0 = no bound.
        public var scanLimit = 200_000
        public init() {}
    }

    let queue: JournaledQueue
    let lookup: JobLookup
    let ingestor: JournalIngestor?
    let configuration: Configuration
    let metrics = HTTPMetrics()
    let jobMetrics = EventMetrics()
    let journalSize = Cached<(bytes: Int64, jobs: Int, events: Int)>(for: .seconds(30))
    var driver: RedisQueueDriver { queue.driver }
    var reader: JournalReader { queue.journal.reader }
    var scanLimit: Int? { configuration.scanLimit > 0 ? configuration.scanLimit : nil }

    public init(queue: JournaledQueue, ingestor: JournalIngestor?, configuration: Configuration) {
        self.queue = queue
        self.lookup = JobLookup(journal: queue.journal, driver: queue.driver)
        self.ingestor = ingestor
        self.configuration = configuration
        let jobMetrics = self.jobMetrics
        ingestor?.observe { jobMetrics.observe($0) }
    }

    /// The routes the router serves, as (method, path) — `openapi.json` must describe each one.
    public static let routes: [(String, String)] = [
        ("POST", "/jobs"), ("POST", "/jobs/batch"), ("POST", "/jobs/replay"), ("POST", "/enqueue"), ("GET", "/jobs/export"), ("GET", "/jobs/{id}"), ("GET", "/jobs/{id}/events"),
        ("GET", "/jobs"), ("DELETE", "/jobs/{id}"), ("POST", "/jobs/{id}/retry"), ("GET", "/dlq"), ("POST", "/dlq/{id}/requeue"),
        ("POST", "/dlq/requeue"), ("DELETE", "/dlq/{id}"), ("GET", "/queues"), ("POST", "/queues/{queue}/pause"),
        ("POST", "/queues/{queue}/resume"), ("GET", "/stats"), ("GET", "/stats/history"), ("GET", "/health"), ("GET", "/metrics"),
        ("GET", "/openapi.json"), ("POST", "/admin/recover"), ("GET", "/"),
        ("POST", "/schedules"), ("GET", "/schedules"), ("GET", "/schedules/{name}"), ("PATCH", "/schedules/{name}"),
        ("DELETE", "/schedules/{name}"), ("GET", "/schedules/{name}/events"), ("POST", "/limits"), ("GET", "/limits"),
        ("DELETE", "/limits/{name}"),
    ]

    public func router() -> Router<DocketContext> {
        let router = Router(context: DocketContext.self)
        let limiter = RateLimiter(perMinute: configuration.rateLimit, trustedProxies: configuration.trustedProxies)
        /// Every GET route also answers HEAD (the body is dropped by `RequestMiddleware`).
        func get(_ path: RouterPath, use handler: @escaping @Sendable (Request, DocketContext) async throws -> Response) {
            router.get(path, use: handler)
            router.head(path, use: handler)
        }
        router.add(middleware: RequestMiddleware(metrics: metrics))
        router.add(middleware: BrowserGuard(configuration: .init(
            loopback: configuration.loopback, allowedHosts: Set(configuration.allowedHosts.map { BrowserGuard.name(of: $0) }),
            allowedOrigins: Set(configuration.allowedOrigins.map { $0.lowercased() }))))
        router.add(middleware: AuthMiddleware(keys: configuration.apiKeys.map { Array($0.utf8) }, limiter: limiter))
        router.add(middleware: RateLimitMiddleware(limiter: limiter))
        router.post("/jobs") { request, context in try await self.enqueue(request, context) }
        router.post("/enqueue") { request, context in try await self.enqueue(request, context) }
        router.post("/jobs/batch") { request, context in try await self.enqueueBatch(request, context) }
        router.post("/jobs/replay") { request, context in try await self.replay(request, context) }
        get("/jobs/export") { request, _ in try await self.exportJobs(request) }
        get("/jobs/:id") { _, context in try await self.show(context) }
        get("/jobs/:id/events") { _, context in try await self.events(context) }
        get("/jobs") { request, _ in try await self.history(request) }
        router.delete("/jobs/:id") { _, context in try await self.cancel(context) }
        router.post("/jobs/:id/retry") { _, context in try await self.retry(context, deadOnly: false) }
        get("/dlq") { request, _ in try await self.deadLetters(request) }
        router.post("/dlq/requeue") { request, context in try await self.requeueAll(request, context) }
        router.post("/dlq/:id/requeue") { _, context in try await self.retry(context, deadOnly: true) }
        router.delete("/dlq/:id") { _, context in try await self.purge(context) }
        get("/queues") { _, _ in try await self.queues() }
        router.post("/queues/:queue/pause") { _, context in try await self.pause(context, paused: true) }
        router.post("/queues/:queue/resume") { _, context in try await self.pause(context, paused: false) }
        get("/stats") { _, _ in try await self.stats() }
        get("/stats/history") { request, _ in try await self.statsHistory(request) }
        get("/health") { _, _ in await self.health() }
        get("/metrics") { _, _ in try await self.prometheus() }
        get("/openapi.json") { _, _ in Response.json(OpenAPI.document) }
        router.post("/admin/recover") { request, context in try await self.recover(request, context) }
        router.post("/schedules") { request, context in try await self.createSchedule(request, context) }
        get("/schedules") { _, _ in try await self.listSchedules() }
        get("/schedules/:name") { _, context in try await self.showSchedule(context) }
        router.patch("/schedules/:name") { request, context in try await self.patchSchedule(request, context) }
        router.delete("/schedules/:name") { _, context in try await self.deleteSchedule(context) }
        get("/schedules/:name/events") { request, context in try await self.scheduleEvents(request, context) }
        router.post("/limits") { request, context in try await self.createLimit(request, context) }
        get("/limits") { _, _ in try await self.listLimits() }
        router.delete("/limits/:name") { _, context in try await self.deleteLimit(context) }
        get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: Dashboard.html)))
        }
        return router
    }

    // MARK: Enqueue

    func body(_ request: Request, _ context: DocketContext, verbatim: Set<String> = []) async throws -> JSONValue {
        // Required, not just checked when given: a browser's no-cors request can only send a form or text/plain body.
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "Content-Type must be application/json", field: "Content-Type")
        }
        var request = request
        let buffer = try await request.collectBody(upTo: configuration.maxBody)
        return try JSONValue.parse(Array(buffer.readableBytesView), verbatim: verbatim)
    }

    /// The fields of an optional JSON-object body (empty when there is no body); rejects names not in `allowed`.
    private func options(_ request: Request, _ context: DocketContext, allowed: Set<String>) async throws -> [String: JSONValue] {
        guard request.headers[.contentLength].map({ $0 != "0" }) ?? false || request.headers[.transferEncoding] != nil else { return [:] }
        guard case .object(let fields) = try await body(request, context) else { throw APIError.invalid("body", "must be a JSON object") }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) { throw APIError.invalid(unknown, "unknown field") }
        return fields
    }

    func enqueue(_ request: Request, _ context: DocketContext) async throws -> Response {
        let job = try EnqueueRequest.job(from: try await body(request, context, verbatim: ["payload"]), maxPayload: configuration.maxPayload)
        let outcome = try await queue.enqueue([job], actor: context.actor)[0]
        switch outcome {
        case .created(let job):
            var response = Response.json(JobJSON.render(job), status: .created)
            response.headers[.location] = "/jobs/\(job.id)"
            return response
        case .existing(let job):
            var response = Response.json(JobJSON.render(job), status: .ok)
            response.headers[.init("Idempotent-Replay")!] = "true"
            return response
        case .spooled(let job): return Response.json(JobJSON.render(job, spooled: true), status: .accepted)
        case .uniqueConflict(let job, let holder): throw Self.uniqueConflict(job, holder: holder, field: "unique.key")
        }
    }

    static func uniqueConflict(_ job: Job, holder: JobID, field: String) -> APIError {
        var error = APIError(.conflict, code: "unique_conflict",
                             message: "job \(holder) holds the unique key \"\(job.unique?.key ?? "")\" (while \(job.unique?.while.rawValue ?? "-"))", field: field)
        error.jobID = holder.rawValue
        return error
    }

    func enqueueBatch(_ request: Request, _ context: DocketContext) async throws -> Response {
        guard case .object(let body) = try await body(request, context, verbatim: ["payload"]) else { throw APIError.invalid("body", "must be {\"jobs\": [...]}") }
        if let unknown = body.keys.sorted().first(where: { $0 != "jobs" }) { throw APIError.invalid(unknown, "unknown field") }
        guard case .array(let items)? = body["jobs"] else { throw APIError.invalid("jobs", "must be an array of jobs") }
        guard (1...1000).contains(items.count) else { throw APIError.invalid("jobs", "must hold 1-1000 jobs") }
        // All or nothing: every job is validated before any is journaled.
        var jobs = [Job]()
        for (i, item) in items.enumerated() {
            jobs.append(try EnqueueRequest.job(from: item, prefix: "jobs[\(i)].", maxPayload: configuration.maxPayload))
        }
        let outcomes = try await queue.enqueue(jobs, actor: context.actor)
        let spooled = outcomes.contains { if case .spooled = $0 { true } else { false } }
        var rendered = [String]()
        for outcome in outcomes {
            switch outcome {
            case .spooled(let job): rendered.append(JobJSON.render(job, spooled: true))
            case .uniqueConflict(let job, let holder):
                // Like a repeated idempotency key: the answer is the job that holds the key, marked.
                let held = try await driver.job(holder, queue: job.queue) ?? job
                rendered.append(JobJSON.render(held, uniqueConflict: true))
            default: rendered.append(JobJSON.render(outcome.job))
            }
        }
        return Response.json(#"{"jobs":\#(JSONObject.array(rendered))}"#, status: spooled ? .accepted : .created)
    }

    // MARK: Jobs

    private func jobID(_ context: DocketContext) throws -> JobID {
        let text = context.parameters.get("id") ?? ""
        guard let id = JobID(rawValue: text) else { throw APIError.notFound("job \"\(text.prefix(80))\"") }
        return id
    }

    func show(_ context: DocketContext) async throws -> Response {
        let id = try jobID(context)
        guard let found = try await lookup.job(id) else { throw APIError.notFound("job \(id)") }
        return Response.json(JobJSON.render(found.job, source: found.source.rawValue))
    }

    func events(_ context: DocketContext) async throws -> Response {
        let id = try jobID(context)
        // Events still in the stream are journaled within milliseconds; catch up first when it is close.
        let events = try await reader.events(id)
        if events.isEmpty, try await lookup.job(id) == nil { throw APIError.notFound("job \(id)") }
        let conflicts = try await reader.conflicts(id)
        let render = { (e: JournalEvent) -> String in Self.renderEvent(e) }
        // Conflicts: events whose (job, seq) was journaled already with other content (Redis ran the job from an
        // older copy). Kept beside the history, never dropped.
        return Response.json(
            #"{"jobId":\#(JSONObject.quote(id.rawValue)),"events":\#(JSONObject.array(events.map(render))),"conflicts":\#(JSONObject.array(conflicts.map(render)))}"#)
    }

    /// One journal event as JSON.
    static func renderEvent(_ e: JournalEvent) -> String {
        var o = JSONObject(capacity: 160)
        o.add("seq", e.seq)
        o.add("event", e.event)
        o.add("state", e.state.rawValue)
        o.add("at", e.at)
        o.add("attempt", e.attempt)
        o.add("worker", e.worker)
        o.add("error", e.error)
        o.add("actor", e.actor)
        o.add("detail", e.detail)
        if let ms = e.runMs { o.add("runMs", Int(ms)) }
        return o.text
    }

    func history(_ request: Request) async throws -> Response {
        let filter = try historyFilter(Query(request), defaultLimit: 50, maxLimit: 1000)
        // The journal writes the jobs' JSON itself (see `exportPage`): what `JobJSON.render(job, source: "journal")` says.
        let page: (lines: [UInt8], count: Int, nextCursor: String?, scanLimited: Bool)
        do { page = try await reader.exportPage(filter, events: false) } catch let error as JournalError where error.code == .invalidCursor {
            throw APIError.invalid("cursor", "not a cursor this server issued")
        }
        if page.scanLimited, page.count < filter.limit { throw Self.scanLimited(filter, scanLimit) }
        var body = ByteBuffer()
        body.reserveCapacity(page.lines.count + 64)
        body.writeString(#"{"jobs":["#)
        body.writeBytes(page.lines)
        body.writeString(#"],"nextCursor":\#(page.nextCursor.map(JSONObject.quote) ?? "null")}"#)
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body))
    }

    /// `GET /jobs/export`: every job the filters of `GET /jobs` match, newest first, as NDJSON (one job per line, with
    /// its `events`), streamed a page at a time, so the result set is never held in memory. `limit` (default: no
    /// limit) caps the lines; a client resumes from the last line's `createdAt` and `id` (`cursor=<ms>:<id>`).
    func exportJobs(_ request: Request) async throws -> Response {
        let first = try historyFilter(Query(request), defaultLimit: Int.max, maxLimit: Int.max)
        // A bad cursor is a 400 before the stream starts (after, the status is already sent).
        if let cursor = first.cursor, !JournalReader.isCursor(cursor) { throw APIError.invalid("cursor", "not a position <ms>:<job id>") }
        let total = first.limit
        let reader = self.reader
        let body = ResponseBody { writer in
            // The journal writes each page's lines (`exportPage`); the next page is read while this one is sent.
            var filter = first
            filter.limit = min(1000, total)
            var page = try await reader.exportPage(filter)
            var written = 0
            while true {
                written += page.count
                var next: Task<(lines: [UInt8], count: Int, nextCursor: String?, scanLimited: Bool), any Error>?
                if let cursor = page.nextCursor, written < total {
                    filter.cursor = cursor
                    filter.limit = min(1000, total - written)
                    let f = filter
                    next = Task { try await reader.exportPage(f) }
                }
                if !page.lines.isEmpty { try await writer.write(ByteBuffer(bytes: page.lines)) }
                guard let next else { break }
                page = try await next.value
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
    }

    /// The filters of `GET /jobs` (and its export) from the query string.
    func historyFilter(_ q: Query, defaultLimit: Int, maxLimit: Int, limitAllowed: Bool = true) throws(APIError) -> JournalReader.Filter {
        try q.only(Set(["state", "type", "queue", "since", "until", "cursor", "where"] + (limitAllowed ? ["limit"] : [])))
        var filter = JournalReader.Filter()
        filter.matches = try q.all("where").map { text throws(APIError) in try Self.fieldMatch(text, field: q.prefix + "where") }
        filter.state = try q.parse("state", "one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))") { JobState(rawValue: $0) }
        filter.type = try q.parse("type", "a job type") { JobType(rawValue: $0) }
        filter.queue = try q.parse("queue", "a queue name") { QueueName(rawValue: $0) }
        filter.since = try q.parse("since", "an RFC 3339 time") { Timestamp.parse($0) }
        filter.until = try q.parse("until", "an RFC 3339 time") { Timestamp.parse($0) }
        let most = maxLimit == Int.max ? "a positive integer" : "an integer 1-\(maxLimit)"
        filter.limit = try q.parse("limit", most) { Int($0).flatMap { (1...maxLimit).contains($0) ? $0 : nil } } ?? defaultLimit
        filter.cursor = q["cursor"]
        filter.scanLimit = scanLimit
        return filter
    }

    /// `/customer=42`, `/a/b="x"`, `result/status=ok`: a pointer, `=`, a value (JSON if it parses, else a string).
    static func fieldMatch(_ text: String, field: String = "where") throws(APIError) -> JournalReader.FieldMatch {
        var rest = Substring(text)
        let inResult = rest.hasPrefix("result/")
        if inResult { rest = rest.dropFirst("result".count) }
        // "/" alone is a pointer too (the key ""), and an empty value is the empty string.
        guard rest.hasPrefix("/"), let eq = rest.firstIndex(of: "="), text.utf8.count <= 1024 else {
            throw APIError.invalid(field, "must be /pointer=value (or result/pointer=value), e.g. where=/customer=42")
        }
        let pointer = String(rest[..<eq]), raw = String(rest[rest.index(after: eq)...])
        let value: JournalReader.FieldMatch.Value
        switch try? JSONValue.parse(Array(raw.utf8)) {
        case .int(let n)?: value = .integer(n)
        case .double(let d)?: value = .real(d)
        case .string(let s)?: value = .text(s)
        case .bool(let b)?: value = .bool(b)
        case .null?: value = .null
        default: value = .text(raw)  // not JSON (or an object/array): compared as the string it is
        }
        return JournalReader.FieldMatch(inResult: inResult, pointer: pointer, value: value)
    }

    func cancel(_ context: DocketContext) async throws -> Response {
        let id = try jobID(context)
        do {
            return Response.json(JobJSON.render(try await driver.cancel(id, queue: nil, actor: context.actor), source: "redis"))
        } catch let error as QueueError {
            throw try await mapped(error, id: id, action: "cancelled (only pending, scheduled or retrying jobs can be)")
        }
    }

    func retry(_ context: DocketContext, deadOnly: Bool) async throws -> Response {
        let id = try jobID(context)
        if deadOnly, let job = try await driver.job(id), job.state != .dead {
            throw APIError.notFound("dead job \(id)")
        }
        do {
            return Response.json(JobJSON.render(try await driver.requeue(id, queue: nil, actor: context.actor), source: "redis"))
        } catch let error as QueueError {
            if deadOnly, error.code == .conflict { throw APIError.notFound("dead job \(id)") }
            throw try await mapped(error, id: id, action: "retried (only dead or cancelled jobs can be)")
        }
    }

    private func mapped(_ error: QueueError, id: JobID, action: String) async throws -> any Error {
        switch error.code {
        case .notFound:
            // Gone from Redis but still in the journal (GET shows it): it exists, it just cannot change any more.
            if let job = try await reader.job(id) {
                return APIError.conflict("job \(id) is \(job.state.rawValue) and known only to the journal (its Redis data expired); it cannot be \(action)")
            }
            return APIError.notFound("job \(id)")
        case .conflict: return APIError.conflict("job \(id) is \(error.state?.rawValue ?? "in another state") and cannot be \(action)")
        default: return error
        }
    }

    // MARK: Dead-letter queue

    func deadLetters(_ request: Request) async throws -> Response {
        let q = Query(request)
        try q.only(["queue", "limit", "cursor"])
        let queue = try q.parse("queue", "a queue name") { QueueName(rawValue: $0) }
        let limit = try q.parse("limit", "an integer 1-1000") { Int($0).flatMap { (1...1000).contains($0) ? $0 : nil } } ?? 50
        let page: RedisQueueDriver.DeadPage
        do { page = try await driver.deadJobs(queue: queue, limit: limit, after: q["cursor"]) } catch is QueueError {
            throw APIError.invalid("cursor", "not a cursor this server issued")
        }
        return Response.json(#"{"jobs":\#(JSONObject.array(page.jobs.map { JobJSON.render($0, source: "redis") })),"nextCursor":\#(page.next.map(JSONObject.quote) ?? "null")}"#)
    }

    func requeueAll(_ request: Request, _ context: DocketContext) async throws -> Response {
        var queue: QueueName?
        var type: JobType?
        let filters = try await options(request, context, allowed: ["queue", "type", "limit"])
        switch filters["queue"] {
        case nil, .null?: break
        case .string(let s)?: guard let name = QueueName(rawValue: s) else { throw APIError.invalid("queue", "not a queue name") }; queue = name
        default: throw APIError.invalid("queue", "must be a string")
        }
        switch filters["type"] {
        case nil, .null?: break
        case .string(let s)?: guard let t = JobType(rawValue: s) else { throw APIError.invalid("type", "not a job type") }; type = t
        default: throw APIError.invalid("type", "must be a string")
        }
        var limit = 1000
        switch filters["limit"] {
        case nil, .null?: break
        case .int(let n)?: guard (1...10_000).contains(n) else { throw APIError.invalid("limit", "must be 1-10000") }; limit = Int(n)
        case .double(let n)? where n == n.rounded() && (1...10_000).contains(n): limit = Int(n)  // 1552.0 is a whole number
        default: throw APIError.invalid("limit", "must be an integer 1-10000")
        }
        let done = try await driver.requeueDead(queue: queue, type: type, limit: limit, actor: context.actor)
        return Response.json(#"{"requeued":\#(done.requeued),"remaining":\#(done.remaining)}"#)
    }

    func purge(_ context: DocketContext) async throws -> Response {
        let id = try jobID(context)
        do { try await driver.purge(id, actor: context.actor) } catch let error as QueueError {
            throw error.code == .conflict || error.code == .notFound ? APIError.notFound("dead job \(id)") : error
        }
        return Response.json(#"{"purged":\#(JSONObject.quote(id.rawValue))}"#)
    }

    // MARK: Queues and stats

    private func countsJSON(_ c: QueueCounts) -> String {
        var o = countsObject(c)
        o.add("paused", c.paused)
        return o.text
    }

    private func countsObject(_ c: QueueCounts) -> JSONObject {
        var o = JSONObject()
        o.add("pending", c.pending)
        o.add("scheduled", c.scheduled)
        o.add("active", c.active)
        o.add("retrying", c.retrying)
        o.add("dead", c.dead)
        o.add("completed", c.completed)
        o.add("failed", c.failed)
        return o
    }

    func queues() async throws -> Response {
        var items = [String]()
        for name in try await driver.queues() {
            var o = JSONObject()
            o.add("name", name.rawValue)
            o.add("counts", raw: countsJSON(try await driver.counts(name)))
            items.append(o.text)
        }
        return Response.json(#"{"queues":\#(JSONObject.array(items))}"#)
    }

    func pause(_ context: DocketContext, paused: Bool) async throws -> Response {
        let text = context.parameters.get("queue") ?? ""
        guard let name = QueueName(rawValue: text) else { throw APIError.invalid("queue", "not a queue name") }
        if paused { try await driver.pause(name) } else { try await driver.resume(name) }
        var o = JSONObject()
        o.add("name", name.rawValue)
        o.add("counts", raw: countsJSON(try await driver.counts(name)))
        return Response.json(o.text)
    }

    func stats() async throws -> Response {
        var total = QueueCounts()
        var perQueue = JSONObject()
        for name in try await driver.queues() {
            let c = try await driver.counts(name)
            total.pending += c.pending; total.scheduled += c.scheduled; total.active += c.active
            total.retrying += c.retrying; total.dead += c.dead; total.completed += c.completed; total.failed += c.failed
            perQueue.add(name.rawValue, raw: countsJSON(c))
        }
        var o = countsObject(total)
        o.add("queues", raw: perQueue.text)
        return Response.json(o.text)
    }

    func statsHistory(_ request: Request) async throws -> Response {
        let q = Query(request)
        try q.only(["since", "until", "bucket", "queue", "type"])
        let now = Date()
        let until = try q.parse("until", "an RFC 3339 time") { Timestamp.parse($0) } ?? now
        let since = try q.parse("since", "an RFC 3339 time") { Timestamp.parse($0) } ?? until.addingTimeInterval(-86_400)
        // An empty or reversed range has no buckets (not an error: every such range is a valid question).
        let bucket = try q.parse("bucket", "1m, 1h or 1d") { JournalReader.Bucket(rawValue: $0) } ?? .hour
        guard until.timeIntervalSince(since) / (Double(bucket == .minute ? 60 : bucket == .hour ? 3600 : 86_400)) <= 10_000 else {
            throw APIError.invalid("bucket", "more than 10000 buckets in that range; use a larger bucket")
        }
        let queue = try q.parse("queue", "a queue name") { QueueName(rawValue: $0) }
        let type = try q.parse("type", "a job type") { JobType(rawValue: $0) }
        let buckets = try await reader.stats(since: since, until: until, bucket: bucket, queue: queue, type: type)
        let items = buckets.map { b -> String in
            var o = JSONObject()
            o.add("start", b.start)
            o.add("enqueued", b.enqueued)
            o.add("completed", b.completed)
            o.add("failed", b.failed)
            o.add("dead", b.dead)
            o.add("p50RunMs", b.p50RunMs.map(Int.init))
            o.add("p95RunMs", b.p95RunMs.map(Int.init))
            return o.text
        }
        return Response.json(#"{"bucket":"\#(bucket.rawValue)","buckets":\#(JSONObject.array(items))}"#)
    }

    func recover(_ request: Request, _ context: DocketContext) async throws -> Response {
        var dryRun = false
        var asOf: Date?
        let fields = try await options(request, context, allowed: ["dryRun", "asOf"])
        switch fields["dryRun"] {
        case nil, .null?: break
        case .bool(let b)?: dryRun = b
        default: throw APIError.invalid("dryRun", "must be a boolean")
        }
        switch fields["asOf"] {
        case nil, .null?: break
        case .string(let s)?:
            guard let date = Timestamp.parse(s) else { throw APIError.invalid("asOf", "must be an RFC 3339 time") }
            asOf = date
        default: throw APIError.invalid("asOf", "must be an RFC 3339 time string")
        }
        let report = try await Recovery(journal: queue.journal, driver: driver, logger: context.logger).run(dryRun: dryRun, asOf: asOf)
        var byState = JSONObject()
        for (state, n) in report.restored.sorted(by: { $0.key.rawValue < $1.key.rawValue }) { byState.add(state.rawValue, n) }
        var o = JSONObject()
        o.add("dryRun", report.dryRun)
        o.add("asOf", report.asOf)
        o.add("candidates", report.candidates)
        o.add("alreadyInRedis", report.present)
        o.add("restored", report.restoredTotal)
        o.add("stale", report.stale)
        o.add("undefined", report.undefined)
        o.add("byState", raw: byState.text)
        return Response.json(o.text)
    }

    func health() async -> Response {
        // PING has the Redis command deadline: a frozen Redis answers "down" within it, never hangs.
        let redisUp = await driver.redis.ping()
        let committing = await queue.journal.writer.committing
        let journalUp = await reader.ping() && committing
        let lag = ingestor?.lag ?? .zero
        var o = JSONObject()
        o.add("status", redisUp && journalUp ? "ok" : "degraded")
        o.add("redis", redisUp ? "up" : "down")
        o.add("journal", journalUp ? "up" : "down")
        o.add("journalLag", DurationText.format(lag))
        // Redis down still accepts jobs (spooled), but the node is degraded: 503 so load balancers and probes see it.
        var response = Response.json(o.text, status: redisUp && journalUp ? .ok : .serviceUnavailable)
        if !redisUp { response.headers[.retryAfter] = "1" }
        return response
    }

    func prometheus() async throws -> Response {
        var lines = [String]()
        func family(_ name: String, _ type: String, _ help: String, _ samples: [String]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            lines += samples
        }
        var depth = [String](), completed = [String](), failed = [String]()
        for name in (try? await driver.queues()) ?? [] {
            guard let c = try? await driver.counts(name) else { continue }
            for (state, n) in [("pending", c.pending), ("scheduled", c.scheduled), ("active", c.active), ("retrying", c.retrying), ("dead", c.dead)] {
                depth.append("docket_queue_jobs{queue=\"\(name)\",state=\"\(state)\"} \(n)")
            }
            completed.append("docket_jobs_completed_total{queue=\"\(name)\"} \(c.completed)")
            failed.append("docket_job_attempts_failed_total{queue=\"\(name)\"} \(c.failed)")
        }
        family("docket_queue_jobs", "gauge", "Jobs in Redis by queue and state.", depth)
        family("docket_jobs_completed_total", "counter", "Jobs completed by queue.", completed)
        family("docket_job_attempts_failed_total", "counter", "Failed attempts (retried or dead) by queue.", failed)
        family("docket_journal_lag_seconds", "gauge", "Age of the oldest event not yet journaled.",
               ["docket_journal_lag_seconds \(Double((ingestor?.lag ?? .zero).milliseconds) / 1000)"])
        family("docket_journal_conflicts_total", "counter", "Events whose (job, seq) was already journaled with other content.",
               ["docket_journal_conflicts_total \((try? await reader.conflictCount()) ?? 0)"])
        let commits = await queue.journal.writer.commits
        let commitTime = await queue.journal.writer.commitTime
        family("docket_journal_commits_total", "counter", "Journal transactions committed.", ["docket_journal_commits_total \(commits)"])
        family("docket_journal_commit_seconds_total", "counter", "Time spent committing journal transactions.",
               ["docket_journal_commit_seconds_total \(Double(commitTime.milliseconds) / 1000)"])
        // Counted at most every 30 s (COUNT(*) over a large journal is not free): these are figures, not alarms.
        if let size = try? await journalSize.value(refresh: { try await self.reader.size() }) {
            family("docket_journal_bytes", "gauge", "Journal file size (pages in use).", ["docket_journal_bytes \(size.bytes)"])
            family("docket_journal_jobs", "gauge", "Jobs in the journal (refreshed every 30 s).", ["docket_journal_jobs \(size.jobs)"])
            family("docket_journal_events", "gauge", "Events in the journal (refreshed every 30 s).", ["docket_journal_events \(size.events)"])
        }
        if let schedules = try? await driver.schedules(), !schedules.isEmpty {
            let ticks = (try? await driver.lastTicks()) ?? [:]
            let now = Date()
            var next = [String](), last = [String]()
            // Label values are schedule names ([A-Za-z0-9._:-], no escaping needed); capped like queue labels.
            for schedule in schedules.prefix(100) {
                let lastTick = ticks[schedule.name]
                if !schedule.paused, let at = schedule.nextTick(after: max(now, lastTick ?? now)) {
                    next.append("docket_schedule_next_run_timestamp_seconds{schedule=\"\(schedule.name)\"} \(Double(at.millis) / 1000)")
                }
                if let lastTick { last.append("docket_schedule_last_run_timestamp_seconds{schedule=\"\(schedule.name)\"} \(Double(lastTick.millis) / 1000)") }
            }
            family("docket_schedule_next_run_timestamp_seconds", "gauge", "When each active schedule fires next (Unix seconds).", next)
            family("docket_schedule_last_run_timestamp_seconds", "gauge", "The last tick each schedule fired (Unix seconds).", last)
        }
        lines.append(jobMetrics.prometheus())
        lines.append(metrics.prometheus())
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: lines.joined(separator: "\n") + "\n")))
    }
}

/// Query-string parameters with strict parsing: unknown names and bad values are 400s naming them.
struct Query {
    let items: [String: String]
    let names: [String]
    let multi: [String: [String]]
    /// Put before names in errors (`filter.` when the parameters came as a JSON object).
    var prefix = ""

    /// Parameters given as a JSON object's members (`POST /jobs/replay`'s filter), values as their query text.
    init(multi: [String: [String]], prefix: String) {
        self.multi = multi
        self.items = multi.compactMapValues(\.last)
        self.names = multi.keys.sorted()
        self.prefix = prefix
    }

    init(_ request: Request) {
        var items = [String: String]()
        var names = [String]()
        var multi = [String: [String]]()
        for (k, v) in request.uri.queryParameters {
            multi[String(k), default: []].append(String(v))
            items[String(k)] = String(v)
            names.append(String(k))
        }
        self.items = items
        self.names = names
        self.multi = multi
    }

    subscript(_ name: String) -> String? { items[name].flatMap { $0.isEmpty ? nil : $0 } }

    /// Every value of a repeatable parameter (`where`), in order.
    func all(_ name: String) -> [String] { multi[name] ?? [] }

    func only(_ allowed: Set<String>) throws(APIError) {
        if let bad = names.first(where: { !allowed.contains($0) }) { throw APIError.invalid(prefix + bad, "unknown \(prefix.isEmpty ? "query parameter" : "field")") }
    }

    func parse<T>(_ name: String, _ expected: String, _ transform: (String) -> T?) throws(APIError) -> T? {
        guard let text = self[name] else { return nil }
        guard let value = transform(text) else { throw APIError.invalid(prefix + name, "must be \(expected)") }
        return value
    }
}
