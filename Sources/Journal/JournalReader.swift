import DocketQueue
import Foundation
import GRDB

/// Reads the journal: jobs by id, their events, filtered listings and history stats.
public struct JournalReader: Sendable {
    let database: DatabasePool

    /// Filters for `list`; nil fields do not filter.
    public struct Filter: Sendable, Hashable {
        public var state: JobState?
        public var type: JobType?
        public var queue: QueueName?
        public var since: Date?
        public var until: Date?
        public var limit = 50
        /// From a previous page's `nextCursor`.
        public var cursor: String?
        /// Field matches on the payload or result (SPEC §9 `where`), all of which must hold.
        public var matches: [FieldMatch] = []
        /// The most jobs a search on fields without an index may read for one page (nil: no bound). When it reads
        /// that many without filling the page, the page ends there (`Page.scanLimited`, `nextCursor` goes on).
        public var scanLimit: Int?
        /// Only jobs whose definition the journal has (replay skips rows of jobs first met mid-life without one).
        public var definedOnly = false
        /// Leaves out the copies replay request `id` made (so a retried replay takes the same originals again).
        public var exceptReplaysBy: String?
        public init() {}
    }

    /// `where=/customer=42`: a JSON pointer into the payload (or `result/…` into the result) equal to a value, compared
    /// as JSON when it parses as JSON (`42`, `true`, `"x"`, `null`), else as a string.
    public struct FieldMatch: Sendable, Hashable {
        public enum Value: Sendable, Hashable { case integer(Int64), real(Double), text(String), bool(Bool), null }
        public var inResult: Bool
        /// The pointer as SQLite's JSON path (`$."customer"."id"`, `[0]` for an all-digit token).
        public var path: String
        public var value: Value
        /// As written: `/customer` or `result/status`.
        public var field: String

        public init(inResult: Bool, pointer: String, value: Value) {
            self.inResult = inResult
            self.value = value
            self.field = (inResult ? "result" : "") + pointer
            self.path = Self.path(pointer)
        }

        /// SQLite's JSON path for a JSON pointer.
        public static func path(_ pointer: String) -> String {
            var path = "$"
            for token in pointer.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
                let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                if !key.isEmpty, key.allSatisfy(\.isASCII), key.allSatisfy(\.isNumber), key.count < 10 {
                    path += "[\(key)]"
                } else {
                    path += ".\"" + key.replacingOccurrences(of: "\"", with: "\\\"") + "\""
                }
            }
            return path
        }

        /// The kind and value this match looks for in `jobField` (numbers are one kind; true, false, null are
        /// kinds with the value 1 or 0).
        var indexKey: (kind: String, value: DatabaseValue) {
            switch value {
            case .null: return ("null", 0.databaseValue)
            case .bool(let b): return (b ? "true" : "false", (b ? 1 : 0).databaseValue)
            case .integer(let n): return ("number", n.databaseValue)
            case .real(let d): return ("number", d.databaseValue)
            case .text(let s): return ("text", s.databaseValue)
            }
        }

