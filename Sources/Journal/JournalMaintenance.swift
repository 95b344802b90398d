import DocketQueue
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// Returns the journal's free pages (left by retention) to the file system with `PRAGMA incremental_vacuum`, every
/// `interval`, in steps that hold the writer about 10 ms (`WriterSlices`): ingestion waits at most about one step. A journal created before Docket
/// used incremental vacuum reuses its free pages but never shrinks until `docket journal vacuum` converts it.
public struct JournalVacuum: Service {
    let journal: Journal
    let interval: Duration
    /// Free pages left alone (reused by the next writes anyway).
    let keep: Int
    let step: Int
    let logger: Logger

    public init(journal: Journal, interval: Duration = .seconds(600), keep: Int = 1024, step: Int = 256, logger: Logger) {
        self.journal = journal
        self.interval = interval
        self.keep = keep
        self.step = step
        self.logger = logger
    }

    public func run() async {
        if interval <= .zero {
            try? await gracefulShutdown()
            return
        }
        var warned = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
            do {
                guard try await Self.incremental(journal) else {
                    if !warned { logger.notice("The journal predates incremental vacuum; free pages are reused but the file never shrinks (run docket journal vacuum once, with the server stopped)") }
                    warned = true
                    continue
                }
                let freed = try await vacuum()
                if freed > 0 { logger.info("Returned free journal pages to the file system", metadata: ["pages": "\(freed)"]) }
            } catch {
                logger.warning("Journal vacuum failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Whether the journal file uses incremental auto-vacuum.
    public static func incremental(_ journal: Journal) async throws -> Bool {
        try await journal.database.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") == 2 }
    }

    /// Pages free in the file now.
    public static func freePages(_ journal: Journal) async throws -> Int {
        try await journal.database.read { db in try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0 }
    }

    /// Frees pages until at most `keep` are free; returns how many it freed.
    @discardableResult
    public func vacuum() async throws -> Int {
        var freed = 0
        try await WriterSlices.run(start: step, range: 16...8192) { size in
            let free = try await journal.database.read { db in try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0 }
            guard free > keep else { return false }
            let n = min(size, free - keep)
            try await journal.database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum(\(n))") }
            freed += n
            return true
        }
        // The freed pages left the file; the WAL that carried the change goes back to empty (when no reader holds it).
        if freed > 0 { try? await journal.database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") } }
        return freed
    }

    /// Rewrites the whole file (`VACUUM`), converting it to incremental auto-vacuum: every writer waits meanwhile, so
    /// `docket journal vacuum` is meant for a stopped server.
    public static func full(_ journal: Journal) async throws {
        try await journal.database.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            try db.execute(sql: "VACUUM")
        }
    }
}

/// What `docket journal stats` shows: the file, its rows, and per queue its jobs and oldest event.
public struct JournalStats: Sendable, Codable {
    public struct QueueStats: Sendable, Codable {
        public var queue: String
        public var jobs: Int
        public var events: Int
        /// The queue's oldest and newest event still journaled (ms).
        public var oldestEvent: Int64?
        public var newestEvent: Int64?
    }
    public struct Field: Sendable, Codable {
        public var field: String
        public var state: String
        public var rows: Int
        /// Share of the jobs older than the declaration indexed so far.
        public var built: Double
    }
    public var path: String
    /// The file, its WAL and shared-memory files.
    public var bytes: Int64
    public var pageSize: Int
    public var pages: Int
    public var freePages: Int
    public var autoVacuum: String
    public var jobs: Int
    public var events: Int
    public var conflicts: Int
    public var fieldRows: Int
    /// Bytes per table and index, when SQLite has the `dbstat` table.
    public var tableBytes: [String: Int64]?
    public var queues: [QueueStats]
    public var fields: [Field]

    public static func read(_ journal: Journal, tables: Bool = true) async throws -> JournalStats {
        let fileBytes = ["", "-wal", "-shm"].reduce(Int64(0)) { sum, suffix in
            sum + ((try? FileManager.default.attributesOfItem(atPath: journal.path + suffix)[.size] as? NSNumber)?.int64Value ?? 0)
        }
        let fields = try await FieldIndexer.status(journal)
        return try await journal.database.read { db in
            var events = [String: (Int, Int64?, Int64?)]()
            for row in try Row.fetchAll(db, sql: "SELECT queue, COUNT(*), MIN(at), MAX(at) FROM journalEvent GROUP BY queue") {
                events[row[0]] = (row[1], row[2], row[3])
            }
            let queues = try Row.fetchAll(db, sql: "SELECT queue, COUNT(*) FROM job GROUP BY queue").map { row -> QueueStats in
                let name: String = row[0]
                let e = events[name]
                return QueueStats(queue: name, jobs: row[1], events: e?.0 ?? 0, oldestEvent: e?.1, newestEvent: e?.2)
            }
            let count = { (table: String) in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
            var tableBytes: [String: Int64]?
            if tables, let rows = try? Row.fetchAll(db, sql: "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name") {
                tableBytes = Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as String, $0[1] as Int64) })
            }
            let mode = try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? 0
            return JournalStats(
                path: journal.path, bytes: fileBytes, pageSize: try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0,
                pages: try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0, freePages: try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0,
                autoVacuum: mode == 2 ? "incremental" : mode == 1 ? "full" : "none",
                jobs: try count("job"), events: events.values.reduce(0) { $0 + $1.0 }, conflicts: try count("journalConflict"),
                fieldRows: try count("jobField"), tableBytes: tableBytes,
                queues: queues.sorted { $0.queue < $1.queue },
                fields: fields.map { Field(field: $0.spec, state: $0.state, rows: $0.rows, built: $0.target == 0 ? 1 : Double($0.built) / Double($0.target)) })
        }
    }
}
