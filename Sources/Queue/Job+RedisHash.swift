import Foundation

/// A job's Redis hash: field names and the codec between them and `Job`. Lua scripts use the same names.
extension Job {
    enum Field {
        static let id = "id", type = "type", queue = "queue", payload = "payload", priority = "priority"
        static let maxAttempts = "maxAttempts", timeout = "timeout", backoffBase = "backoffBase", backoffMax = "backoffMax"
        static let runAt = "runAt", idempotencyKey = "idempotencyKey", state = "state", attempts = "attempts"
        static let createdAt = "createdAt", updatedAt = "updatedAt", startedAt = "startedAt", finishedAt = "finishedAt"
        static let lastError = "lastError", result = "result", progress = "progress", worker = "worker"
        static let leaseUntil = "leaseUntil", seq = "seq", uniqueKey = "uniqueKey", uniqueWhile = "uniqueWhile", replayOf = "replayOf"
    }

    /// The fields `claim.lua` reads (HMGET, in this order) for each job it leases: everything a worker and its
    /// handler use, without field names in the reply or a dictionary per job.
    static let claimFields = [
        Field.id, Field.type, Field.queue, Field.payload, Field.priority, Field.maxAttempts, Field.timeout, Field.backoffBase,
        Field.backoffMax, Field.runAt, Field.idempotencyKey, Field.attempts, Field.createdAt, Field.lastError, Field.progress, Field.seq,
    ]

    /// Decodes a job just leased by claim.lua from an HMGET of `claimFields` (taken before the claim, with attempts,
    /// seq and runAt as the claim left them); the claim's own fields (state, start, worker, lease) are given.
    /// Nil if it is malformed.
    init?(claimValues reply: RESPValue, startedAt: Date, worker: WorkerID, leaseUntil: Date) {
        guard case .array(let v) = reply, v.count == Self.claimFields.count else { return nil }
        func ms(_ i: Int) -> Date? { v[i].int.map { Date(millis: $0) } }
        guard let id = v[0].string.flatMap(JobID.init(rawValue:)), let type = v[1].string.flatMap(JobType.init(rawValue:)),
            let queue = v[2].string.flatMap(QueueName.init(rawValue:)), let createdAt = ms(12)
        else { return nil }
        self.init(
            id: id, type: type, payload: v[3].string ?? "null", queue: queue,
            priority: v[4].string.flatMap(Priority.init(rawValue:)) ?? .normal,
            maxAttempts: v[5].int.map { Int($0) } ?? Job.defaultMaxAttempts,
            timeout: v[6].int.map { .milliseconds($0) } ?? Job.defaultTimeout,
            backoff: Backoff(
                base: v[7].int.map { .milliseconds($0) } ?? Backoff.default.base,
                max: v[8].int.map { .milliseconds($0) } ?? Backoff.default.max),
            runAt: ms(9), idempotencyKey: v[10].string, createdAt: createdAt)
        self.state = .active
        self.attempts = v[11].int.map { Int($0) } ?? 0
        self.updatedAt = startedAt
        self.startedAt = startedAt
        self.lastError = v[13].string
        self.progress = v[14].string
        self.worker = worker
        self.leaseUntil = leaseUntil
        self.seq = v[15].int.map { Int($0) } ?? 0
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
        if let key = f[Field.uniqueKey] { self.unique = UniqueKey(key: key, while: f[Field.uniqueWhile].flatMap(UniqueKey.While.init(rawValue:)) ?? .untilComplete) }
        self.replayOf = f[Field.replayOf].flatMap(JobID.init(rawValue:))
    }
}
