import DocketQueue
import Foundation

/// Validates one enqueue body (SPEC §4) into a `Job`. Every rule names its field; nothing is partial.
enum EnqueueRequest {
    static let fields: Set<String> = [
        "type", "payload", "queue", "priority", "maxAttempts", "timeout", "delay", "runAt", "backoff", "idempotencyKey", "unique",
    ]
    static let maxTimeout: Duration = .seconds(86_400)

    /// `prefix` names the position in a batch (`jobs[3].`) so errors point at the right job.
    static func job(from value: JSONValue, prefix: String = "", maxPayload: Int, now: Date = Date()) throws(APIError) -> Job {
        guard case .object(let body) = value else { throw APIError.invalid(prefix.isEmpty ? "body" : String(prefix.dropLast()), "must be a JSON object") }
        if body.keys.contains(where: { !fields.contains($0) }), let unknown = body.keys.sorted().first(where: { !fields.contains($0) }) {
            throw APIError.invalid(prefix + unknown, "unknown field")
        }
        func field(_ name: String) -> String { prefix + name }
        func string(_ name: String) throws(APIError) -> String? {
            switch body[name] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            case let other?: throw APIError.invalid(field(name), "must be a string, not \(other.kind)")
            }
        }
        func duration(_ name: String, _ value: JSONValue?) throws(APIError) -> Duration? {
            switch value {
            case nil, .null?: return nil
            case .int(let ms)?:
                guard ms >= 0, ms <= 1_000_000_000_000 else { throw APIError.invalid(field(name), "out of range") }
                return .milliseconds(ms)
            case .double(let ms)? where ms == ms.rounded() && ms >= 0 && ms <= 1_000_000_000_000:
                return .milliseconds(Int64(ms))  // 116903.0 is a whole number of milliseconds (JSON Schema's integer)
            case .string(let s)?:
                guard let d = DurationText.parse(s) else { throw APIError.invalid(field(name), "\"\(s)\" is not a duration (250ms, 30s, 5m, 2h or milliseconds)") }
                return d
            case let other?:
                throw APIError.invalid(field(name), "must be a duration string or integer milliseconds, not \(other.kind)")
            }
        }

