import DocketQueue
import Foundation
import GRDB
import GRDBSQLite

/// `GET /jobs/export`'s lines, written straight from SQLite's column bytes: a job line says exactly what the API's
/// job JSON says for a journaled job (`JobJSON.render(job, source: "journal")`), plus its `events` as
/// `GET /jobs/{id}/events` renders them, and no `Job`, `String` or `Row` is made per job on the way. Decoding jobs
/// into Swift values cost five times the rest of an export; a test compares every line with the API's JSON.
extension JournalReader {
    /// One page of `filter` (newest first) as NDJSON, with the position to go on from (nil: no more). Without `events`,
    /// the jobs are comma-separated instead (the items of `GET /jobs`' `jobs` array). `scanLimited`: the scan bound
    /// ended the page (see `Page.scanLimited`).
    public func exportPage(_ filter: Filter, events withEvents: Bool = true) async throws
        -> (lines: [UInt8], count: Int, nextCursor: String?, scanLimited: Bool)
    {
        try await database.read { db in
            let plan = try plan(filter, db)
            let order = plan.order == "f" ? " ORDER BY f.createdAt DESC, f.jobId DESC" : " ORDER BY j.createdAt DESC, j.id DESC"
            let bound = plan.mode == .scan ? filter.scanLimit ?? Int.max : Int.max
            let limit = max(1, filter.limit)
            let sql = "SELECT \(Self.columns("j"))" + (plan.mode == .scan ? ", (\(plan.test))" : "") + Self.from(plan) + order
                + " LIMIT \(plan.mode == .scan ? (bound == Int.max ? -1 : bound + 1) : limit + 1)"
            let jobs = try db.makeStatement(sql: sql)
            try jobs.setArguments(StatementArguments(plan.testArguments + plan.arguments))
            let events = try db.makeStatement(sql: "SELECT seq, event, state, at, attempt, worker, error, actor, detail, runMs FROM journalEvent WHERE jobId = ? ORDER BY seq")
            let j = jobs.sqliteStatement, e = events.sqliteStatement
            var out = [UInt8]()
            out.reserveCapacity(min(limit, 1000) * 1100)
            var count = 0, scanned = 0
            var last: (Int64, [UInt8])?, lastLine: (Int64, [UInt8])?
            sqlite3_reset(j)
            while true {
                let step = sqlite3_step(j)
                if step == SQLITE_DONE { return (out, count, nil, false) }
                guard step == SQLITE_ROW else { throw DatabaseError(resultCode: ResultCode(rawValue: step), message: String(cString: sqlite3_errmsg(db.sqliteConnection))) }
                if scanned == bound { return (out, count, last.map { Self.encodeCursor(at: $0.0, id: String(decoding: $0.1, as: UTF8.self)) }, true) }
                scanned += 1
                let position = (sqlite3_column_int64(j, 13), Raw.bytes(j, 0))
                last = position
                if plan.mode == .scan, sqlite3_column_int64(j, 24) == 0 { continue }
                if count == limit { return (out, count, lastLine.map { Self.encodeCursor(at: $0.0, id: String(decoding: $0.1, as: UTF8.self)) }, false) }
                if !withEvents && count > 0 { out.append(UInt8(ascii: ",")) }
                Raw.job(j, events: withEvents ? e : nil, into: &out)
                if withEvents { out.append(UInt8(ascii: "\n")) }
                count += 1
                lastLine = position
            }
        }
    }
}

