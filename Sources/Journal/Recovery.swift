import DocketQueue
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// Rebuilds Redis from the journal, job by job: a job Redis lacks, or holds at an older `seq` than the journal
/// (a restart from an old snapshot, the last second of AOF lost, a flush), is set back to the journal's state.
/// Non-terminal jobs come back to run; dead ones come back to the dead-letter queue while their dead TTL lasts;
/// completed, cancelled and purged ones never run again (a stale live copy is finished or deleted). Idempotency
/// keys of every job still in the window come back. Jobs Redis holds as new as the journal are left alone, so
/// running it twice, or while Redis is intact, is safe.
public struct Recovery: Sendable {
    let journal: Journal
    let driver: RedisQueueDriver
    let logger: Logger
    /// Jobs read from the journal per batch (up to three batches are restored at once).
    let batchSize: Int

    public init(journal: Journal, driver: RedisQueueDriver, batchSize: Int = 2000, logger: Logger) {
        self.journal = journal
        self.driver = driver
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    /// What a recovery did (or, dry, would do).
    public struct Report: Sendable, Hashable {
        public var dryRun: Bool
        public var asOf: Date?
        /// Journaled jobs compared with Redis.
        public var candidates = 0
        /// Of those, already in Redis at the journal's seq or later (left alone).
        public var present = 0
        /// Set back (or to set back), by the state they get in Redis.
        public var restored: [JobState: Int] = [:]
        public var restoredTotal: Int { restored.values.reduce(0, +) }
        /// Of the restored, how many Redis held at an older seq (stale copies set back).
        public var stale = 0
        /// Jobs recovery never restores: met mid-life by this journal when Redis no longer had their definition.
        public var undefined = 0
        /// Schedules Redis lacked, set back from the journal (with their last fired tick).
        public var schedules = 0
        /// Limits Redis lacked, set back from the journal.
        public var limits = 0
    }

    /// Live states whose jobs Redis must hold.
    static let recoverable: [JobState] = [.active, .pending, .retrying, .scheduled, .dead]

    public func run(dryRun: Bool, asOf: Date? = nil) async throws -> Report {
        var report = Report(dryRun: dryRun, asOf: asOf)
        // 1. What Redis holds live that the journal knows newer (finished since, cancelled, purged…).
        try await sweepRedis(&report, dryRun: dryRun)
        // 2. Every live job of the journal (and, for the idempotency window, finished ones with a key).
        if let asOf {
            try await drain(&report, dryRun: dryRun) { try await candidates(asOf: asOf, after: $0, limit: batchSize) }
        } else {
            for state in Self.recoverable {
                try await drain(&report, dryRun: dryRun) { try await candidates(state: state, after: $0, limit: batchSize) }
            }
            try await drain(&report, dryRun: dryRun, counted: false) { try await finishedWithKeys(after: $0, limit: batchSize) }
        }
        // 3. Schedules Redis lost, with their last tick (so a schedule neither fires twice nor skips what it fired).
        let known = Set(try await driver.schedules().map(\.name))
        for (schedule, lastTick) in try await journal.reader.schedules() {
            if !known.contains(schedule.name) { report.schedules += 1 }
            if dryRun { continue }
            if !known.contains(schedule.name) { _ = try await driver.addSchedule(schedule) }
            // Never moves a tick back (schedule_tick.lua), so it is safe for schedules Redis kept too.
            if let lastTick { try await driver.setLastTick(schedule.name, lastTick) }
        }
        // 4. Limits Redis lost.
        let knownLimits = Set(try await driver.limits().map(\.name))
        for limit in try await journal.reader.limits() where !knownLimits.contains(limit.name) {
            report.limits += 1
            if !dryRun { _ = try await driver.addLimit(limit) }
        }
        report.undefined = try await journal.database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE defined = 0 AND state IN ('pending','scheduled','retrying','active','dead')") ?? 0
        }
        if report.undefined > 0 {
            logger.warning("Recovery skipped jobs whose type and payload this journal never learned", metadata: ["recovery.undefined": "\(report.undefined)"])
        }
        logger.notice("Recovery \(dryRun ? "dry run" : "done")", metadata: [
            "recovery.candidates": "\(report.candidates)", "recovery.restored": "\(report.restoredTotal)", "recovery.present": "\(report.present)",
            "recovery.stale": "\(report.stale)",
        ])
        return report
    }

