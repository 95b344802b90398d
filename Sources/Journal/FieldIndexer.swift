import DocketQueue
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// Keeps the journal's field indexes (`--index-field`) in line with the declared fields, without ever holding the
/// writer for long: a newly declared field is built from the jobs older than its declaration a chunk per short
/// transaction (the `job_field_*` triggers index every newer job as it is written), and a field no longer declared
/// has its rows deleted the same way. Searches use a field's index once it is `ready`; until then they read payloads.
public struct FieldIndexer: Service {
    /// A declared field: `/customer` (payload) or `result/status` (result).
    public struct Field: Sendable, Hashable {
        public let spec: String
        public let inResult: Bool
        public let path: String

        /// Parses `/pointer` or `result/pointer`; nil for anything else.
        public init?(_ spec: String) {
            let inResult = spec.hasPrefix("result/")
            let pointer = inResult ? String(spec.dropFirst("result".count)) : spec
            guard pointer.hasPrefix("/"), pointer.count > 1, spec.utf8.count <= 512 else { return nil }
            self.spec = spec
            self.inResult = inResult
            self.path = JournalReader.FieldMatch.path(pointer)
        }
    }

    /// One field's index as the journal has it.
    public struct Status: Sendable, Hashable {
        public var spec: String
        /// building, ready or dropping.
        public var state: String
        /// Jobs older than the declaration indexed so far, of how many.
        public var built: Int64
        public var target: Int64
        public var rows: Int
    }

    let journal: Journal
    let fields: [Field]
    /// Jobs per transaction at first; `run` then sizes chunks to about `slice` each.
    let chunk: Int
    let slice: Duration
    let logger: Logger

    public init(journal: Journal, fields: [Field], chunk: Int = 1000, slice: Duration = .milliseconds(10), logger: Logger) {
        self.journal = journal
        self.fields = fields
        self.chunk = chunk
        self.slice = slice
        self.logger = logger
    }

    /// Builds and drops in chunks that hold the writer about `slice` each, then leaves it free as long again: other
    /// writes (ingestion, enqueues) wait at most about one slice.
    public func run() async {
        do {
            try await declare()
            try await WriterSlices.run(start: chunk, range: 100...50_000, slice: slice) { try await step($0) }
        } catch {
            logger.warning("Field index maintenance stopped", metadata: ["error": "\(error)"])
        }
    }

    /// Declares the fields not yet in the journal (to be built) and marks those no longer declared for dropping.
    public func declare() async throws {
        let declared = Set(fields.map(\.spec))
        let (added, dropped) = try await journal.database.write { db -> ([String], [String]) in
            let known = try String.fetchAll(db, sql: "SELECT spec FROM indexField WHERE state != 'dropping'")
            var added = [String]()
            for field in fields where !known.contains(field.spec) {
                // Rows up to the current last rowid are built in the background; newer ones by the triggers.
                try db.execute(sql: """
                    INSERT INTO indexField (spec, inResult, path, state, target, builtThrough, createdAt)
                    VALUES (?, ?, ?, 'building', (SELECT IFNULL(MAX(rowid), 0) FROM job), 0, ?)
                    ON CONFLICT(spec) DO UPDATE SET state = 'building', target = excluded.target, builtThrough = 0
                    """, arguments: [field.spec, field.inResult ? 1 : 0, field.path, Date().millis])
                added.append(field.spec)
            }
            let dropped = known.filter { !declared.contains($0) }
            for spec in dropped {
                // Renamed out of the way, so the spec can be declared again while the old rows go.
                try db.execute(sql: "UPDATE indexField SET state = 'dropping', spec = spec || ' (dropped ' || id || ')' WHERE spec = ?", arguments: [spec])
            }
            return (added, dropped)
        }
        for spec in added { logger.info("Building the journal's index of a field", metadata: ["field": "\(spec)"]) }
        for spec in dropped { logger.info("Dropping the journal's index of a field no longer declared", metadata: ["field": "\(spec)"]) }
    }

    /// One chunk of work (building or dropping `size` jobs' rows, default `chunk`); false when there is nothing left.
    @discardableResult
    public func step(_ size: Int? = nil) async throws -> Bool {
        let chunk = size ?? self.chunk
        let (worked, ready) = try await journal.database.write { db -> (Bool, String?) in
            if let row = try Row.fetchOne(db, sql: "SELECT id FROM indexField WHERE state = 'dropping' LIMIT 1") {
                let id: Int64 = row[0]
                try db.execute(sql: """
                    DELETE FROM jobField WHERE (fieldId, kind, value, createdAt, jobId) IN
                      (SELECT fieldId, kind, value, createdAt, jobId FROM jobField WHERE fieldId = ? LIMIT ?)
                    """, arguments: [id, chunk])
                if db.changesCount < chunk { try db.execute(sql: "DELETE FROM indexField WHERE id = ?", arguments: [id]) }
                return (true, nil)
            }
            guard let row = try Row.fetchOne(db, sql: "SELECT id, inResult, path, target, builtThrough, spec FROM indexField WHERE state = 'building' LIMIT 1")
            else { return (false, nil) }
            let id: Int64 = row[0], inResult: Bool = row[1], path: String = row[2], target: Int64 = row[3], from: Int64 = row[4]
            let through = min(target, from + Int64(chunk))
            // The same rows the triggers write (see 0006_history.sql), for the jobs in (from, through].
            try db.execute(sql: """
                INSERT OR IGNORE INTO jobField (fieldId, kind, value, createdAt, jobId)
                SELECT ?, CASE t WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' ELSE t END,
                    CASE t WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0 ELSE json_extract(doc, ?) END, createdAt, id
                FROM (SELECT id, createdAt, doc, json_type(doc, ?) AS t
                      FROM (SELECT id, createdAt, \(inResult ? "result" : "payload") AS doc FROM job WHERE rowid > ? AND rowid <= ?)
                      WHERE json_valid(doc))
                WHERE t IN ('integer', 'real', 'text', 'true', 'false', 'null')
                """, arguments: [id, path, path, from, through])
            let done = through >= target
            try db.execute(sql: "UPDATE indexField SET builtThrough = ?, state = ? WHERE id = ?", arguments: [through, done ? "ready" : "building", id])
            return (true, done ? row[5] as String : nil)
        }
        if let ready { logger.info("The journal's index of a field is ready", metadata: ["field": "\(ready)"]) }
        return worked
    }

    /// Every field index the journal has, with its progress.
    public static func status(_ journal: Journal) async throws -> [Status] {
        try await journal.database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT spec, state, builtThrough, target, (SELECT COUNT(*) FROM jobField WHERE fieldId = indexField.id) FROM indexField ORDER BY id
                """).map { Status(spec: $0[0], state: $0[1], built: $0[2], target: $0[3], rows: $0[4]) }
        }
    }
}
