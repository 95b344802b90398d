import DocketQueue
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// Prunes finished jobs (and their events) older than the retention, in small batches so writers never wait long.
public struct JournalRetention: Service {
    let journal: Journal
    let retention: Duration
    let interval: Duration
    let logger: Logger

    public init(journal: Journal, retention: Duration, interval: Duration = .seconds(60), logger: Logger) {
        self.journal = journal
        self.retention = retention
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let pruned = try await prune(before: Date().addingTimeInterval(-Double(retention.milliseconds) / 1000))
                if pruned > 0 { logger.info("Pruned journal", metadata: ["jobs.pruned": "\(pruned)"]) }
            } catch {
                logger.warning("Journal pruning failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Deletes finished jobs older than `cutoff`, 500 per transaction; returns how many.
    @discardableResult
    public func prune(before cutoff: Date, batch: Int = 500) async throws -> Int {
        var total = 0
        while !Task.isCancelled {
            let n = try await journal.database.write { db -> Int in
                let ids = try String.fetchAll(
                    db, sql: "SELECT id FROM job WHERE finishedAt IS NOT NULL AND finishedAt < ? AND state IN ('completed', 'dead', 'cancelled') LIMIT ?",
                    arguments: [cutoff.millis, batch])
                for id in ids {
                    try db.execute(sql: "DELETE FROM journalEvent WHERE jobId = ?", arguments: [id])
                    try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id])
                }
                return ids.count
            }
            total += n
            if n < batch { break }
            await Task.yield()
        }
        return total
    }
}
