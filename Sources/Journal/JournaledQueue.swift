import DocketQueue
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Write-ahead enqueue: a job's `enqueued` event is durable in SQLite before the job goes to Redis.
/// If Redis is unreachable, or lost data and is not rebuilt yet (fenced), the job stays in the journal as
/// spooled and `SpoolPusher` delivers it later.
public struct JournaledQueue: Sendable {
    public let journal: Journal
    public let driver: RedisQueueDriver
    let logger: Logger
    /// Enqueues holding an idempotency key, so that two with one key never both create a job.
    let keyLocks = KeyLocks()

    public init(journal: Journal, driver: RedisQueueDriver, logger: Logger) {
        self.journal = journal
        self.driver = driver
        self.logger = logger
    }

    /// What happened to one enqueued job.
    public enum Outcome: Sendable, Hashable {
        case created(Job)
        /// The idempotency key already named this job; nothing was created.
        case existing(Job)
        /// Journaled, waiting for Redis to come back (or to be rebuilt).
        case spooled(Job)
        /// Refused: the live job `holder` holds this job's unique key. Nothing was created (the write-ahead row is
        /// removed again).
        case uniqueConflict(Job, holder: JobID)
        public var job: Job {
            switch self {
            case .created(let job), .existing(let job), .spooled(let job), .uniqueConflict(let job, _): return job
            }
        }
    }

    /// Journals then enqueues `jobs` (one durable commit for all of them, one Redis pipeline). A job whose
    /// idempotency key the journal already knows within the window answers that job, whether or not Redis is
    /// reachable or still holds the key.
    public func enqueue(_ jobs: [Job], actor: String?) async throws -> [Outcome] {
        if jobs.isEmpty { return [] }
        let keys = Set(jobs.compactMap { job in job.idempotencyKey.map { "\(job.queue.rawValue)\u{0}\($0)" } })
        if keys.isEmpty { return try await journalAndDeliver(jobs, actor: actor) }
        return try await keyLocks.withLocks(keys.sorted()) {
            var outcomes = [Outcome?](repeating: nil, count: jobs.count)
            var fresh = [Int]()
            var firstInBatch = [String: Int]()
            let since = Date().addingTimeInterval(-Double(driver.configuration.idempotencyTTL.milliseconds) / 1000)
            for (i, job) in jobs.enumerated() {
                guard let key = job.idempotencyKey else { fresh.append(i); continue }
                if let earlier = try await journal.reader.job(idempotencyKey: key, queue: job.queue, since: since) {
                    outcomes[i] = .existing(earlier)
                } else if let first = firstInBatch["\(job.queue.rawValue)\u{0}\(key)"] {
                    outcomes[i] = .existing(jobs[first])  // resolved below, once the first is journaled
                } else {
                    firstInBatch["\(job.queue.rawValue)\u{0}\(key)"] = i
                    fresh.append(i)
                }
            }
            let delivered = try await journalAndDeliver(fresh.map { jobs[$0] }, actor: actor)
            var byID = [JobID: Outcome]()
            for (i, outcome) in zip(fresh, delivered) {
                outcomes[i] = outcome
                byID[jobs[i].id] = outcome
            }
            return outcomes.map { outcome -> Outcome in
                if case .existing(let job)? = outcome, let first = byID[job.id] { return .existing(first.job) }
                return outcome!
            }
        }
    }

    func journalAndDeliver(_ jobs: [Job], actor: String?) async throws -> [Outcome] {
        if jobs.isEmpty { return [] }
        try await journal.writer.write([.events(jobs.map { JournalEvent.enqueued($0, actor: actor) }, spooled: true)])
        return try await deliver(jobs, actor: actor)
    }

    /// Pushes journaled (spooled) jobs into Redis: fenced while Redis lost data and is not rebuilt yet, and
    /// spooled again when Redis is unreachable. Clears the spooled flag of what arrived.
    /// `enforceUnique` is false for jobs already acknowledged (spooled): they are delivered whatever holds their key.
    func deliver(_ jobs: [Job], actor: String?, enforceUnique: Bool = true) async throws -> [Outcome] {
        let results: [EnqueueResult]
        do {
            results = try await driver.enqueue(jobs, actor: actor, fenced: true, enforceUnique: enforceUnique)
        } catch let error as RedisClientError {
            // Unreachable, or refusing writes (LOADING, OOM…): the jobs are durable in the journal and the
            // spool delivers them, so the answer is "accepted", never an error that invites a retry.
            logger.warning("Redis unavailable; jobs spooled in the journal", metadata: ["jobs.count": "\(jobs.count)", "error": "\(error)"])
            return jobs.map { .spooled($0) }
        }
        return try await settle(jobs, results)
    }