        guard let typeText = try string("type") else { throw APIError.invalid(field("type"), "is required") }
        guard let type = JobType(rawValue: typeText) else { throw APIError.invalid(field("type"), "must be 1-128 characters of A-Z a-z 0-9 . _ : -") }
        var queue = QueueName.default
        if let q = try string("queue") {
            guard let name = QueueName(rawValue: q) else { throw APIError.invalid(field("queue"), "must be 1-64 characters of A-Z a-z 0-9 . _ : -") }
            queue = name
        }
        var priority = Priority.normal
        if let p = try string("priority") {
            guard let level = Priority(rawValue: p) else { throw APIError.invalid(field("priority"), "must be one of critical, high, normal, low") }
            priority = level
        }
        var maxAttempts = Job.defaultMaxAttempts
        switch body["maxAttempts"] {
        case nil, .null?: break
        case .int(let n)?:
            guard (1...100).contains(n) else { throw APIError.invalid(field("maxAttempts"), "must be 1-100") }
            maxAttempts = Int(n)
        case .double(let n)? where n == n.rounded() && (1...100).contains(n):
            maxAttempts = Int(n)
        case let other?: throw APIError.invalid(field("maxAttempts"), "must be an integer, not \(other.kind)")
        }
        var timeout = Job.defaultTimeout
        if let t = try duration("timeout", body["timeout"]) {
            guard t > .zero, t <= maxTimeout else { throw APIError.invalid(field("timeout"), "must be more than 0 and at most 24h") }
            timeout = t
        }
        var runAt: Date?
        if body["delay"] != nil && body["delay"] != .null && body["runAt"] != nil && body["runAt"] != .null {
            throw APIError.invalid(field("runAt"), "give either delay or runAt, not both")
        }
        if let delay = try duration("delay", body["delay"]) {
            guard delay <= .seconds(365 * 86400) else { throw APIError.invalid(field("delay"), "must be at most 365d") }
            if delay > .zero { runAt = now.addingTimeInterval(Double(delay.milliseconds) / 1000) }
        }
        if let text = try string("runAt") {
            guard let date = Timestamp.parse(text) else { throw APIError.invalid(field("runAt"), "must be an RFC 3339 time, e.g. 2026-11-23T12:00:00.000Z") }
            guard date.timeIntervalSince(now) < 365 * 86400 * 10 else { throw APIError.invalid(field("runAt"), "is too far in the future") }
            runAt = date > now ? date : nil
        }
        var backoff = Backoff.default
        switch body["backoff"] {
        case nil, .null?: break
        case .object(let b)?:
            if let unknown = b.keys.sorted().first(where: { $0 != "base" && $0 != "max" }) {
                throw APIError.invalid(field("backoff.\(unknown)"), "unknown field")
            }
            if let base = try duration("backoff.base", b["base"]) {
                guard base > .zero, base <= .seconds(86_400) else { throw APIError.invalid(field("backoff.base"), "must be more than 0 and at most 24h") }
                backoff.base = base
            }
            if let max = try duration("backoff.max", b["max"]) {
                guard max > .zero, max <= .seconds(7 * 86_400) else { throw APIError.invalid(field("backoff.max"), "must be more than 0 and at most 7d") }
                backoff.max = max
            }
            guard backoff.base <= backoff.max else { throw APIError.invalid(field("backoff.base"), "must not exceed backoff.max") }
        case let other?: throw APIError.invalid(field("backoff"), "must be an object {\"base\", \"max\"}, not \(other.kind)")
        }
        var idempotencyKey: String?
        if let key = try string("idempotencyKey") {
            guard (1...256).contains(key.utf8.count), !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw APIError.invalid(field("idempotencyKey"), "must be 1-256 bytes without control characters")
            }
            idempotencyKey = key
        }
        var unique: UniqueKey?
        switch body["unique"] {
        case nil, .null?: break
        case .object(let u)?:
            if let unknown = u.keys.sorted().first(where: { $0 != "key" && $0 != "while" }) { throw APIError.invalid(field("unique.\(unknown)"), "unknown field") }
            guard case .string(let key)? = u["key"] else { throw APIError.invalid(field("unique.key"), "is required: a string") }
            guard (1...256).contains(key.utf8.count), !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw APIError.invalid(field("unique.key"), "must be 1-256 bytes without control characters")
            }
            var mode = UniqueKey.While.untilComplete
            switch u["while"] {
            case nil, .null?: break
            case .string(let w)?:
                guard let m = UniqueKey.While(rawValue: w) else { throw APIError.invalid(field("unique.while"), "must be one of pending, active, until_complete") }
                mode = m
            case let other?: throw APIError.invalid(field("unique.while"), "must be a string, not \(other.kind)")
            }
            unique = UniqueKey(key: key, while: mode)
        case let other?: throw APIError.invalid(field("unique"), "must be an object {\"key\", \"while\"}, not \(other.kind)")
        }
        let payload = body["payload"]?.text ?? "null"
        guard payload.utf8.count <= maxPayload else {
            throw APIError(.contentTooLarge, code: "payload_too_large", message: "\(field("payload")): larger than \(maxPayload) bytes", field: field("payload"))
        }
        var job = Job(
            type: type, payload: payload, queue: queue, priority: priority, maxAttempts: maxAttempts, timeout: timeout,
            backoff: backoff, runAt: runAt, idempotencyKey: idempotencyKey, createdAt: now)
        job.unique = unique
        return job
    }
}

/// The JSON shape of a job in every response.
enum JobJSON {
    static func render(_ job: Job, source: String? = nil, spooled: Bool = false, uniqueConflict: Bool = false) -> String {
        var o = JSONObject(capacity: 512 + job.payload.utf8.count + (job.result?.utf8.count ?? 0))
        o.add("id", job.id.rawValue)
        o.add("type", job.type.rawValue)
        o.add("queue", job.queue.rawValue)
        o.add("state", job.state.rawValue)
        o.add("priority", job.priority.rawValue)
        o.add("payload", raw: job.payload)
        o.add("attempts", job.attempts)
        o.add("maxAttempts", job.maxAttempts)
        o.add("timeout", DurationText.format(job.timeout))
        var b = JSONObject()
        b.add("base", DurationText.format(job.backoff.base))
        b.add("max", DurationText.format(job.backoff.max))
        o.add("backoff", raw: b.text)
        o.add("runAt", job.runAt)
        o.add("idempotencyKey", job.idempotencyKey)
        if let unique = job.unique {
            var u = JSONObject()
            u.add("key", unique.key)
            u.add("while", unique.while.rawValue)
            o.add("unique", raw: u.text)
        }
        if let original = job.replayOf { o.add("replayOf", original.rawValue) }
        o.add("createdAt", job.createdAt)
        o.add("updatedAt", job.updatedAt)
        o.add("startedAt", job.startedAt)
        o.add("finishedAt", job.finishedAt)
        o.add("lastError", job.lastError)
        // Stored as JSON text (the API validates payloads; workers normalize results and progress).
        o.add("result", raw: job.result)
        o.add("progress", raw: job.progress)
        if let source { o.add("source", source) }
        if spooled { o.add("spooled", true) }
        if uniqueConflict { o.add("uniqueConflict", true) }
        return o.text
    }

}
