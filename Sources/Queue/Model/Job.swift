import Foundation

/// A job's lifecycle state (SPEC §2).
public enum JobState: String, Sendable, CaseIterable, Codable {
    case scheduled, pending, active, retrying, completed, dead, cancelled
    /// Deleted from the dead-letter queue (`DELETE /dlq/{id}`): gone from Redis, kept in the journal's history.
    case purged
    public var isTerminal: Bool { self == .completed || self == .dead || self == .cancelled || self == .purged }
}

/// Strict priority levels: every `critical` job runs before any `high` one, and so on.
public enum Priority: String, Sendable, CaseIterable, Codable, Comparable {
    case critical, high, normal, low
    var band: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: Priority, b: Priority) -> Bool { a.band > b.band }
}

/// Retry backoff: attempt n waits `min(max, base · 2^(n-1))`, jittered down by up to 20%.
public struct Backoff: Sendable, Hashable {
    public var base: Duration
    public var max: Duration
    public init(base: Duration = .seconds(2), max: Duration = .seconds(300)) {
        self.base = base
        self.max = max
    }
    public static let `default` = Backoff()

    /// The un-jittered delay after attempt `attempt` (counting from 1) fails.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let factor = Double(1 << Swift.min(Swift.max(attempt - 1, 0), 40))
        let ms = Swift.min(Double(max.milliseconds), Double(base.milliseconds) * factor)
        return .milliseconds(Int64(ms))
    }
}

/// Unique jobs (SPEC §8): while a job holding `key` (in its queue) is in one of the states `while` names, another
/// enqueue with the key is refused (409 `unique_conflict`, naming the holder).
public struct UniqueKey: Sendable, Hashable {
    public enum While: String, Sendable, CaseIterable {
        /// Refused while the holder waits to run: pending, scheduled or retrying.
        case pending
        /// Refused while the holder runs.
        case active
        /// Refused until the holder finishes (completed, dead or cancelled): pending, scheduled, retrying or active.
        case untilComplete = "until_complete"
    }
    public var key: String
    public var `while`: While
    public init(key: String, while: While = .untilComplete) {
        self.key = key
        self.while = `while`
    }
}

/// A job: what to run (type, payload), how (queue, priority, attempts, timeout, backoff, schedule),
/// and where it is in its life (state and runtime fields).
public struct Job: Sendable, Hashable {
    public var id: JobID
    public var type: JobType
    public var queue: QueueName
    /// The payload as JSON text (any JSON value). It must be valid JSON: the API validates it, and
    /// readers embed it as it is.
    public var payload: String
    public var priority: Priority
    public var maxAttempts: Int
    public var timeout: Duration
    public var backoff: Backoff
    /// When a scheduled or retrying job becomes due.
    public var runAt: Date?
    public var idempotencyKey: String?
    /// Refuses duplicates while this job is live (see `UniqueKey`); enforced in Redis at enqueue.
    public var unique: UniqueKey?
    /// The job this one re-runs (`POST /jobs/replay`): a copy of its definition.
    public var replayOf: JobID?

    public var state: JobState
    public var attempts: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var lastError: String?
    /// The handler's result as JSON text.
    public var result: String?
    /// The last progress the handler reported, as JSON text.
    public var progress: String?
    /// The worker holding (or that last held) the job's lease.
    public var worker: WorkerID?
    public var leaseUntil: Date?
    /// The number of events the job has had (its last event's seq).
    public var seq: Int

    public static let defaultMaxAttempts = 3
    public static let defaultTimeout: Duration = .seconds(30)

    /// A new job, not yet enqueued.
    public init(
        id: JobID = .make(),
        type: JobType,
        payload: String = "null",
        queue: QueueName = .default,
        priority: Priority = .normal,
        maxAttempts: Int = Job.defaultMaxAttempts,
        timeout: Duration = Job.defaultTimeout,
        backoff: Backoff = .default,
        runAt: Date? = nil,
        idempotencyKey: String? = nil,
        createdAt: Date = Date()
    ) {
        self.id = id
        self.type = type
        self.payload = payload
        self.queue = queue
        self.priority = priority
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.backoff = backoff
        self.runAt = runAt
        self.idempotencyKey = idempotencyKey
        self.state = (runAt.map { $0 > createdAt } ?? false) ? .scheduled : .pending
        self.attempts = 0
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.seq = 0
    }
}

/// A job leased to a worker: only the lease holder may renew, complete, fail or release it.
public struct Lease: Sendable, Hashable {
    public var job: Job
    public let worker: WorkerID
    /// Unique per claim: the scripts accept only the current claim's token.
    public let token: String
    public var deadline: Date
    public init(job: Job, worker: WorkerID, token: String, deadline: Date) {
        self.job = job
        self.worker = worker
        self.token = token
        self.deadline = deadline
    }
    /// This attempt's number, from 1.
    public var attempt: Int { job.attempts }
}

extension Date {
    /// Milliseconds since the Unix epoch (Redis and Lua speak integer ms).
    /// Whole milliseconds since the epoch, rounded down; a time within a microsecond of a whole millisecond (as
    /// `Date(millis:)` makes, with a binary fraction's error) is that millisecond.
    public var millis: Int64 {
        let ms = timeIntervalSince1970 * 1000
        let near = ms.rounded()
        return Int64(abs(ms - near) < 0.001 ? near : ms.rounded(.down))
    }
    public init(millis: Int64) { self.init(timeIntervalSince1970: Double(millis) / 1000) }
}
