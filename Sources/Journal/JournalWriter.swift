import DocketQueue
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// One change to the journal. A unit of several changes always commits in one transaction.
public enum JournalWrite: Sendable {
    /// Inserts events and advances their jobs' rows. A replayed `(jobId, seq)` is skipped; one already
    /// journaled with different content is kept as a conflict (`journalConflict`).
    case events([JournalEvent], spooled: Bool = false)
    /// Records the definition of jobs this journal met mid-life (taken from Redis), before their events.
    case define([Job])
    /// The jobs are now in Redis.
    case clearSpooled([JobID])
    /// Removes a job that never became real (its idempotency key belonged to another job); only a job still
    /// spooled with nothing but its write-ahead event, so no history is ever deleted.
    case discard(JobID)
    /// Records how far this journal has drained a queue's stream.
    case cursor(QueueName, String)
    /// A schedule's definition as seen in Redis (nil: deleted), with the event that changed it.
    case schedule(Schedule?, name: String, event: ScheduleEvent)
    /// Something that happened to a schedule (fired, skipped).
    case scheduleEvent(ScheduleEvent)
    /// A limit's definition as seen in Redis (nil: deleted at `at`).
    case limit(Limit?, name: String, at: Date)
}

/// One line of a schedule's history (`GET /schedules/{name}/events`).
public struct ScheduleEvent: Sendable, Hashable {
    public var name: String
    public var at: Date
    /// created, updated, paused, resumed, deleted, fired, skipped.
    public var event: String
    public var tick: Date?
    public var jobID: String?
    public var detail: String?
    public init(name: String, at: Date = Date(), event: String, tick: Date? = nil, jobID: String? = nil, detail: String? = nil) {
        self.name = name
        self.at = at
        self.event = event
        self.tick = tick
        self.jobID = jobID
        self.detail = detail
    }
}

