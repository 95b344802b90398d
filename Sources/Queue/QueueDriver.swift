import Foundation

/// What workers and the server need from the queue. `RedisQueueDriver` is the production implementation.
public protocol QueueDriver: Sendable {
    /// Stores a new job (atomically: hash, queue entry, idempotency key and `enqueued` event).
    /// A repeated idempotency key or an id already stored creates nothing and returns the existing job.
    func enqueue(_ job: Job, actor: String?) async throws -> EnqueueResult
    /// Enqueues many jobs in one pipeline; each job is atomic on its own.
    func enqueue(_ jobs: [Job], actor: String?) async throws -> [EnqueueResult]
    /// The job as Redis has it now; nil once its hash expired or never existed.
    func job(_ id: JobID, queue: QueueName?) async throws -> Job?
    /// Leases the best ready job of `queues` (first queue first); waits up to `wait` for one to arrive
    /// (woken by new work, not by polling); nil if none did.
    func claim(from queues: [QueueName], worker: WorkerID, lease: Duration, wait: Duration) async throws -> Lease?
    /// Leases up to `max` ready jobs in one round trip (from the first queue that has any).
    func claim(from queues: [QueueName], worker: WorkerID, lease: Duration, wait: Duration, max: Int) async throws -> [Lease]
    /// Extends a lease; throws `QueueError.leaseLost` if the worker no longer holds it.
    func renew(_ lease: Lease, for duration: Duration) async throws -> Lease
    /// Records progress (JSON) of a leased job; throws `leaseLost`.
    func progress(_ lease: Lease, _ progress: String) async throws
    /// Completes a leased job with an optional JSON result; throws `leaseLost`.
    func complete(_ lease: Lease, result: String?) async throws
    /// Completes the finished jobs `completions` (as `complete` would, in one round trip), then leases up to `max`
    /// ready jobs of `queues` (first queue first) without waiting. Returns the leases and, per completion, whether
    /// its lease was still held (where not, that result was dropped). A busy worker calls this once per batch.
    func completeAndClaim(_ completions: [Completion], from queues: [QueueName], worker: WorkerID, lease: Duration, max: Int)
        async throws -> (leases: [Lease], completed: [Bool])
    /// Completes leased jobs; per job, whether its lease was still held.
    func complete(_ completions: [Completion]) async throws -> [Bool]
    /// Waits up to `wait` for new work on `queues` (woken by an enqueue, not by polling; may return early).
    func waitForWork(on queues: [QueueName], wait: Duration) async throws
    /// Fails the current attempt: the job retries after its backoff or goes dead; throws `leaseLost`.
    func fail(_ lease: Lease, error: String) async throws -> FailOutcome
    /// Gives a job back to pending without counting an attempt (worker shutdown); throws `leaseLost`.
    func release(_ lease: Lease) async throws
    /// Cancels a pending, scheduled or retrying job; throws `notFound` or `conflict`.
    func cancel(_ id: JobID, queue: QueueName?, actor: String?) async throws -> Job
    /// Puts a dead or cancelled job back to pending; throws `notFound` or `conflict`.
    func requeue(_ id: JobID, queue: QueueName?, actor: String?) async throws -> Job
    func pause(_ queue: QueueName) async throws
    func resume(_ queue: QueueName) async throws
    /// Every queue that has seen a job.
    func queues() async throws -> [QueueName]
    func counts(_ queue: QueueName) async throws -> QueueCounts
    /// One scheduler step over every queue: promote due jobs and reap expired leases.
    func runScheduler(now: Date) async throws -> SchedulerStep
}

/// What an enqueue did.
public enum EnqueueResult: Sendable, Hashable {
    case created(Job)
    /// Nothing was created: the idempotency key (or the id) was already taken by this job.
    case existing(Job)
    /// Nothing was created: the idempotency key names this job, whose Redis data has already expired
    /// (look it up in the journal).
    case expired(JobID)
    /// Nothing was written: Redis lost data and is not rebuilt yet (its marker is missing), and the caller asked
    /// to be fenced. The journal keeps the job spooled until the rebuild is done.
    case fenced(JobID)
    /// Nothing was written: a live job (`holder`) holds the job's unique key.
    case uniqueConflict(JobID, holder: JobID)
    /// The job, unless only its id is known (`expired`, `fenced`, `uniqueConflict`).
    public var job: Job! {
        switch self {
        case .created(let job), .existing(let job): return job
        case .expired, .fenced, .uniqueConflict: return nil
        }
    }
    public var id: JobID {
        switch self {
        case .created(let job), .existing(let job): return job.id
        case .expired(let id), .fenced(let id), .uniqueConflict(let id, _): return id
        }
    }
    public var isCreated: Bool { if case .created = self { true } else { false } }
}

/// A leased job that finished successfully, with its result (JSON), waiting to be recorded.
public struct Completion: Sendable, Hashable {
    public var lease: Lease
    public var result: String?
    public init(lease: Lease, result: String?) {
        self.lease = lease
        self.result = result
    }
}

/// Where a failed attempt sent the job.
public enum FailOutcome: Sendable, Hashable {
    case retrying(at: Date)
    case dead
}

/// A queue's jobs by state, and its running totals.
public struct QueueCounts: Sendable, Hashable, Codable {
    public var pending = 0, scheduled = 0, active = 0, retrying = 0, dead = 0
    /// Totals since the queue began (completed jobs' hashes expire; the count does not).
    public var completed = 0, failed = 0
    public var paused = false
    public init() {}
}

/// What one scheduler step did.
public struct SchedulerStep: Sendable, Hashable {
    public var promoted = 0
    public var reaped = 0
    public init() {}
}

/// Optional capability: a registry of live workers (probed with `as? any WorkerRegistry`).
public protocol WorkerRegistry: Sendable {
    /// Registers or refreshes a worker; the record expires after `ttl` without a heartbeat.
    func heartbeat(_ info: WorkerInfo, ttl: Duration) async throws
    func unregister(_ id: WorkerID) async throws
    func workers() async throws -> [WorkerInfo]
}
