import DocketJournal
import DocketQueue
import Foundation
import Hummingbird

/// `/schedules` (SPEC §8): definitions live in Redis; every server fires them (`ScheduleService`) and journals what
/// happened, which `GET /schedules/{name}/events` reads back.
extension DocketAPI {
    static let scheduleFields: Set<String> = ["name", "cron", "every", "timezone", "job", "catchUp", "catchUpLimit", "paused"]

    /// Validates a schedule body; every rule names its field.
    static func schedule(from value: JSONValue, maxPayload: Int, now: Date = Date()) throws(APIError) -> Schedule {
        let (body, name) = try definition(value, allowed: scheduleFields)
        func string(_ field: String) throws(APIError) -> String? { try Self.string(body, field) }
        let cron = try string("cron"), every = try string("every")
        switch (cron, every) {
        case (nil, nil): throw APIError.invalid("cron", "give cron or every")
        case (.some, .some): throw APIError.invalid("every", "give either cron or every, not both")
        default: break
        }
        let timezone = try string("timezone") ?? "UTC"
        guard let zone = TimeZone(identifier: timezone) else { throw APIError.invalid("timezone", "\"\(timezone.prefix(64))\" is not an IANA time zone (e.g. Europe/Berlin)") }
        var everyMs: Int64?
        if let cron {
            let expression: CronExpression
            do { expression = try CronExpression(cron) } catch { throw APIError.invalid("cron", error.description) }
            guard expression.next(after: now, in: zone) != nil else { throw APIError.invalid("cron", "\"\(cron)\" never fires") }
        } else if let every {
            guard let interval = DurationText.parse(every), interval >= .seconds(1), interval <= .seconds(366 * 86_400) else {
                throw APIError.invalid("every", "must be a duration from 1s to 366d (e.g. 30s, 5m, 1h)")
            }
            everyMs = interval.milliseconds
        }
        guard case .object(let jobBody)? = body["job"] else { throw APIError.invalid("job", "is required: the job to enqueue at each tick, as for POST /jobs") }
        for field in ["idempotencyKey", "delay", "runAt"] where jobBody[field] != nil && jobBody[field] != .null {
            throw APIError.invalid("job.\(field)", "a schedule sets when its jobs run and their idempotency keys")
        }
        let job = try EnqueueRequest.job(from: .object(jobBody), prefix: "job.", maxPayload: maxPayload, now: now)
        var catchUp = Schedule.CatchUp.one
        if let text = try string("catchUp") {
            guard let policy = Schedule.CatchUp(rawValue: text) else { throw APIError.invalid("catchUp", "must be one of none, one, all") }
            catchUp = policy
        }
        var limit = 100
        switch body["catchUpLimit"] {
        case nil, .null?: break
        case .int(let n)? where (1...10_000).contains(n): limit = Int(n)
        default: throw APIError.invalid("catchUpLimit", "must be an integer 1-10000")
        }
        var paused = false
        switch body["paused"] {
        case nil, .null?: break
        case .bool(let b)?: paused = b
        case let other?: throw APIError.invalid("paused", "must be true or false, not \(other.kind)")
        }
        return Schedule(name: name, cron: cron, everyMs: everyMs, timezone: timezone, job: JobTemplate(job), catchUp: catchUp,
                        catchUpLimit: limit, paused: paused, createdAt: now)
    }

    /// The schedules of a `--schedules` file: a JSON array of `POST /schedules` bodies. Errors name the item.
    public static func schedules(file text: String, maxPayload: Int = 512 * 1024) throws -> [Schedule] {
        try definitions(file: text, of: "schedules", verbatim: ["payload"], name: \.name) { (item) throws(APIError) in
            try schedule(from: item, maxPayload: maxPayload)
        }
    }

    /// Applies a `--schedules` file at start: schedules it names are created, or replaced when their definition
    /// differs (keeping their creation time, which anchors `every`); others are left alone.
    public static func apply(_ schedules: [Schedule], to driver: RedisQueueDriver) async throws -> (created: Int, updated: Int) {
        var created = 0, updated = 0
        for schedule in schedules {
            guard var existing = try await driver.schedule(schedule.name) else {
                if try await driver.addSchedule(schedule) { created += 1 }
                continue
            }
            var replacement = schedule
            replacement.createdAt = existing.createdAt
            existing.updatedAt = replacement.updatedAt
            guard existing != replacement else { continue }
            try await driver.putSchedule(replacement)
            updated += 1
        }
        return (created, updated)
    }