    /// Clears the spooled flag of jobs now in Redis and forgets jobs an idempotency key turned away.
    func settle(_ jobs: [Job], _ results: [EnqueueResult]) async throws -> [Outcome] {
        var delivered = [JobID]()
        var writes = [JournalWrite]()
        var outcomes = [Outcome]()
        for (job, result) in zip(jobs, results) {
            switch result {
            case .created(let stored):
                delivered.append(job.id)
                outcomes.append(.created(stored))
            case .existing(let other):
                if other.id == job.id {
                    // Our own id was already there (the spool got it there first): it is this job, created.
                    delivered.append(job.id)
                    outcomes.append(.created(other))
                } else {
                    writes.append(.discard(job.id))
                    outcomes.append(.existing(other))
                }
            case .expired(let id):
                // The key's job has left Redis; the journal still knows it.
                writes.append(.discard(job.id))
                outcomes.append(.existing(try await journal.reader.job(id) ?? job))
            case .fenced:
                outcomes.append(.spooled(job))
            case .uniqueConflict(_, let holder):
                writes.append(.discard(job.id))
                outcomes.append(.uniqueConflict(job, holder: holder))
            }
        }
        // The flag is cleared before the job is acknowledged as created, so recovery never skips a delivered job.
        if !delivered.isEmpty { writes.append(.clearSpooled(delivered)) }
        if !writes.isEmpty { try await journal.writer.write(writes) }
        return outcomes
    }
}

/// Per-key async locks (process-local): holders of one key run one at a time, in arrival order.
final class KeyLocks: Sendable {
    private let state = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func withLocks<T: Sendable>(_ keys: [String], _ body: () async throws -> T) async throws -> T {
        for key in keys { await lock(key) }
        defer { for key in keys { unlock(key) } }
        return try await body()
    }

    private func lock(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { table -> Bool in
                if table[key] == nil {
                    table[key] = []
                    return true
                }
                table[key]!.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    private func unlock(_ key: String) {
        let next = state.withLock { table -> CheckedContinuation<Void, Never>? in
            guard var waiting = table[key] else { return nil }
            if waiting.isEmpty {
                table[key] = nil
                return nil
            }
            let first = waiting.removeFirst()
            table[key] = waiting
            return first
        }
        next?.resume()
    }
}

/// Pushes spooled jobs into Redis, oldest first, once Redis is reachable again.
public struct SpoolPusher: Service {
    let queue: JournaledQueue
    let interval: Duration
    /// Younger spooled jobs are most likely being enqueued by the API right now: left to it.
    let minAge: Duration
    let logger: Logger

    public init(queue: JournaledQueue, interval: Duration = .milliseconds(250), minAge: Duration = .seconds(5), logger: Logger) {
        self.queue = queue
        self.interval = interval
        self.minAge = minAge
        self.logger = logger
    }

    public func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let pushed = (try? await pushOnce()) ?? 0
            if pushed == 0 { try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } }
        }
    }

    /// Pushes up to one batch of spooled jobs; returns how many reached Redis.
    @discardableResult
    public func pushOnce(batch: Int = 500) async throws -> Int {
        let jobs = try await queue.journal.reader.spooled(limit: batch, olderThan: minAge)
        if jobs.isEmpty { return 0 }
        let outcomes = try await queue.deliver(jobs, actor: nil, enforceUnique: false)
        let pushed = outcomes.filter { if case .spooled = $0 { false } else { true } }.count
        if pushed > 0 { logger.info("Pushed spooled jobs to Redis", metadata: ["jobs.count": "\(pushed)"]) }
        return pushed
    }
}

/// Looks a job up in Redis first (live state), then in the journal (after its Redis data expired).
public struct JobLookup: Sendable {
    public enum Source: String, Sendable, Codable { case redis, journal }

    let journal: Journal
    let driver: RedisQueueDriver

    public init(journal: Journal, driver: RedisQueueDriver) {
        self.journal = journal
        self.driver = driver
    }

    /// The job and where it came from; nil if neither knows it. Redis errors fall back to the journal.
    public func job(_ id: JobID) async throws -> (job: Job, source: Source)? {
        let journaled = try await journal.reader.job(id)
        if let live = try? await driver.job(id, queue: journaled?.queue) { return (live, .redis) }
        return journaled.map { ($0, .journal) }
    }
}
