import DocketQueue
import Foundation
import Logging
import ServiceLifecycle

/// Write-ahead enqueue: a job's `enqueued` event is durable in SQLite before the job goes to Redis.
/// If Redis is unreachable the job stays in the journal as spooled and `SpoolPusher` delivers it later.
public struct JournaledQueue: Sendable {
    public let journal: Journal
    public let driver: RedisQueueDriver
    let logger: Logger

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
        /// Journaled, waiting for Redis to come back.
        case spooled(Job)
        public var job: Job {
            switch self {
            case .created(let job), .existing(let job), .spooled(let job): return job
            }
        }
    }

    /// Journals then enqueues `jobs` (one durable commit for all of them, one Redis pipeline).
    public func enqueue(_ jobs: [Job], actor: String?) async throws -> [Outcome] {
        if jobs.isEmpty { return [] }
        try await journal.writer.write([.events(jobs.map { JournalEvent.enqueued($0, actor: actor) }, spooled: true)])
        let results: [EnqueueResult]
        do {
            results = try await driver.enqueue(jobs, actor: actor)
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
        var discards = [JournalWrite]()
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
                    discards.append(.discard(job.id))
                    outcomes.append(.existing(other))
                }
            case .expired(let id):
                // The key's job has left Redis; the journal still knows it.
                discards.append(.discard(job.id))
                outcomes.append(.existing(try await journal.reader.job(id) ?? job))
            }
        }
        if !discards.isEmpty { try await journal.writer.write(discards) }
        // The flag is only a hint for the spool pusher (a re-push is a no-op), so it needn't wait for a commit.
        if !delivered.isEmpty { await journal.writer.submit([.clearSpooled(delivered)]) }
        return outcomes
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
        let results = try await queue.driver.enqueue(jobs, actor: nil)
        let outcomes = try await queue.settle(jobs, results)
        // Wait for the flags so the next batch does not pick the same jobs again.
        try await queue.journal.writer.write([])
        logger.info("Pushed spooled jobs to Redis", metadata: ["jobs.count": "\(outcomes.count)"])
        return outcomes.count
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