    /// The schedule as JSON, with its last and next tick.
    static func render(_ schedule: Schedule, lastRunAt: Date?, now: Date = Date()) -> String {
        var o = JSONObject()
        o.add("name", schedule.name)
        o.add("cron", schedule.cron)
        o.add("every", schedule.everyMs.map { DurationText.format(.milliseconds($0)) })
        o.add("timezone", schedule.timezone)
        var job = JSONObject()
        job.add("type", schedule.job.type)
        job.add("queue", schedule.job.queue)
        job.add("payload", raw: schedule.job.payload)
        job.add("priority", schedule.job.priority.rawValue)
        job.add("maxAttempts", schedule.job.maxAttempts)
        job.add("timeout", DurationText.format(.milliseconds(schedule.job.timeoutMs)))
        var backoff = JSONObject()
        backoff.add("base", DurationText.format(.milliseconds(schedule.job.backoffBaseMs)))
        backoff.add("max", DurationText.format(.milliseconds(schedule.job.backoffMaxMs)))
        job.add("backoff", raw: backoff.text)
        o.add("job", raw: job.text)
        o.add("catchUp", schedule.catchUp.rawValue)
        o.add("catchUpLimit", schedule.catchUpLimit)
        o.add("paused", schedule.paused)
        o.add("createdAt", schedule.createdAt)
        o.add("updatedAt", schedule.updatedAt)
        o.add("lastRunAt", lastRunAt)
        o.add("nextRunAt", schedule.paused ? nil : schedule.nextTick(after: max(now, lastRunAt ?? now)))
        return o.text
    }

    private func scheduleName(_ context: DocketContext) throws(APIError) -> String {
        let name = context.parameters.get("name") ?? ""
        guard Schedule.validName(name) else { throw APIError.notFound("schedule \"\(name.prefix(80))\"") }
        return name
    }

    func createSchedule(_ request: Request, _ context: DocketContext) async throws -> Response {
        let schedule = try Self.schedule(from: try await body(request, context, verbatim: ["payload"]), maxPayload: configuration.maxPayload)
        guard try await driver.addSchedule(schedule) else {
            throw APIError(.conflict, code: "conflict", message: "schedule \(schedule.name) exists (DELETE it first, or PATCH it)", field: "name")
        }
        var response = Response.json(Self.render(schedule, lastRunAt: nil), status: .created)
        response.headers[.location] = "/schedules/\(schedule.name)"
        return response
    }

    func listSchedules() async throws -> Response {
        let ticks = try await driver.lastTicks()
        let items = try await driver.schedules().map { Self.render($0, lastRunAt: ticks[$0.name]) }
        return Response.json(#"{"schedules":\#(JSONObject.array(items))}"#)
    }

    func showSchedule(_ context: DocketContext) async throws -> Response {
        let name = try scheduleName(context)
        guard let schedule = try await driver.schedule(name) else { throw APIError.notFound("schedule \(name)") }
        return Response.json(Self.render(schedule, lastRunAt: try await driver.lastTicks()[name]))
    }

    /// `{"paused": bool}`: pauses or resumes (a resumed schedule's missed ticks follow its catch-up policy).
    func patchSchedule(_ request: Request, _ context: DocketContext) async throws -> Response {
        let name = try scheduleName(context)
        guard case .object(let fields) = try await body(request, context) else { throw APIError.invalid("body", "must be {\"paused\": true|false}") }
        if let unknown = fields.keys.sorted().first(where: { $0 != "paused" }) { throw APIError.invalid(unknown, "unknown field (only paused can change)") }
        guard case .bool(let paused)? = fields["paused"] else { throw APIError.invalid("paused", "is required: true or false") }
        guard var schedule = try await driver.schedule(name) else { throw APIError.notFound("schedule \(name)") }
        if schedule.paused != paused {
            schedule.paused = paused
            schedule.updatedAt = Date(millis: Date().millis)
            try await driver.putSchedule(schedule)
        }
        return Response.json(Self.render(schedule, lastRunAt: try await driver.lastTicks()[name]))
    }

    func deleteSchedule(_ context: DocketContext) async throws -> Response {
        let name = try scheduleName(context)
        guard try await driver.deleteSchedule(name) else { throw APIError.notFound("schedule \(name)") }
        return Response(status: .noContent)
    }

    /// The schedule's history from this server's journal, newest first: changes, fired ticks with their jobs, skips.
    func scheduleEvents(_ request: Request, _ context: DocketContext) async throws -> Response {
        let name = try scheduleName(context)
        let q = Query(request)
        try q.only(["limit"])
        let limit = try q.parse("limit", "an integer 1-1000") { Int($0).flatMap { (1...1000).contains($0) ? $0 : nil } } ?? 100
        let events = try await reader.scheduleEvents(name, limit: limit)
        if events.isEmpty, try await driver.schedule(name) == nil { throw APIError.notFound("schedule \(name)") }
        let items = events.map { e -> String in
            var o = JSONObject()
            o.add("at", e.at)
            o.add("event", e.event)
            o.add("tick", e.tick)
            o.add("jobId", e.jobID)
            o.add("detail", e.detail)
            return o.text
        }
        return Response.json(#"{"name":\#(JSONObject.quote(name)),"events":\#(JSONObject.array(items))}"#)
    }
}
