import DocketQueue
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// Prunes finished jobs (and their events) older than the retention, in batches that hold the writer about 10 ms
/// (`WriterSlices`), so ingestion and enqueues never wait long.
/// `rules` keep the jobs of a queue or type (by name) for their own time instead; a job several rules match is kept
/// for the longest of them.
public struct JournalRetention: Service {
    let journal: Journal
    let retention: Duration
    let rules: [String: Duration]
    let interval: Duration
    let logger: Logger

    public init(journal: Journal, retention: Duration, rules: [String: Duration] = [:], interval: Duration = .seconds(60), logger: Logger) {
        self.journal = journal
        self.retention = retention
        self.rules = rules
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let pruned = try await prune(now: Date())
                if pruned > 0 { logger.info("Pruned journal", metadata: ["jobs.pruned": "\(pruned)"]) }
            } catch {
                logger.warning("Journal pruning failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Deletes finished jobs older than `cutoff` (ignoring `rules`), `batch` per transaction at first; returns how many.
    @discardableResult
    public func prune(before cutoff: Date, batch: Int = 100) async throws -> Int {
        try await prune(now: cutoff.addingTimeInterval(Double(retention.milliseconds) / 1000), rules: [:], batch: batch)
    }

    /// Deletes finished jobs older than their retention at `now` (the rule of their queue or type, else the default).
    @discardableResult
    public func prune(now: Date, batch: Int = 100) async throws -> Int {
        try await prune(now: now, rules: rules, batch: batch)
    }

    private func prune(now: Date, rules: [String: Duration], batch: Int) async throws -> Int {
        // Each job's retention in ms: the longest rule matching its queue or type, else the default.
        var keep = "CASE WHEN 1 = 0 THEN 0"
        var arguments = [DatabaseValue]()
        let names = rules.keys.sorted()
        for name in names {
            keep += " WHEN queue = ? OR type = ? THEN ?"
            arguments += [name.databaseValue, name.databaseValue, rules[name]!.milliseconds.databaseValue]
        }
        keep += " ELSE ? END"
        arguments.append(retention.milliseconds.databaseValue)
        // A job two rules match (its queue's and its type's): kept for the longer.
        if names.count > 1 {
            keep = "max(\(keep)" + names.map { _ in ", CASE WHEN queue = ? OR type = ? THEN ? ELSE 0 END" }.joined() + ")"
            for name in names { arguments += [name.databaseValue, name.databaseValue, rules[name]!.milliseconds.databaseValue] }
        }
        let sql = "SELECT id FROM job WHERE finishedAt IS NOT NULL AND state IN ('completed', 'dead', 'cancelled') AND finishedAt < ? - (\(keep)) LIMIT ?"
        var total = 0
        try await WriterSlices.run(start: batch, range: 10...5000) { size in
            let values = StatementArguments([now.millis.databaseValue] + arguments + [size.databaseValue])
            let n = try await journal.database.write { db -> Int in
                let ids = try String.fetchAll(db, sql: sql, arguments: values)
                for id in ids {
                    try db.execute(sql: "DELETE FROM journalEvent WHERE jobId = ?", arguments: [id])
                    try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id])
                }
                return ids.count
            }
            total += n
            return n == size
        }
        return total
    }
}
