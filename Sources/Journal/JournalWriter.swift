import DocketQueue
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// One change to the journal. A unit of several changes always commits in one transaction.
public enum JournalWrite: Sendable {
    /// Inserts events (a duplicate `(jobId, seq)` is skipped) and advances their jobs' rows.
    case events([JournalEvent], spooled: Bool = false)
    /// The jobs are now in Redis.
    case clearSpooled([JobID])
    /// Removes a job that never became real (its idempotency key belonged to another job).
    case discard(JobID)
    /// Records how far this journal has drained a queue's stream.
    case cursor(QueueName, String)
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
            try await database.write { db in
                for unit in units { for write in unit { try Self.apply(write, db) } }
            }
            commits += 1
            commitTime += ContinuousClock.now - start
            for item in batch { item.continuation?.resume() }
        } catch {
            logger.error("Journal commit failed", metadata: ["journal.batch": "\(batch.count)", "error": "\(error)"])
            for item in batch { item.continuation?.resume(throwing: error) }
        }
    }

    static func apply(_ write: JournalWrite, _ db: Database) throws {
        switch write {
        case .events(let events, let spooled):
            for event in events { try apply(event, spooled: spooled, db) }
        case .clearSpooled(let ids):
            let statement = try db.cachedStatement(sql: "UPDATE job SET spooled = 0 WHERE id = ? AND spooled = 1")
            for id in ids { try statement.execute(arguments: [id.rawValue]) }
        case .discard(let id):
            try db.execute(sql: "DELETE FROM journalEvent WHERE jobId = ?", arguments: [id.rawValue])
            try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id.rawValue])
        case .cursor(let queue, let id):
            try db.execute(
                sql: "INSERT INTO streamCursor (queue, lastId, updatedAt) VALUES (?, ?, ?) ON CONFLICT(queue) DO UPDATE SET lastId = excluded.lastId, updatedAt = excluded.updatedAt",
                arguments: [queue.rawValue, id, Date().millis])
        }
    }

    /// Inserts one event; if it is new, creates (enqueued) or advances its job's row.
    static func apply(_ e: JournalEvent, spooled: Bool, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO journalEvent (jobId, seq, at, event, state, attempt, queue, type, worker, error, actor, detail, runMs)
            VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT type FROM job WHERE id = ?)), ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """).execute(arguments: [
                e.jobID.rawValue, e.seq, e.at.millis, e.event, e.state.rawValue, e.attempt, e.queue.rawValue, e.type?.rawValue, e.jobID.rawValue,
                e.worker, e.error, e.actor, e.detail, e.runMs,
            ])
        guard db.changesCount > 0 else { return }  // a replayed event: already applied
        if let job = e.job {
            try db.cachedStatement(sql: """
                INSERT INTO job (id, type, queue, payload, priority, maxAttempts, timeoutMs, backoffBaseMs, backoffMaxMs, runAt,
                  idempotencyKey, state, attempts, createdAt, updatedAt, lastSeq, spooled)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """).execute(arguments: [
                    job.id.rawValue, job.type.rawValue, job.queue.rawValue, job.payload, job.priority.rawValue, job.maxAttempts,
                    job.timeout.milliseconds, job.backoff.base.milliseconds, job.backoff.max.milliseconds, job.runAt?.millis,
                    job.idempotencyKey, e.state.rawValue, job.createdAt.millis, e.at.millis, e.seq, spooled ? 1 : 0,
                ])
            return
        }
        // A job first seen mid-life (its `enqueued` event was trimmed before this journal existed).
        try db.cachedStatement(sql: """
            INSERT INTO job (id, type, queue, payload, priority, maxAttempts, timeoutMs, backoffBaseMs, backoffMaxMs, state,
              createdAt, updatedAt, lastSeq)
            VALUES (?, ?, ?, 'null', 'normal', 0, 0, 0, 0, ?, ?, ?, 0) ON CONFLICT DO NOTHING
            """).execute(arguments: [e.jobID.rawValue, e.type?.rawValue ?? "unknown", e.queue.rawValue, e.state.rawValue, e.at.millis, e.at.millis])
        let terminal = e.state.isTerminal
        try db.cachedStatement(sql: """
            UPDATE job SET state = ?, attempts = ?, updatedAt = ?, lastSeq = ?,
              startedAt = CASE WHEN ? THEN ? ELSE startedAt END,
              finishedAt = CASE WHEN ? THEN ? WHEN ? THEN NULL ELSE finishedAt END,
              lastError = COALESCE(?, lastError),
              result = CASE WHEN ? THEN ? ELSE result END,
              progress = CASE WHEN ? THEN ? ELSE progress END,
              runAt = CASE WHEN ? THEN ? ELSE runAt END
            WHERE id = ? AND lastSeq < ?
            """).execute(arguments: [
                e.state.rawValue, e.attempt, e.at.millis, e.seq,
                e.event == "started", e.at.millis,
                terminal, e.at.millis, !terminal,
                e.error,
                e.event == "completed", e.detail,
                e.event == "progress", e.detail,
                e.event == "retry_scheduled", e.detail.flatMap { Int64($0) },
                e.jobID.rawValue, e.seq,
            ])
    }
}

extension JournalWrite {
    var weight: Int {
        switch self {
        case .events(let events, _): return events.count
        case .clearSpooled(let ids): return ids.count
        case .discard, .cursor: return 1
        }
    }
}
