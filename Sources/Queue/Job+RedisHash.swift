import Foundation

/// A job's Redis hash: field names and the codec between them and `Job`. Lua scripts use the same names.
extension Job {
    enum Field {
        static let id = "id", type = "type", queue = "queue", payload = "payload", priority = "priority"
        static let maxAttempts = "maxAttempts", timeout = "timeout", backoffBase = "backoffBase", backoffMax = "backoffMax"
        static let runAt = "runAt", idempotencyKey = "idempotencyKey", state = "state", attempts = "attempts"
        static let createdAt = "createdAt", updatedAt = "updatedAt", startedAt = "startedAt", finishedAt = "finishedAt"
        static let lastError = "lastError", result = "result", progress = "progress", worker = "worker"
        static let leaseUntil = "leaseUntil", seq = "seq"
    }

    /// Decodes a job from HGETALL's flat field/value list; nil if the hash is empty or malformed.
    init?(redisHash reply: RESPValue) {
        guard let fields = reply.fieldMap, !fields.isEmpty else { return nil }
        self.init(redisFields: fields)
    }

    init?(redisFields f: [String: String]) {
        func ms(_ key: String) -> Date? { f[key].flatMap { Int64($0) }.map { Date(millis: $0) } }
        guard let id = f[Field.id].flatMap(JobID.init(rawValue:)),
            let type = f[Field.type].flatMap(JobType.init(rawValue:)),
            let queue = f[Field.queue].flatMap(QueueName.init(rawValue:)),
            let state = f[Field.state].flatMap(JobState.init(rawValue:)),
            let createdAt = ms(Field.createdAt)
        else { return nil }
        self.init(
            id: id,
            type: type,
            payload: f[Field.payload] ?? "null",
            queue: queue,
            priority: f[Field.priority].flatMap(Priority.init(rawValue:)) ?? .normal,
            maxAttempts: f[Field.maxAttempts].flatMap { Int($0) } ?? Job.defaultMaxAttempts,
            timeout: f[Field.timeout].flatMap { Int64($0) }.map { .milliseconds($0) } ?? Job.defaultTimeout,
            backoff: Backoff(
                base: f[Field.backoffBase].flatMap { Int64($0) }.map { .milliseconds($0) } ?? Backoff.default.base,
                max: f[Field.backoffMax].flatMap { Int64($0) }.map { .milliseconds($0) } ?? Backoff.default.max
            ),
            runAt: ms(Field.runAt),
            idempotencyKey: f[Field.idempotencyKey],
            createdAt: createdAt
        )
        self.state = state
        self.attempts = f[Field.attempts].flatMap { Int($0) } ?? 0
        self.updatedAt = ms(Field.updatedAt) ?? createdAt
        self.startedAt = ms(Field.startedAt)
        self.finishedAt = ms(Field.finishedAt)
        self.lastError = f[Field.lastError]
        self.result = f[Field.result]
        self.progress = f[Field.progress]
        self.worker = f[Field.worker].map(WorkerID.init(rawValue:))
        self.leaseUntil = ms(Field.leaseUntil)
        self.seq = f[Field.seq].flatMap { Int($0) } ?? 0
    }
}
