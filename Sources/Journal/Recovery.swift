import DocketQueue
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// Rebuilds Redis from the journal: every non-terminal job (an active one goes back to pending), the
/// dead-letter queue and live idempotency keys. Jobs Redis still has are left alone, so running it
/// twice, or while Redis is partly intact, is safe.
public struct Recovery: Sendable {
    let journal: Journal
    let driver: RedisQueueDriver
    let logger: Logger

    public init(journal: Journal, driver: RedisQueueDriver, logger: Logger) {
        self.journal = journal
        self.driver = driver
        self.logger = logger
    }

    /// What a recovery did (or, dry, would do).
    public struct Report: Sendable, Hashable {
        public var dryRun: Bool
        public var asOf: Date?
        /// Journaled jobs that Redis should hold.
        public var candidates = 0
        /// Of those, already in Redis (left alone).
        public var present = 0
        /// Restored (or to restore), by the state they get in Redis.
        public var restored: [JobState: Int] = [:]
        public var restoredTotal: Int { restored.values.reduce(0, +) }
    }

    static let recoverable: [JobState] = [.pending, .scheduled, .retrying, .active, .dead]

    public func run(dryRun: Bool, asOf: Date? = nil) async throws -> Report {
        var report = Report(dryRun: dryRun, asOf: asOf)
        var after: (Int64, String)? = nil
        while true {
            let batch = try await candidates(asOf: asOf, after: after, limit: 500)
            guard let last = batch.last else { break }
            after = (last.createdAt.millis, last.id.rawValue)
            report.candidates += batch.count
            if dryRun {
                for (job, exists) in zip(batch, try await driver.exists(batch)) {
                    guard !exists else { report.present += 1; continue }
                    let state: JobState = job.state != .active ? job.state : job.attempts >= job.maxAttempts ? .dead : .pending
                    report.restored[state, default: 0] += 1
                }
            } else {
                for state in try await driver.restore(batch) {
                    if let state { report.restored[state, default: 0] += 1 } else { report.present += 1 }
                }
            }
        }
        logger.notice("Recovery \(dryRun ? "dry run" : "done")", metadata: [
            "recovery.candidates": "\(report.candidates)", "recovery.restored": "\(report.restoredTotal)", "recovery.present": "\(report.present)",
        ])
        return report
    }

    /// Journaled jobs Redis should hold, oldest first after `after`: their latest state, or their state
    /// as of `asOf` (from the last event at or before it). Spooled jobs are the spool's business.
    func candidates(asOf: Date?, after: (Int64, String)?, limit: Int) async throws -> [Job] {
        let states = Self.recoverable.map { "'\($0.rawValue)'" }.joined(separator: ",")
        let keyset = after == nil ? "" : "AND (j.createdAt > ? OR (j.createdAt = ? AND j.id > ?))"
        var arguments: [DatabaseValue] = []
        let sql: String
        if let asOf {
            sql = """
                SELECT j.*, e.state AS stateAt, e.attempt AS attemptAt FROM job j
                JOIN journalEvent e ON e.jobId = j.id
                  AND e.seq = (SELECT MAX(seq) FROM journalEvent WHERE jobId = j.id AND at <= ?)
                WHERE j.createdAt <= ? AND j.spooled = 0 AND e.state IN (\(states)) \(keyset)
                ORDER BY j.createdAt, j.id LIMIT \(limit)
                """
            arguments += [asOf.millis.databaseValue, asOf.millis.databaseValue]
        } else {
            sql = "SELECT j.* FROM job j WHERE j.state IN (\(states)) AND j.spooled = 0 \(keyset) ORDER BY j.createdAt, j.id LIMIT \(limit)"
        }
        if let after { arguments += [after.0.databaseValue, after.0.databaseValue, after.1.databaseValue] }
        let finalArguments = arguments
        let pointInTime = asOf != nil
        return try await journal.database.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(finalArguments)).compactMap { row -> Job? in
                guard var job = JournalReader.job(from: row) else { return nil }
                if pointInTime {
                    guard let state = JobState(rawValue: row["stateAt"]) else { return nil }
                    job.state = state
                    job.attempts = row["attemptAt"]  // seq stays the journal's latest, so new events follow it
                }
                return job
            }
        }
    }
}

/// Notices when Redis may have lost this deployment's data (its marker key is gone after FLUSHALL or a
/// restart without persistence, or names another Redis process after any restart, e.g. from an older
/// snapshot) and rebuilds what is missing from the journal. Checks at start and every `interval`.
public struct RecoveryService: Service {
    let recovery: Recovery
    let interval: Duration
    let logger: Logger

    public init(recovery: Recovery, interval: Duration = .seconds(2), logger: Logger) {
        self.recovery = recovery
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                if try await !recovery.driver.hasMarker() {
                    let jobs = try await recovery.journal.reader.size().jobs
                    if jobs > 0 {
                        logger.warning("Redis is new, restarted or emptied: restoring from the journal whatever it lacks")
                        _ = try await recovery.run(dryRun: false)
                    }
                    try await recovery.driver.setMarker()
                }
            } catch {
                logger.debug("Recovery check failed; trying again", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