        /// The SQL condition on the job row (`j`) and its arguments: what a search without an index runs.
        /// The value test comes first: it fails for most rows, and SQLite then skips the type test (each JSON function
        /// parses the document again).
        var sql: (String, [DatabaseValue]) {
            let column = inResult ? "j.result" : "j.payload"
            let p = path.databaseValue
            switch value {
            case .null: return ("json_type(\(column), ?) = 'null'", [p])
            case .bool(let b): return ("json_type(\(column), ?) = '\(b ? "true" : "false")'", [p])
            case .integer(let n): return ("(json_extract(\(column), ?) = ? AND json_type(\(column), ?) IN ('integer', 'real'))", [p, n.databaseValue, p])
            case .real(let d): return ("(json_extract(\(column), ?) = ? AND json_type(\(column), ?) IN ('integer', 'real'))", [p, d.databaseValue, p])
            case .text(let s): return ("(json_extract(\(column), ?) = ? AND json_type(\(column), ?) = 'text')", [p, s.databaseValue, p])
            }
        }
    }

    public struct Page: Sendable {
        public var jobs: [Job]
        public var nextCursor: String?
        /// The search read `Filter.scanLimit` jobs without filling the page: `nextCursor` is where it stopped.
        public var scanLimited = false
        /// Jobs read by a search on fields without an index (nil when an index answered).
        public var scanned: Int?
    }

    public func job(_ id: JobID) async throws -> Job? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.jobColumns) FROM job WHERE id = ?", arguments: [id.rawValue]).flatMap(Self.job(from:))
        }
    }

    /// The job's whole history, by seq.
    public func events(_ id: JobID) async throws -> [JournalEvent] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT \(JournalEvent.columns) FROM journalEvent WHERE jobId = ? ORDER BY seq", arguments: [id.rawValue])
                .map(JournalEvent.init(row:))
        }
    }

    /// How a filtered listing runs: through a declared field's index, by reading jobs and testing their fields
    /// (bounded by `scanLimit`), or on the job table's own indexes.
    struct Plan {
        enum Mode { case indexed, scan, plain }
        var mode: Mode
        /// Conditions on the job row (alias `j.`), without the `where` matches a scan tests per row.
        var conditions: [String] = []
        var arguments: [DatabaseValue] = []
        /// The matches to test per row (scan mode), as one SQL expression.
        var test = "1"
        var testArguments: [DatabaseValue] = []
        /// The ordering columns: `f.` for an indexed search, `j.` otherwise.
        var order: String
    }

    func plan(_ filter: Filter, _ db: Database) throws -> Plan {
        // Declared fields whose index is complete; any other field is matched by reading the payload.
        var ready = [String: Int64]()
        if !filter.matches.isEmpty {
            for row in try Row.fetchAll(db, sql: "SELECT id, inResult, path FROM indexField WHERE state = 'ready'") {
                ready["\(row[1] as Int):\(row[2] as String)"] = row[0]
            }
        }
        let driver = filter.matches.firstIndex { ready["\($0.inResult ? 1 : 0):\($0.path)"] != nil }
        var plan = Plan(mode: driver != nil ? .indexed : filter.matches.isEmpty ? .plain : .scan, order: driver != nil ? "f" : "j")
        let o = plan.order
        if let driver {
            let match = filter.matches[driver]
            let key = match.indexKey
            plan.conditions.append("f.fieldId = ? AND f.kind = ? AND f.value = ?")
            plan.arguments += [ready["\(match.inResult ? 1 : 0):\(match.path)"]!.databaseValue, key.kind.databaseValue, key.value]
        }
        if filter.definedOnly { plan.conditions.append("j.defined = 1") }
        if let request = filter.exceptReplaysBy {
            plan.conditions.append("(j.replayOf IS NULL OR j.idempotencyKey IS NOT 'replay:' || ? || ':' || j.replayOf)")
            plan.arguments.append(request.databaseValue)
        }
        if let state = filter.state { plan.conditions.append("j.state = ?"); plan.arguments.append(state.rawValue.databaseValue) }
        if let type = filter.type { plan.conditions.append("j.type = ?"); plan.arguments.append(type.rawValue.databaseValue) }
        if let queue = filter.queue { plan.conditions.append("j.queue = ?"); plan.arguments.append(queue.rawValue.databaseValue) }
        if let since = filter.since { plan.conditions.append("\(o).createdAt >= ?"); plan.arguments.append(since.millis.databaseValue) }
        if let until = filter.until { plan.conditions.append("\(o).createdAt < ?"); plan.arguments.append(until.millis.databaseValue) }
        var tests = [String]()
        for (i, match) in filter.matches.enumerated() where i != driver {
            let (condition, values) = match.sql
            if plan.mode == .scan {
                tests.append(condition)
                plan.testArguments += values
            } else {
                plan.conditions.append(condition)
                plan.arguments += values
            }
        }
        if !tests.isEmpty { plan.test = tests.joined(separator: " AND ") }
        if let cursor = filter.cursor {
            let (at, id) = try Self.decodeCursor(cursor)
            let idColumn = o == "f" ? "f.jobId" : "j.id"
            // `createdAt <= at` is what SQLite can start an index range at; with only the OR, it read the index from the
            // newest job on, so each page cost as much as all the pages before it.
            plan.conditions.append("\(o).createdAt <= ? AND (\(o).createdAt < ? OR \(idColumn) < ?)")
            plan.arguments += [at.databaseValue, at.databaseValue, id.databaseValue]
        }
        return plan
    }

    static func from(_ plan: Plan) -> String {
        (plan.mode == .indexed ? " FROM jobField f CROSS JOIN job j ON j.id = f.jobId" : " FROM job j")
            + (plan.conditions.isEmpty ? "" : " WHERE " + plan.conditions.joined(separator: " AND "))
    }

    /// Jobs newest first (by creation time, then id), keyset-paginated: a page never repeats or skips
    /// a job, even while new jobs are being journaled. A `where` on a declared field walks its index; on any
    /// other field it reads jobs (those the other filters leave, newest first) up to `scanLimit`.
    public func list(_ filter: Filter) async throws -> Page {
        let (jobs, next, limited, scanned) = try await page(filter, limit: max(1, min(filter.limit, 1000)), select: Self.columns("j"), Self.job(from:))
        return Page(jobs: jobs, nextCursor: next, scanLimited: limited, scanned: scanned)
    }

    /// One page of what `filter` matches, newest first: `select` (columns of `job j`) decoded per row by `decode`.
    /// Returns the items, the position after the last (or, when the scan bound stopped it, after the last job read),
    /// whether the bound stopped it, and how many jobs a scan read.
    private func page<T: Sendable>(_ filter: Filter, limit: Int, select: String, _ decode: @escaping @Sendable (Row) -> T?) async throws
        -> ([T], String?, Bool, Int?)
    {
        try await database.read { db in
            let plan = try plan(filter, db)
            let order = plan.order == "f" ? " ORDER BY f.createdAt DESC, f.jobId DESC" : " ORDER BY j.createdAt DESC, j.id DESC"
            // Each row ends with its position (createdAt, id) and, in a scan, whether the matches hold.
            let bound = plan.mode == .scan ? filter.scanLimit ?? Int.max : Int.max
            let sql = "SELECT \(select), j.createdAt AS pAt, j.id AS pId" + (plan.mode == .scan ? ", (\(plan.test)) AS hit" : "")
                + Self.from(plan) + order + " LIMIT \(plan.mode == .scan ? (bound == Int.max ? -1 : bound + 1) : limit + 1)"
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: StatementArguments(plan.testArguments + plan.arguments))
            var items = [T](), scanned = 0
            var last: String?, lastItem: String?
            while let row = try cursor.next() {
                if scanned == bound {
                    // More rows remain past the bound: the page ends at the last row read.
                    return (items, last, true, scanned)
                }
                scanned += 1
                let position = Self.encodeCursor(at: row["pAt"], id: row["pId"])
                last = position
                if plan.mode == .scan, row["hit"] as Bool? != true { continue }
                if items.count == limit { return (items, lastItem, false, plan.mode == .scan ? scanned : nil) }
                if let item = decode(row) {
                    items.append(item)
                    lastItem = position
                }
            }
            return (items, nil, false, plan.mode == .scan ? scanned : nil)
        }
    }

    /// How many jobs `filter` matches (ignoring its `limit`). A count on fields without an index reads at most
    /// `scanLimit` jobs, else throws `scanLimit`.
    public func count(_ filter: Filter) async throws -> Int {
        try await database.read { db in
            let plan = try plan(filter, db)
            if plan.mode != .scan {
                return try Int.fetchOne(db, sql: "SELECT COUNT(*)" + Self.from(plan), arguments: StatementArguments(plan.arguments)) ?? 0
            }
            let bound = filter.scanLimit.map { " LIMIT \($0 + 1)" } ?? ""
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), TOTAL(hit) FROM (SELECT (\(plan.test)) AS hit" + Self.from(plan) + bound + ")",
                                       arguments: StatementArguments(plan.testArguments + plan.arguments))
            let scanned: Int = row?[0] ?? 0
            if let limit = filter.scanLimit, scanned > limit { throw Self.scanLimitError(filter, limit) }
            return Int(row?[1] as Double? ?? 0)
        }
    }

    /// What a search that hit the scan bound tells its caller.
    public static func scanLimitError(_ filter: Filter, _ limit: Int) -> JournalError {
        let fields = filter.matches.map(\.field).joined(separator: ", ")
        return JournalError(.scanLimit, message: """
            \(fields) has no index, and this search would read more than \(limit) jobs (the scan limit); narrow it with \
            since/until, queue, type or state, declare the field with --index-field, or raise --scan-limit
            """)
    }

    /// The copies replay request `requestID` made of any of `originals`: original → copy.
    public func replays(requestID: String, of originals: [JobID]) async throws -> [JobID: JobID] {
        if originals.isEmpty { return [:] }
        return try await database.read { db in
            var found = [JobID: JobID]()
            for start in stride(from: 0, to: originals.count, by: 500) {
                let chunk = originals[start..<min(start + 500, originals.count)]
                let sql = "SELECT replayOf, id FROM job WHERE replayOf IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ","))) "
                    + "AND idempotencyKey = 'replay:' || ? || ':' || replayOf"
                for row in try Row.fetchAll(db, sql: sql, arguments: StatementArguments(chunk.map(\.rawValue) + [requestID])) {
                    if let original = JobID(rawValue: row[0]), let copy = JobID(rawValue: row[1]) { found[original] = copy }
                }
            }
            return found
        }
    }

    /// Jobs accepted while Redis was unreachable (or fenced), oldest first. A job with any event past its
    /// write-ahead one has reached Redis already.
    public func spooled(limit: Int, olderThan age: Duration = .zero) async throws -> [Job] {
        let cutoff = Date().millis - age.milliseconds
        return try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.jobColumns) FROM job WHERE spooled = 1 AND lastSeq <= 1 AND createdAt <= ? ORDER BY createdAt, id LIMIT ?",
                             arguments: [cutoff, limit]).compactMap(Self.job(from:))
        }
    }

    /// True when the journal file answers a query (cheap, for health checks).
    public func ping() async -> Bool {
        (try? await database.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
    }

    /// Whether the journal holds any job.
    public func hasJobs() async throws -> Bool {
        try await database.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM job)") ?? false }
    }

    /// Every queue the journal has seen a job in.
    public func queues() async throws -> [QueueName] {
        try await database.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT queue FROM job").compactMap(QueueName.init(rawValue:))
        }
    }

    /// Which of `ids` the journal knows in full (type and payload).
    public func definedJobs(_ ids: [JobID]) async throws -> Set<JobID> {
        if ids.isEmpty { return [] }
        return try await database.read { db in
            var found = Set<JobID>()
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = ids[start..<min(start + 500, ids.count)]
                let sql = "SELECT id FROM job WHERE defined = 1 AND id IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ",")))"
                for id in try String.fetchAll(db, sql: sql, arguments: StatementArguments(chunk.map(\.rawValue))) {
                    if let id = JobID(rawValue: id) { found.insert(id) }
                }
            }
            return found
        }
    }

    /// The first job enqueued to `queue` with `key` since `since` (the idempotency window), if any.
    public func job(idempotencyKey key: String, queue: QueueName, since: Date) async throws -> Job? {
        try await database.read { db in
            try Row.fetchOne(db, sql: """
                SELECT \(Self.jobColumns) FROM job WHERE queue = ? AND idempotencyKey = ? AND createdAt >= ? ORDER BY createdAt, id LIMIT 1
                """, arguments: [queue.rawValue, key, since.millis]).flatMap(Self.job(from:))
        }
    }

    /// The journal's rows for those of `ids` it has finished (completed, cancelled, purged).
    public func finished(_ ids: [JobID]) async throws -> [Job] {
        try await rows(ids, where: "state IN ('completed', 'cancelled', 'purged')")
    }

    private func rows(_ ids: [JobID], where condition: String) async throws -> [Job] {
        if ids.isEmpty { return [] }
        return try await database.read { db in
            var jobs = [Job]()
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = ids[start..<min(start + 500, ids.count)]
                let sql = "SELECT \(Self.jobColumns) FROM job WHERE \(condition) AND id IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ",")))"
                jobs += try Row.fetchAll(db, sql: sql, arguments: StatementArguments(chunk.map(\.rawValue))).compactMap(Self.job(from:))
            }
            return jobs
        }
    }

    /// Events kept as conflicts for a job: same (job, seq) as a journaled event, other content.
    public func conflicts(_ id: JobID) async throws -> [JournalEvent] {
        try await database.read { db in
            // In the columns of `JournalEvent.columns` (a conflict keeps no type, actor or run time).
            try Row.fetchAll(db, sql: """
                SELECT jobId, seq, at, event, state, attempt, queue, NULL, worker, error, NULL, detail, NULL FROM journalConflict
                WHERE jobId = ? ORDER BY seq, recordedAt
                """, arguments: [id.rawValue])
                .map(JournalEvent.init(row:))
        }
    }

    /// Conflicting events recorded in this journal.
    public func conflictCount() async throws -> Int {
        try await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journalConflict") ?? 0 }
    }

    /// The stream id this journal has committed for each queue.
    public func cursors() async throws -> [QueueName: String] {
        try await database.read { db in
            var result = [QueueName: String]()
            for row in try Row.fetchAll(db, sql: "SELECT queue, lastId FROM streamCursor") {
                if let q = QueueName(rawValue: row["queue"]) { result[q] = row["lastId"] }
            }
            return result
        }
    }

    // MARK: Stats

    public enum Bucket: String, Sendable, CaseIterable {
        case minute = "1m", hour = "1h", day = "1d"
        var millis: Int64 { self == .minute ? 60_000 : self == .hour ? 3_600_000 : 86_400_000 }
    }

    /// One bucket of history: counts of events and attempt run times.
    public struct BucketStats: Sendable, Hashable, Codable {
        public var start: Date
        public var enqueued = 0, completed = 0, failed = 0, dead = 0
        public var p50RunMs: Int64?
        public var p95RunMs: Int64?
    }

    /// Per-bucket counts of enqueued, completed, failed (attempts) and dead jobs, and p50/p95 run time.
    public func stats(since: Date, until: Date, bucket: Bucket, queue: QueueName? = nil, type: JobType? = nil) async throws -> [BucketStats] {
        var filter = "at >= ? AND at < ?"
        var arguments = [since.millis.databaseValue, until.millis.databaseValue]
        if let queue { filter += " AND queue = ?"; arguments.append(queue.rawValue.databaseValue) }
        if let type { filter += " AND type = ?"; arguments.append(type.rawValue.databaseValue) }
        let b = "(at / \(bucket.millis)) * \(bucket.millis)"
        // Counts are aggregated by SQLite; run times come back as bare integers for the percentiles.
        let countsSQL = """
            SELECT \(b), event, COUNT(*) FROM journalEvent
            WHERE \(filter) AND event IN ('enqueued', 'completed', 'failed', 'lease_expired', 'dead') GROUP BY 1, 2
            """
        // Percentiles by SQL, per bucket: only the two run times at the p50 and p95 ranks of each bucket come back,
        // not every run time of the range (SQLite's sorter holds them, spilling to disk if it must).
        let runsSQL = """
            SELECT start, runMs, rank, n FROM (
              SELECT \(b) AS start, runMs, ROW_NUMBER() OVER (PARTITION BY \(b) ORDER BY runMs) - 1 AS rank,
                COUNT(*) OVER (PARTITION BY \(b)) AS n
              FROM journalEvent WHERE \(filter) AND runMs IS NOT NULL)
            WHERE rank = MIN(n - 1, n / 2) OR rank = MIN(n - 1, CAST(n * 0.95 AS INTEGER))
            """
        let finalArguments = arguments
        return try await database.read { db in
            var buckets = [Int64: BucketStats]()
            let args = StatementArguments(finalArguments)
            for row in try Row.fetchAll(db, sql: countsSQL, arguments: args) {
                let start: Int64 = row[0]
                let n: Int = row[2]
                var stats = buckets[start] ?? BucketStats(start: Date(millis: start))
                switch row[1] as String {
                case "enqueued": stats.enqueued += n
                case "completed": stats.completed += n
                case "dead": stats.dead += n
                default: stats.failed += n
                }
                buckets[start] = stats
            }
            for row in try Row.fetchAll(db, sql: runsSQL, arguments: args) {
                let start: Int64 = row[0], runMs: Int64 = row[1], rank: Int = row[2], n: Int = row[3]
                var stats = buckets[start] ?? BucketStats(start: Date(millis: start))
                if rank == min(n - 1, n / 2) { stats.p50RunMs = runMs }
                if rank == min(n - 1, Int(Double(n) * 0.95)) { stats.p95RunMs = runMs }
                buckets[start] = stats
            }
            return buckets.keys.sorted().map { buckets[$0]! }
        }
    }

    /// The journal's size on disk and its row counts.
    public func size() async throws -> (bytes: Int64, jobs: Int, events: Int) {
        try await database.read { db in
            let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            let jobs = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") ?? 0
            let events = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM journalEvent") ?? 0
            return (pages * pageSize, jobs, events)
        }
    }

    // MARK: Codecs

    /// The `job` columns `job(from:)` decodes, in its order (by index: a name lookup per column per row is
    /// most of the cost of reading many jobs). `alias` prefixes each (`j.id, …`).
    static func columns(_ alias: String = "") -> String {
        ["id", "type", "queue", "payload", "priority", "maxAttempts", "timeoutMs", "backoffBaseMs", "backoffMaxMs", "runAt",
         "idempotencyKey", "state", "attempts", "createdAt", "updatedAt", "startedAt", "finishedAt", "lastError", "result",
         "progress", "lastSeq", "uniqueKey", "uniqueWhile", "replayOf"].map { alias.isEmpty ? $0 : "\(alias).\($0)" }.joined(separator: ", ")
    }
    static let jobColumns = columns()

    /// A job from a row that starts with `columns()`.
    static func job(from row: Row) -> Job? {
        guard let id = JobID(rawValue: row[0]), let type = JobType(rawValue: row[1]), let queue = QueueName(rawValue: row[2]),
            let state = JobState(rawValue: row[11])
        else { return nil }
        func date(_ index: Int) -> Date? { (row[index] as Int64?).map(Date.init(millis:)) }
        var job = Job(
            id: id, type: type, payload: row[3], queue: queue, priority: Priority(rawValue: row[4]) ?? .normal,
            maxAttempts: row[5], timeout: .milliseconds(row[6] as Int64),
            backoff: Backoff(base: .milliseconds(row[7] as Int64), max: .milliseconds(row[8] as Int64)),
            runAt: date(9), idempotencyKey: row[10], createdAt: Date(millis: row[13]))
        job.state = state
        job.attempts = row[12]
        job.updatedAt = Date(millis: row[14])
        job.startedAt = date(15)
        job.finishedAt = date(16)
        job.lastError = row[17]
        job.result = row[18]
        job.progress = row[19]
        job.seq = row[20]
        if let key = row[21] as String? { job.unique = UniqueKey(key: key, while: (row[22] as String?).flatMap(UniqueKey.While.init(rawValue:)) ?? .untilComplete) }
        job.replayOf = (row[23] as String?).flatMap(JobID.init(rawValue:))
        return job
    }

    /// A page's position: `<createdAt ms>:<job id>`, plain text, so any text of that shape is a position to start
    /// from (what the OpenAPI document says a cursor is).
    static func encodeCursor(at: Int64, id: String) -> String { "\(at):\(id)" }

    /// Whether `cursor` is a position `<ms>:<job id>` (what `list` and `exportPage` accept).
    public static func isCursor(_ cursor: String) -> Bool { (try? decodeCursor(cursor)) != nil }

    static func decodeCursor(_ cursor: String) throws -> (Int64, String) {
        guard let colon = cursor.firstIndex(of: ":"), let at = Int64(cursor[..<colon]), at >= 0,
            JobID(rawValue: String(cursor[cursor.index(after: colon)...])) != nil
        else { throw JournalError(.invalidCursor, message: "cursor \"\(cursor.prefix(100))\" is not a position (<ms>:<job id>)") }
        return (at, String(cursor[cursor.index(after: colon)...]))
    }
}