    /// Applies every batch `fetch` yields (keyset after the previous batch's last job). Up to three batches are
    /// restored at once while the next is read from SQLite; each batch's FIFO order is reserved in journal order
    /// first, so pending jobs come back in the order they had.
    private func drain(
        _ report: inout Report, dryRun: Bool, counted: Bool = true, _ fetch: @escaping @Sendable ((Int64, String)?) async throws -> [Job]
    ) async throws {
        try await withThrowingTaskGroup(of: [RestoreOutcome].self) { group in
            var inFlight = 0
            var batch = try await fetch(nil)
            while let last = batch.last {
                if counted { report.candidates += batch.count }
                let jobs = batch
                let plan = dryRun ? nil : try await driver.reserveOrder(jobs)
                group.addTask { try await outcomes(jobs, plan: plan) }
                inFlight += 1
                batch = try await fetch((last.createdAt.millis, last.id.rawValue))
                while inFlight >= 3, let done = try await group.next() {
                    Self.tally(done, into: &report, counted: counted)
                    inFlight -= 1
                }
            }
            for try await done in group { Self.tally(done, into: &report, counted: counted) }
        }
    }

    /// Restores `batch` with `plan` (or, without a plan, a dry run: compares it with Redis).
    private func outcomes(_ batch: [Job], plan: RedisQueueDriver.RestorePlan?) async throws -> [RestoreOutcome] {
        if let plan { return try await driver.restore(batch, plan: plan) }
        return zip(batch, try await driver.seqs(batch)).map { job, seq in
            if let seq, seq >= job.seq { return .present }
            guard let state = Self.restoredState(job, inRedis: seq != nil) else { return .skipped }
            return .restored(state, stale: seq != nil)
        }
    }

    private static func tally(_ outcomes: [RestoreOutcome], into report: inout Report, counted: Bool) {
        for outcome in outcomes {
            switch outcome {
            case .present: if counted { report.present += 1 }
            case .skipped: break
            case .restored(let state, let stale):
                report.restored[state, default: 0] += 1
                if stale { report.stale += 1 }
            }
        }
    }

    /// The state `restore.lua` gives a job Redis lacks (or holds older), nil when it writes nothing.
    static func restoredState(_ job: Job, inRedis: Bool) -> JobState? {
        switch job.state {
        case .active: return job.attempts >= job.maxAttempts ? .dead : .pending
        case .scheduled, .retrying: return job.runAt == nil ? .pending : job.state
        case .completed, .cancelled, .purged: return inRedis ? job.state : nil
        case .pending, .dead: return job.state
        }
    }

    /// Ids in Redis' live sets that the journal has finished (completed, cancelled, purged): `restore.lua` sets
    /// back the copies older than the journal, so a stale one never runs again (a live journal state is handled
    /// by the journal pass).
    private func sweepRedis(_ report: inout Report, dryRun: Bool) async throws {
        let queues = Set(try await driver.queues()).union(try await journal.reader.queues())
        for queue in queues.sorted(by: { $0.rawValue < $1.rawValue }) {
            var cursor: String? = "0:0"
            while let current = cursor {
                let page = try await driver.liveJobs(of: queue, after: current)
                cursor = page.next
                let finished = try await journal.reader.finished(page.ids)
                if !finished.isEmpty {
                    let plan = dryRun ? nil : try await driver.reserveOrder(finished)
                    Self.tally(try await outcomes(finished, plan: plan), into: &report, counted: false)
                }
            }
        }
    }

    /// Journaled jobs in `state` Redis should hold, oldest first after `after`. Spooled jobs are the spool's
    /// business; undefined ones (type and payload unknown) are never restored.
    func candidates(state: JobState, after: (Int64, String)?, limit: Int) async throws -> [Job] {
        var sql = "SELECT \(JournalReader.jobColumns) FROM job WHERE state = ? AND spooled = 0 AND defined = 1"
        var arguments: [DatabaseValue] = [state.rawValue.databaseValue]
        if let after {
            sql += " AND (createdAt > ? OR (createdAt = ? AND id > ?))"
            arguments += [after.0.databaseValue, after.0.databaseValue, after.1.databaseValue]
        }
        sql += " ORDER BY createdAt, id LIMIT \(limit)"
        return try await fetch(sql, arguments)
    }

