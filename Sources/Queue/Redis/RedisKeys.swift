/// A Redis key. Only `RedisKeys` can make one, so no other file can spell a key name.
public struct RedisKey: Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ name: String) { self.description = name }
}

/// The whole key schema. A queue's keys carry the queue as a hash tag (`docket:{default}:pending`),
/// so every key a Lua script touches shares one Redis Cluster slot.
public struct RedisKeys: Sendable, Hashable {
    public let prefix: String
    public init(prefix: String = "docket") { self.prefix = prefix }

    public func queue(_ name: QueueName) -> Queue { Queue(tag: "\(prefix):{\(name.rawValue)}") }
    /// SET of every queue name ever enqueued to (the scheduler and stats walk it).
    public var queues: RedisKey { RedisKey("\(prefix):queues") }
    /// ZSET worker id → last heartbeat ms.
    public var workers: RedisKey { RedisKey("\(prefix):workers") }
    /// STRING present while Redis holds this deployment's data; its absence means Redis lost it (recovery).
    public var marker: RedisKey { RedisKey("\(prefix):marker") }
    /// In a Redis Cluster, one marker per master (`tag` is a hash tag that master serves), naming its `run_id`.
    public func marker(tag: String) -> RedisKey { RedisKey("\(prefix):marker:{\(tag)}") }
    /// ZSET journal id → last heartbeat ms (journals that hold back stream trimming).
    public var journals: RedisKey { RedisKey("\(prefix):journals") }
    /// HASH limit name → its definition (JSON, `Limit`).
    public var limits: RedisKey { RedisKey("\(prefix):limits") }
    /// Passed to claim.lua: where a limit's counters live (one Redis: shared by every queue).
    public var limitCounterPrefix: String { "\(prefix):limit:" }
    /// HASH schedule name → its definition (JSON, `Schedule`).
    public var schedules: RedisKey { RedisKey("\(prefix):schedules") }
    /// HASH schedule name → the last tick fired (ms).
    public var scheduleTicks: RedisKey { RedisKey("\(prefix):schedule-ticks") }
    /// HASH of one worker's registration (host, pid, queues, concurrency, started, heartbeat).
    public func worker(_ id: WorkerID) -> RedisKey { RedisKey("\(prefix):worker:\(id.rawValue)") }

    public struct Queue: Sendable, Hashable {
        let tag: String
        /// ZSET id → priority band · 2^48 + arrival counter (strict priority, FIFO within a band).
        public var pending: RedisKey { RedisKey("\(tag):pending") }
        /// ZSET id → runAt ms, for jobs enqueued with a delay.
        public var scheduled: RedisKey { RedisKey("\(tag):scheduled") }
        /// ZSET id → runAt ms, for jobs waiting out a retry backoff.
        public var retrying: RedisKey { RedisKey("\(tag):retrying") }
        /// ZSET id → lease deadline ms.
        public var active: RedisKey { RedisKey("\(tag):active") }
        /// ZSET id → time of death ms (the dead-letter queue).
        public var dead: RedisKey { RedisKey("\(tag):dead") }
        /// STREAM of every transition, drained into the journal.
        public var events: RedisKey { RedisKey("\(tag):events") }
        /// HASH journal id → the last stream id that journal committed (trimming waits for the slowest).
        public var journalCursors: RedisKey { RedisKey("\(tag):journals") }
        /// STRING, present while the queue is paused.
        public var paused: RedisKey { RedisKey("\(tag):paused") }
        /// LIST of wake tokens a blocked claimer pops (BLPOP) instead of polling.
        public var wake: RedisKey { RedisKey("\(tag):wake") }
        /// STRING counter giving pending jobs their FIFO order.
        public var counter: RedisKey { RedisKey("\(tag):counter") }
        /// HASH of running totals: completed, failed, dead.
        public var stats: RedisKey { RedisKey("\(tag):stats") }
        /// STRING idempotency key → job id, expiring after the idempotency window.
        public func idempotency(_ key: String) -> RedisKey { RedisKey(idempotencyPrefix + key) }
        /// SET of the live jobs holding a unique key (their states are checked at enqueue; see `UniqueKey`).
        public func unique(_ key: String) -> RedisKey { RedisKey("\(tag):unique:\(key)") }
        /// Passed to Lua (ARGV) where a script derives idempotency keys (recovery).
        public var idempotencyPrefix: String { "\(tag):idem:" }
        /// STRING: the last seq a replay gave a job Redis no longer holds (so concurrent replays never share one).
        public func replaySeq(_ id: JobID) -> RedisKey { RedisKey("\(tag):replayseq:\(id.rawValue)") }
        /// HASH of one job.
        public func job(_ id: JobID) -> RedisKey { RedisKey(jobKeyPrefix + id.rawValue) }
        /// Passed to claim.lua in a Redis Cluster: a limit's counters for this queue (scripts reach one slot only, so in a
        /// cluster each queue counts its own starts).
        public var limitCounterPrefix: String { "\(tag):limit:" }
        /// Passed to Lua (ARGV) where a script derives job keys from ids it pops.
        public var jobKeyPrefix: String { "\(tag):job:" }
    }
}