/// The journal's one writer: appends are grouped, many per SQLite transaction (group commit), and
/// `write` returns only once its unit is durable (WAL, `synchronous=FULL`).
public actor JournalWriter: Service {
    public struct Configuration: Sendable {
        public var maxBatch = 2000
        /// How long a commit waits for more writes to join it.
        public var maxLatency: Duration = .microseconds(500)
        public init() {}
    }

    private struct Pending {
        let unit: [JournalWrite]
        let continuation: CheckedContinuation<Void, any Error>?
    }

    let database: DatabasePool
    private let configuration: Configuration
    private let logger: Logger
    private var pending: [Pending] = []
    private var closed = false
    private let doorbell: AsyncStream<Void>
    private let bell: AsyncStream<Void>.Continuation
    /// Commits so far and their total time (for metrics and the benchmark).
    public private(set) var commits = 0
    public private(set) var commitTime: Duration = .zero
    /// Conflicting events recorded since start (see `JournalWrite.events`).
    public private(set) var conflicts = 0
    /// False while the last commit failed (disk full, read-only, I/O error), until one succeeds.
    public private(set) var committing = true

    public init(database: DatabasePool, configuration: Configuration = .init(), logger: Logger) {
        self.database = database
        self.configuration = configuration
        self.logger = logger
        (doorbell, bell) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Commits `unit` (with whatever else is waiting) and returns once it is durable.
    public func write(_ unit: [JournalWrite]) async throws {
        guard !closed else { throw JournalError(.closed) }
        try await withCheckedThrowingContinuation { continuation in
            pending.append(Pending(unit: unit, continuation: continuation))
            bell.yield()
        }
    }

    /// Queues `unit` for the next commit without waiting for it.
    public func submit(_ unit: [JournalWrite]) {
        guard !closed else { return }
        pending.append(Pending(unit: unit, continuation: nil))
        bell.yield()
    }

    public func run() async {
        for await _ in doorbell.cancelOnGracefulShutdown() {
            if pending.count < configuration.maxBatch { try? await Task.sleep(for: configuration.maxLatency) }
            while !pending.isEmpty { await flush() }
        }
        closed = true
        while !pending.isEmpty { await flush() }  // drain on shutdown
    }

    private func flush() async {
        var batch = [Pending]()
        var size = 0
        while size < configuration.maxBatch, !pending.isEmpty {
            let next = pending.removeFirst()
            size += next.unit.reduce(0) { $0 + $1.weight }
            batch.append(next)
        }
        let units = batch.map(\.unit)
        let start = ContinuousClock.now
        do {
            let found = try await database.write { db -> [JournalEvent] in
                var found = [JournalEvent]()
                for unit in units { for write in unit { try Self.apply(write, db, conflicts: &found) } }
                return found
            }
            commits += 1
            committing = true
            commitTime += ContinuousClock.now - start
            conflicts += found.count
            for e in found {
                logger.warning("Journal conflict: an event's (job, seq) was already journaled with other content; both are kept",
                               metadata: ["job.id": "\(e.jobID)", "event.seq": "\(e.seq)", "event.name": "\(e.event)"])
            }
            for item in batch { item.continuation?.resume() }
        } catch {
            logger.error("Journal commit failed", metadata: ["journal.batch": "\(batch.count)", "error": "\(error)"])
            committing = false
            let failure = JournalError(.unavailable, message: "\(error)")
            for item in batch { item.continuation?.resume(throwing: failure) }
        }
    }

    static func apply(_ write: JournalWrite, _ db: Database, conflicts: inout [JournalEvent]) throws {
        switch write {
        case .events(let events, let spooled):
            // Consecutive events of one job (seq n, n+1, ...) advance its row with one UPDATE: a started and a
            // completed event read in one batch cost one row write, not two.
            var run = RowAdvance?.none
            for event in events {
                guard let inserted = try insert(event, spooled: spooled, db) else {
                    conflicts.append(event)
                    continue
                }
                guard inserted, event.job == nil else { continue }
                if run?.extend(with: event) == true { continue }
                try run?.apply(db)
                run = RowAdvance(event)
            }
            try run?.apply(db)
        case .define(let jobs):
            for job in jobs { try define(job, db) }
        case .clearSpooled(let ids):
            let statement = try db.cachedStatement(sql: "UPDATE job SET spooled = 0 WHERE id = ? AND spooled = 1")
            for id in ids {
                var clear = BoundStatement(statement)
                clear.bind(id.rawValue)
                try clear.run()
            }
        case .discard(let id):
            try db.execute(sql: "DELETE FROM job WHERE id = ? AND spooled = 1 AND lastSeq <= 1", arguments: [id.rawValue])
            if db.changesCount > 0 { try db.execute(sql: "DELETE FROM journalEvent WHERE jobId = ?", arguments: [id.rawValue]) }
        case .cursor(let queue, let id):
            try db.execute(
                sql: "INSERT INTO streamCursor (queue, lastId, updatedAt) VALUES (?, ?, ?) ON CONFLICT(queue) DO UPDATE SET lastId = excluded.lastId, updatedAt = excluded.updatedAt",
                arguments: [queue.rawValue, id, Date().millis])
        case .schedule(let schedule, let name, let event):
            if let schedule {
                let definition = String(decoding: try JSONEncoder().encode(schedule), as: UTF8.self)
                try db.execute(sql: """
                    INSERT INTO schedule (name, definition, createdAt, updatedAt, deletedAt) VALUES (?, ?, ?, ?, NULL)
                    ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, updatedAt = excluded.updatedAt, deletedAt = NULL,
                      createdAt = CASE WHEN schedule.deletedAt IS NULL THEN schedule.createdAt ELSE excluded.createdAt END
                    """, arguments: [name, definition, schedule.createdAt.millis, schedule.updatedAt.millis])
            } else {
                try db.execute(sql: "UPDATE schedule SET deletedAt = ? WHERE name = ?", arguments: [event.at.millis, name])
            }
            try insert(event, db)
        case .limit(let limit, let name, let at):
            if let limit {
                let definition = String(decoding: try JSONEncoder().encode(limit), as: UTF8.self)
                try db.execute(sql: """
                    INSERT INTO limitRule (name, definition, createdAt, deletedAt) VALUES (?, ?, ?, NULL)
                    ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, createdAt = excluded.createdAt, deletedAt = NULL
                    """, arguments: [name, definition, limit.createdAt.millis])
            } else {
                try db.execute(sql: "UPDATE limitRule SET deletedAt = ? WHERE name = ?", arguments: [at.millis, name])
            }
        case .scheduleEvent(let event):
            try insert(event, db)
            if event.event == "fired", let tick = event.tick {
                try db.execute(sql: "UPDATE schedule SET lastTick = ?, lastJobId = ? WHERE name = ? AND (lastTick IS NULL OR lastTick < ?)",
                               arguments: [tick.millis, event.jobID, event.name, tick.millis])
            }
        }
    }

    static func insert(_ event: ScheduleEvent, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO scheduleEvent (name, at, event, tick, jobId, detail) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [event.name, event.at.millis, event.event, event.tick?.millis, event.jobID, event.detail])
    }

    /// A job met mid-life: its definition from Redis (a placeholder row, if any, gets it too).
    static func define(_ job: Job, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO job (id, type, queue, payload, priority, maxAttempts, timeoutMs, backoffBaseMs, backoffMaxMs, runAt,
              idempotencyKey, state, attempts, createdAt, updatedAt, lastSeq, defined, uniqueKey, uniqueWhile, replayOf)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET type = excluded.type, payload = excluded.payload, priority = excluded.priority,
              maxAttempts = excluded.maxAttempts, timeoutMs = excluded.timeoutMs, backoffBaseMs = excluded.backoffBaseMs,
              backoffMaxMs = excluded.backoffMaxMs, idempotencyKey = excluded.idempotencyKey, createdAt = excluded.createdAt,
              uniqueKey = excluded.uniqueKey, uniqueWhile = excluded.uniqueWhile, replayOf = excluded.replayOf, defined = 1
            WHERE defined = 0
            """).execute(arguments: [
                job.id.rawValue, job.type.rawValue, job.queue.rawValue, job.payload, job.priority.rawValue, job.maxAttempts,
                job.timeout.milliseconds, job.backoff.base.milliseconds, job.backoff.max.milliseconds, job.runAt?.millis,
                job.idempotencyKey, job.state.rawValue, job.attempts, job.createdAt.millis, job.updatedAt.millis,
                job.unique?.key, job.unique?.while.rawValue, job.replayOf?.rawValue,
            ])
    }

    /// Inserts one event and, for an `enqueued` event, its job's row. Returns whether the event is new (other events
    /// then advance the row, see `RowAdvance`); nil when its `(jobId, seq)` was already journaled with different
    /// content (then kept in `journalConflict`).
    static func insert(_ e: JournalEvent, spooled: Bool, _ db: Database) throws -> Bool? {
        var event = BoundStatement(try db.cachedStatement(sql: """
            INSERT INTO journalEvent (jobId, seq, at, event, state, attempt, queue, type, worker, error, actor, detail, runMs)
            VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT type FROM job WHERE id = ?)), ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """))
        event.bind(e.jobID.rawValue)
        event.bind(e.seq)
        event.bind(e.at.millis)
        event.bind(e.event)
        event.bind(e.state.rawValue)
        event.bind(e.attempt)
        event.bind(e.queue.rawValue)
        event.bind(e.type?.rawValue)
        event.bind(e.jobID.rawValue)
        event.bind(e.worker)
        event.bind(e.error)
        event.bind(e.actor)
        event.bind(e.detail)
        event.bind(e.runMs)
        try event.run()
        guard db.changesCount > 0 else { return try replayed(e, db) ? false : nil }
        if let job = e.job {
            var row = BoundStatement(try db.cachedStatement(sql: """
                INSERT INTO job (id, type, queue, payload, priority, maxAttempts, timeoutMs, backoffBaseMs, backoffMaxMs, runAt,
                  idempotencyKey, state, attempts, createdAt, updatedAt, lastSeq, spooled, uniqueKey, uniqueWhile, replayOf)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """))
            row.bind(job.id.rawValue)
            row.bind(job.type.rawValue)
            row.bind(job.queue.rawValue)
            row.bind(job.payload)
            row.bind(job.priority.rawValue)
            row.bind(job.maxAttempts)
            row.bind(job.timeout.milliseconds)
            row.bind(job.backoff.base.milliseconds)
            row.bind(job.backoff.max.milliseconds)
            row.bind(job.runAt?.millis)
            row.bind(job.idempotencyKey)
            row.bind(e.state.rawValue)
            row.bind(job.createdAt.millis)
            row.bind(e.at.millis)
            row.bind(e.seq)
            row.bind(spooled ? 1 : 0)
            row.bind(job.unique?.key)
            row.bind(job.unique?.while.rawValue)
            row.bind(job.replayOf?.rawValue)
            try row.run()
        }
        return true
    }

    /// What one or more consecutive new events of one job (seq n, n+1, ...) do to its row: the last event's state,
    /// attempt, time and seq; the latest start, error, result, progress and runAt among them. Applied once, only
    /// forward in seq, exactly as the events applied one by one would leave the row.
    struct RowAdvance {
        var last: JournalEvent
        var startedAt: Int64?, error: String?, result: String?, progress: String?, runAt: Int64?
        /// Every event taken is a note (`replayed`, `held`, `lease_lost`): only the row's seq and time move.
        var notesOnly: Bool

        init(_ e: JournalEvent) {
            last = e
            notesOnly = Self.annotations.contains(e.event)
            take(e)
        }

        /// Takes `e` in if it is the same job's next seq.
        mutating func extend(with e: JournalEvent) -> Bool {
            guard e.jobID == last.jobID, e.seq == last.seq + 1 else { return false }
            last = e
            notesOnly = notesOnly && Self.annotations.contains(e.event)
            take(e)
            return true
        }

        private mutating func take(_ e: JournalEvent) {
            switch e.event {
            case "started": startedAt = e.at.millis
            case "completed": result = e.detail ?? result
            case "progress": progress = e.detail ?? progress
            case "retry_scheduled": runAt = e.detail.flatMap { Int64($0) } ?? runAt
            default: break
            }
            error = e.error ?? error
        }

        /// Events that change no state: they note something about the job.
        static let annotations: Set<String> = ["replayed", "lease_lost", "held"]

        func apply(_ db: Database) throws {
            // Kept fields are passed as NULL and COALESCEd; the values are decided here rather than by CASE
            // expressions, so the statement binds 14 arguments, not 25.
            let sql = """
                UPDATE job SET state = ?, attempts = ?, updatedAt = ?, lastSeq = ?, startedAt = COALESCE(?, startedAt),
                  finishedAt = CASE WHEN ? THEN COALESCE(finishedAt, ?) ELSE ? END,
                  lastError = COALESCE(?, lastError), result = COALESCE(?, result), progress = COALESCE(?, progress),
                  runAt = COALESCE(?, runAt), spooled = 0
                WHERE id = ? AND lastSeq < ?
                """
            func update() throws {
                var update = BoundStatement(try db.cachedStatement(sql: sql))
                update.bind(last.state.rawValue)
                update.bind(last.attempt)
                update.bind(last.at.millis)
                update.bind(last.seq)
                update.bind(startedAt)
                // An event that notes something about a finished job (`replayed`, `lease_lost`) keeps its finish time.
                let finished = last.state.isTerminal ? last.at.millis : nil
                update.bind(Self.annotations.contains(last.event) ? 1 : 0)
                update.bind(finished)
                update.bind(finished)
                update.bind(error)
                update.bind(result)
                update.bind(progress)
                update.bind(runAt)
                update.bind(last.jobID.rawValue)
                update.bind(last.seq)
                try update.run()
            }
            if notesOnly {
                // A note changes no indexed column: the row's seq and time move, and no index is touched. (A row
                // that is missing is defined by the full path below.)
                try db.cachedStatement(sql: "UPDATE job SET updatedAt = ?, lastSeq = ? WHERE id = ? AND lastSeq < ?")
                    .execute(arguments: [last.at.millis, last.seq, last.jobID.rawValue, last.seq])
                if db.changesCount > 0 { return }
                guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM job WHERE id = ?)"), arguments: [last.jobID.rawValue]) == false
                else { return }
            }
            try update()
            guard db.changesCount == 0 else { return }
            // No row moved: the row is ahead already, or missing. Missing means a job first seen mid-life whose
            // definition Redis no longer had (the ingestor defines the others first): a row marked undefined,
            // which recovery never restores, then advanced like any other.
            try db.cachedStatement(sql: """
                INSERT INTO job (id, type, queue, payload, priority, maxAttempts, timeoutMs, backoffBaseMs, backoffMaxMs, state,
                  createdAt, updatedAt, lastSeq, defined)
                VALUES (?, ?, ?, 'null', 'normal', 0, 0, 0, 0, ?, ?, ?, 0, 0) ON CONFLICT DO NOTHING
                """).execute(arguments: [
                    last.jobID.rawValue, last.type?.rawValue ?? "unknown", last.queue.rawValue, last.state.rawValue, last.at.millis, last.at.millis,
                ])
            if db.changesCount > 0 { try update() }
        }
    }

    /// An event whose (jobId, seq) is journaled already: a replay (true), or a divergence kept as a conflict
    /// (false). The write-ahead `enqueued` event and the stream's own differ only in time and actor.
    static func replayed(_ e: JournalEvent, _ db: Database) throws -> Bool {
        // Seq 1 is only ever `enqueued` (no script writes another event first): the stream echoing a write-ahead
        // enqueue is a replay, decided without reading the row back.
        if e.seq == 1 && e.event == "enqueued" { return true }
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT event, state, attempt, at, worker FROM journalEvent WHERE jobId = ? AND seq = ?"),
            arguments: [e.jobID.rawValue, e.seq])
        else { return true }
        let event: String = row["event"]
        if event == e.event && (e.event == "enqueued"
            || (row["state"] == e.state.rawValue && row["attempt"] == e.attempt && row["at"] == e.at.millis && row["worker"] == e.worker)) {
            return true
        }
        let already = try Int.fetchOne(db.cachedStatement(sql: """
            SELECT COUNT(*) FROM journalConflict WHERE jobId = ? AND seq = ? AND event = ? AND at = ? AND attempt = ?
            """), arguments: [e.jobID.rawValue, e.seq, e.event, e.at.millis, e.attempt]) ?? 0
        guard already == 0 else { return true }  // the same conflicting entry read again
        try db.cachedStatement(sql: """
            INSERT INTO journalConflict (jobId, seq, at, event, state, attempt, queue, worker, error, detail, recordedAt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                e.jobID.rawValue, e.seq, e.at.millis, e.event, e.state.rawValue, e.attempt, e.queue.rawValue, e.worker, e.error,
                e.detail, Date().millis,
            ])
        return false
    }
}

extension JournalWrite {
    var weight: Int {
        switch self {
        case .events(let events, _): return events.count
        case .define(let jobs): return jobs.count
        case .clearSpooled(let ids): return ids.count
        case .discard, .cursor, .schedule, .scheduleEvent, .limit: return 1
        }
    }
}