/// Writes JSON from the columns of a stepped statement.
private enum Raw {
    static func bytes(_ s: OpaquePointer, _ i: CInt) -> [UInt8] {
        guard let p = sqlite3_column_text(s, i) else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, i))))
    }

    static func isNull(_ s: OpaquePointer, _ i: CInt) -> Bool { sqlite3_column_type(s, i) == SQLITE_NULL }

    static func key(_ name: StaticString, _ out: inout [UInt8], first: Bool = false) {
        if !first { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    static let null = Array("null".utf8)

    /// A text column as a JSON string (or null).
    static func string(_ s: OpaquePointer, _ i: CInt, _ out: inout [UInt8]) {
        guard let p = sqlite3_column_text(s, i) else { return out.append(contentsOf: null) }
        JSONText.appendQuoted(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, i))), to: &out)
    }

    /// A text column holding JSON, embedded as it is (or null).
    static func json(_ s: OpaquePointer, _ i: CInt, _ out: inout [UInt8]) {
        guard let p = sqlite3_column_text(s, i) else { return out.append(contentsOf: null) }
        out.append(contentsOf: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, i))))
    }

    static func int(_ s: OpaquePointer, _ i: CInt, _ out: inout [UInt8]) {
        out.append(contentsOf: String(sqlite3_column_int64(s, i)).utf8)
    }

    static func time(_ s: OpaquePointer, _ i: CInt, _ out: inout [UInt8]) {
        if isNull(s, i) { return out.append(contentsOf: null) }
        Timestamp.write(Date(millis: sqlite3_column_int64(s, i)), quotedInto: &out)
    }

    static func duration(_ s: OpaquePointer, _ i: CInt, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: DurationText.format(.milliseconds(sqlite3_column_int64(s, i))).utf8)
        out.append(UInt8(ascii: "\""))
    }

    /// The job at the statement's row (`JournalReader.columns()` order) and its events, as one JSON object.
    static func job(_ j: OpaquePointer, events e: OpaquePointer?, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        key("id", &out, first: true); string(j, 0, &out)
        key("type", &out); string(j, 1, &out)
        key("queue", &out); string(j, 2, &out)
        key("state", &out); string(j, 11, &out)
        key("priority", &out); string(j, 4, &out)
        key("payload", &out); json(j, 3, &out)
        key("attempts", &out); int(j, 12, &out)
        key("maxAttempts", &out); int(j, 5, &out)
        key("timeout", &out); duration(j, 6, &out)
        key("backoff", &out)
        out.append(contentsOf: Array(#"{"base":"#.utf8)); duration(j, 7, &out)
        out.append(contentsOf: Array(#","max":"#.utf8)); duration(j, 8, &out)
        out.append(UInt8(ascii: "}"))
        key("runAt", &out); time(j, 9, &out)
        key("idempotencyKey", &out); string(j, 10, &out)
        if !isNull(j, 21) {
            key("unique", &out)
            out.append(contentsOf: Array(#"{"key":"#.utf8)); string(j, 21, &out)
            out.append(contentsOf: Array(#","while":"#.utf8))
            if isNull(j, 22) { out.append(contentsOf: Array(#""until_complete""#.utf8)) } else { string(j, 22, &out) }
            out.append(UInt8(ascii: "}"))
        }
        if !isNull(j, 23) { key("replayOf", &out); string(j, 23, &out) }
        key("createdAt", &out); time(j, 13, &out)
        key("updatedAt", &out); time(j, 14, &out)
        key("startedAt", &out); time(j, 15, &out)
        key("finishedAt", &out); time(j, 16, &out)
        key("lastError", &out); string(j, 17, &out)
        key("result", &out); json(j, 18, &out)
        key("progress", &out); json(j, 19, &out)
        key("source", &out); out.append(contentsOf: Array(#""journal""#.utf8))
        guard let e else { return out.append(UInt8(ascii: "}")) }
        key("events", &out)
        out.append(UInt8(ascii: "["))
        sqlite3_reset(e)
        if let id = sqlite3_column_text(j, 0) {
            sqlite3_bind_text(e, 1, UnsafeRawPointer(id).assumingMemoryBound(to: CChar.self), sqlite3_column_bytes(j, 0), transient)
        }
        var first = true
        while sqlite3_step(e) == SQLITE_ROW {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "{"))
            key("seq", &out, first: true); int(e, 0, &out)
            key("event", &out); string(e, 1, &out)
            key("state", &out); string(e, 2, &out)
            key("at", &out); time(e, 3, &out)
            key("attempt", &out); int(e, 4, &out)
            key("worker", &out); string(e, 5, &out)
            key("error", &out); string(e, 6, &out)
            key("actor", &out); string(e, 7, &out)
            key("detail", &out); string(e, 8, &out)
            if !isNull(e, 9) { key("runMs", &out); int(e, 9, &out) }
            out.append(UInt8(ascii: "}"))
        }
        sqlite3_reset(e)
        out.append(contentsOf: [UInt8(ascii: "]"), UInt8(ascii: "}")])
    }

    static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
}