extension JournalReader {
    /// Every schedule this journal knows that is not deleted, with its last fired tick (recovery sets them back).
    public func schedules() async throws -> [(schedule: Schedule, lastTick: Date?)] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT definition, lastTick FROM schedule WHERE deletedAt IS NULL ORDER BY name").compactMap { row in
                let text: String = row["definition"]
                guard let schedule = try? JSONDecoder().decode(Schedule.self, from: Data(text.utf8)) else { return nil }
                let tick: Int64? = row["lastTick"]
                return (schedule, tick.map { Date(millis: $0) })
            }
        }
    }

    /// A schedule's history, newest first: changes of definition, fired ticks (with their jobs) and skipped ones.
    public func scheduleEvents(_ name: String, limit: Int = 100, before: Date? = nil) async throws -> [ScheduleEvent] {
        try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT name, at, event, tick, jobId, detail FROM scheduleEvent WHERE name = ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?
                """, arguments: [name, (before ?? .distantFuture).millis, limit]).map { row in
                let tick: Int64? = row["tick"]
                return ScheduleEvent(name: row["name"], at: Date(millis: row["at"]), event: row["event"], tick: tick.map { Date(millis: $0) },
                                     jobID: row["jobId"], detail: row["detail"])
            }
        }
    }
}

extension JournalReader {
    /// Every limit this journal knows that is not deleted (recovery sets them back).
    public func limits() async throws -> [Limit] {
        try await database.read { db in
            try String.fetchAll(db, sql: "SELECT definition FROM limitRule WHERE deletedAt IS NULL ORDER BY name").compactMap {
                try? JSONDecoder().decode(Limit.self, from: Data($0.utf8))
            }
        }
    }
}

extension JournalReader {
    /// The histories of several jobs (one query), by job, each by seq.
    public func events(of ids: [JobID]) async throws -> [JobID: [JournalEvent]] {
        if ids.isEmpty { return [:] }
        return try await database.read { db in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
            let rows = try Row.fetchAll(db, sql: "SELECT \(JournalEvent.columns) FROM journalEvent WHERE jobId IN (\(marks)) ORDER BY jobId, seq",
                                        arguments: StatementArguments(ids.map(\.rawValue)))
            return Dictionary(grouping: rows.map(JournalEvent.init(row:)), by: \.jobID)
        }
    }
}