    /// Finished jobs whose idempotency key is still in its window (their keys are rebuilt; nothing runs).
    func finishedWithKeys(after: (Int64, String)?, limit: Int) async throws -> [Job] {
        let since = Date().millis - driver.configuration.idempotencyTTL.milliseconds
        var sql = """
            SELECT \(JournalReader.jobColumns) FROM job WHERE idempotencyKey IS NOT NULL AND createdAt >= ? AND state IN ('completed','cancelled','purged')
              AND spooled = 0 AND defined = 1
            """
        var arguments: [DatabaseValue] = [since.databaseValue]
        if let after {
            sql += " AND (createdAt > ? OR (createdAt = ? AND id > ?))"
            arguments += [after.0.databaseValue, after.0.databaseValue, after.1.databaseValue]
        }
        sql += " ORDER BY createdAt, id LIMIT \(limit)"
        return try await fetch(sql, arguments)
    }

    private func fetch(_ sql: String, _ arguments: [DatabaseValue]) async throws -> [Job] {
        try await journal.database.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).compactMap(JournalReader.job(from:))
        }
    }

    /// Point in time: journaled jobs as of `asOf` (from the last event at or before it) in a state Redis should
    /// hold, oldest first after `after`.
    func candidates(asOf: Date, after: (Int64, String)?, limit: Int) async throws -> [Job] {
        let states = Self.recoverable.map { "'\($0.rawValue)'" }.joined(separator: ",")
        let keyset = after == nil ? "" : "AND (j.createdAt > ? OR (j.createdAt = ? AND j.id > ?))"
        let sql = """
            SELECT \(JournalReader.columns("j")), e.state AS stateAt, e.attempt AS attemptAt FROM job j
            JOIN journalEvent e ON e.jobId = j.id
              AND e.seq = (SELECT MAX(seq) FROM journalEvent WHERE jobId = j.id AND at <= ?)
            WHERE j.createdAt <= ? AND j.spooled = 0 AND j.defined = 1 AND e.state IN (\(states)) \(keyset)
            ORDER BY j.createdAt, j.id LIMIT \(limit)
            """
        var arguments: [DatabaseValue] = [asOf.millis.databaseValue, asOf.millis.databaseValue]
        if let after { arguments += [after.0.databaseValue, after.0.databaseValue, after.1.databaseValue] }
        let finalArguments = arguments
        return try await journal.database.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(finalArguments)).compactMap { row -> Job? in
                guard var job = JournalReader.job(from: row), let state = JobState(rawValue: row["stateAt"]) else { return nil }
                job.state = state
                job.attempts = row["attemptAt"]  // seq stays the journal's latest, so new events follow it
                return job
            }
        }
    }
}

/// Notices when Redis may have lost this deployment's data (its marker key is gone after FLUSHALL or a
/// restart without persistence, or names another Redis process after any restart, e.g. from an older
/// snapshot) and rebuilds it from the journal. While it rebuilds, the marker is absent, so journaled
/// enqueues are fenced (spooled) and claims after a restart wait. The marker is then set to the run id
/// that was rebuilt: a Redis that restarted again meanwhile is rebuilt again. Checks at start and every
/// `interval`.
public struct RecoveryService: Service {
    let recovery: Recovery
    let interval: Duration
    let logger: Logger

    public init(recovery: Recovery, interval: Duration = .milliseconds(500), logger: Logger) {
        self.recovery = recovery
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await check()
            } catch {
                logger.debug("Recovery check failed; trying again", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One check: rebuilds when the marker does not name the Redis process now running.
    public func check() async throws {
        let (holds, runID) = try await recovery.driver.markerState()
        guard !holds else { return }
        if try await recovery.journal.reader.hasJobs() {
            try await recovery.driver.clearMarker()
            logger.warning("Redis is new, restarted or emptied: setting it back to the journal's state", metadata: ["redis.run_id": "\(runID)"])
            let start = ContinuousClock.now
            let report = try await recovery.run(dryRun: false)
            logger.notice("Rebuilt Redis from the journal", metadata: [
                "recovery.restored": "\(report.restoredTotal)", "recovery.stale": "\(report.stale)",
                "recovery.duration": "\(start.duration(to: .now))",
            ])
        }
        try await recovery.driver.setMarker(runID: runID)
    }
}
