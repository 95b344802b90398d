import DocketTestSupport
import Foundation
import GRDB
import Testing

/// What one journal file holds about jobs, read read-only while servers may still be writing it.
struct JournalSnapshot: Sendable {
    struct JobRow: Sendable {
        let id: String
        let type: String
        let queue: String
        let payload: String
        let state: String
        let lastSeq: Int
        let defined: Bool
        let idempotencyKey: String?
        let lastError: String?
    }

    struct Event: Sendable {
        let seq: Int
        let at: Int64
        let event: String
        let state: String
        let attempt: Int
    }

    let path: String
    var jobs: [String: JobRow] = [:]
    /// jobId → seq → event.
    var events: [String: [Int: Event]] = [:]
    /// jobId → conflicting events recorded (`journalConflict`; 0 where the table does not exist yet).
    var conflicts: [String: Int] = [:]

    static func read(_ path: String) async throws -> JournalSnapshot {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        let database = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? database.close() }
        return try await database.read { db in
            var snapshot = JournalSnapshot(path: path)
            let columns = Set(try db.columns(in: "job").map(\.name))
            let defined = columns.contains("defined") ? "defined" : "1 AS defined"
            for row in try Row.fetchAll(db, sql: "SELECT id, type, queue, payload, state, lastSeq, \(defined), idempotencyKey, lastError FROM job") {
                let job = JobRow(
                    id: row["id"], type: row["type"], queue: row["queue"], payload: row["payload"], state: row["state"],
                    lastSeq: row["lastSeq"], defined: (row["defined"] as Int?) != 0, idempotencyKey: row["idempotencyKey"],
                    lastError: row["lastError"])
                snapshot.jobs[job.id] = job
            }
            for row in try Row.fetchAll(db, sql: "SELECT jobId, seq, at, event, state, attempt FROM journalEvent") {
                let jobID: String = row["jobId"]
                let event = Event(seq: row["seq"], at: row["at"], event: row["event"], state: row["state"], attempt: row["attempt"])
                snapshot.events[jobID, default: [:]][event.seq] = event
            }
            if try db.tableExists("journalConflict") {
                for row in try Row.fetchAll(db, sql: "SELECT jobId, COUNT(*) AS n FROM journalConflict GROUP BY jobId") {
                    let jobID: String = row["jobId"]
                    snapshot.conflicts[jobID] = row["n"] as Int
                }
            }
            return snapshot
        }
    }
}

/// One handler run, from the runs file.
struct HandlerRun: Sendable {
    let attempt: Int
    let at: Int64
}

/// A scenario's outcome: its counts and every invariant violation found.
struct FaultReport: Sendable {
    var scenario: String
    var acknowledged = 0
    var completed = 0
    var dead = 0
    var cancelled = 0
    var purged = 0
    var lost = 0
    /// Acknowledged jobs whose handler ran more than once, and the reasons their histories give.
    var rerun = 0
    var rerunWhy: [String: Int] = [:]
    /// Handler runs that started after the job's terminal event.
    var afterTerminal = 0
    var conflicts = 0
    /// Jobs journaled without an acknowledgement (requests cut off by the fault): informational.
    var unacknowledged = 0
    var settled = false
    var violations: [String] = []
    var extra = ""

    var line: String {
        let why = rerunWhy.isEmpty ? "" : " (" + rerunWhy.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + ")"
        return "FAULT \(scenario): acknowledged=\(acknowledged) completed=\(completed) dead=\(dead) rerun=\(rerun)\(why)"
            + " afterTerminal=\(afterTerminal) conflicts=\(conflicts) unacknowledged=\(unacknowledged) lost=\(lost)"
            + " violations=\(violations.count)\(extra.isEmpty ? "" : " " + extra)"
    }
}

/// The one invariant checker every scenario ends with (SPEC §3, §7): it waits, bounded, until every
/// acknowledged job is terminal in the journal(s) and Redis holds none of them live any more, then checks
///   - every acknowledged job is journaled with its definition (type, payload, key as sent; defined);
///   - every one reached a terminal state (here: completed, since every handler succeeds);
///   - each job's history is gap-free: seqs 1...n over the journals, contiguous within each, and the
///     journals agree on every seq they share;
///   - no handler run started after the job's terminal event (completed, dead, cancelled, purged);
///   - a job whose handler ran n > 1 times shows at least n − 1 reasons in its history (`lease_expired`,
///     `failed`, `released`, `requeued`, `restored`, `lease_lost`, or recorded conflicts);
///   - conflicts appear only when the scenario made Redis lose data;
///   - Redis agrees with the journal (no live copy of a finished job, no event the journal missed);
///   - one idempotency key never ran as two jobs.
struct InvariantChecker: Sendable {
    let cluster: FaultCluster
    var journals: [String]
    /// The scenario made Redis lose or roll back data: `restored` events and conflicts are expected.
    var redisLost = false
    /// Scenario "older RDB": a run after the terminal event is accepted when the job's history shows the
    /// divergence (a conflict or a `restored` event), as agreed for that scenario.
    var rerunAfterTerminalExplainedByHistory = false
    var deadline: Duration = .seconds(60)

    static let terminal: Set<String> = ["completed", "dead", "cancelled", "purged"]
    static let rerunReasons: Set<String> = ["lease_expired", "failed", "released", "requeued", "restored", "lease_lost"]

    init(_ cluster: FaultCluster, journals: [String], redisLost: Bool = false) {
        self.cluster = cluster
        self.journals = journals
        self.redisLost = redisLost
    }

    /// Waits for the system to settle, then checks every invariant. Never throws for a violation: they
    /// are in the report (see `FaultReport.record()`).
    func check(extra: String = "") async throws -> FaultReport {
        let acknowledged = await cluster.ledger.jobs
        let end = ContinuousClock.now + deadline
        var snapshots = [JournalSnapshot]()
        var settled = false
        while ContinuousClock.now < end {
            if let read = try? await readJournals() {
                snapshots = read
                // An acknowledged job absent from every journal is lost already (enqueue is write-ahead): no
                // use waiting for it.
                let journaled = acknowledged.filter { job in read.contains { $0.jobs[job.id] != nil } }
                if journaled.allSatisfy({ Self.history(of: $0.id, in: read).last.map { Self.terminal.contains($0.state) } == true }),
                   (try? await liveInRedis(acknowledged, snapshots: read))?.isEmpty == true {
                    settled = true
                    break
                }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        if snapshots.isEmpty { snapshots = try await readJournals() }
        var report = try await evaluate(acknowledged, snapshots, settled: settled, extra: extra)
        // Ingestion trails Redis by a few milliseconds: give a violation a moment to explain itself.
        let grace = ContinuousClock.now + .seconds(5)
        while settled, !report.violations.isEmpty, ContinuousClock.now < grace {
            try await Task.sleep(for: .milliseconds(500))
            guard let read = try? await readJournals() else { continue }
            report = try await evaluate(acknowledged, read, settled: settled, extra: extra)
        }
        return report
    }

    func readJournals() async throws -> [JournalSnapshot] {
        var out = [JournalSnapshot]()
        for path in journals { out.append(try await JournalSnapshot.read(path)) }
        return out
    }

    /// Waits (bounded) until every job in `ids` is terminal in the journals; for mid-scenario steps.
    func waitTerminal(_ ids: [String], timeout: Duration = .seconds(30)) async throws {
        try await eventually(timeout: timeout, "\(ids.count) jobs to be terminal in the journal") {
            guard let read = try? await readJournals() else { return false }
            return ids.allSatisfy { Self.history(of: $0, in: read).last.map { Self.terminal.contains($0.state) } == true }
        }
    }

    /// The job's events over all journals, by seq (the first journal holding a seq wins).
    static func history(of id: String, in snapshots: [JournalSnapshot]) -> [JournalSnapshot.Event] {
        var merged = [Int: JournalSnapshot.Event]()
        for snapshot in snapshots {
            for (seq, event) in snapshot.events[id] ?? [:] where merged[seq] == nil { merged[seq] = event }
        }
        return merged.keys.sorted().map { merged[$0]! }
    }

    /// Acknowledged jobs Redis still holds as pending, active, scheduled or retrying.
    func liveInRedis(_ jobs: [Ledger.Acknowledged], snapshots: [JournalSnapshot]) async throws -> Set<String> {
        let queues = Set(jobs.compactMap { job in snapshots.lazy.compactMap { $0.jobs[job.id]?.queue }.first }).union(["default"])
        var commands = [[String]]()
        for queue in queues.sorted() {
            for set in ["pending", "active", "scheduled", "retrying"] { commands.append(["ZRANGE", "docket:{\(queue)}:\(set)", "0", "-1"]) }
        }
        let ids = Set(jobs.map(\.id))
        return Set(try await cluster.redisCLI(commands).filter { ids.contains($0) })
    }

    /// Redis's `state` and `seq` of each job (nil fields when its hash is gone).
    func redisCopies(_ jobs: [Ledger.Acknowledged], snapshots: [JournalSnapshot]) async throws -> [String: (state: String, seq: Int)] {
        let queued = jobs.map { job in (job.id, snapshots.lazy.compactMap { $0.jobs[job.id]?.queue }.first ?? "default") }
        let lines = try await cluster.redisCLI(queued.map { ["HMGET", "docket:{\($0.1)}:job:\($0.0)", "state", "seq"] })
        guard lines.count == queued.count * 2 else { throw TestSupportError("redis-cli answered \(lines.count) lines for \(queued.count) jobs") }
        var out = [String: (state: String, seq: Int)]()
        for (i, (id, _)) in queued.enumerated() where !lines[2 * i].isEmpty {
            out[id] = (lines[2 * i], Int(lines[2 * i + 1]) ?? 0)
        }
        return out
    }

    func runs() -> [String: [HandlerRun]] {
        let text = (try? String(contentsOfFile: cluster.runsFile, encoding: .utf8)) ?? ""
        var out = [String: [HandlerRun]]()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let attempt = Int(parts[1]), let at = Int64(parts[2]) else { continue }
            out[String(parts[0]), default: []].append(HandlerRun(attempt: attempt, at: at))
        }
        return out
    }

    func evaluate(_ acknowledged: [Ledger.Acknowledged], _ snapshots: [JournalSnapshot], settled: Bool, extra: String) async throws -> FaultReport {
        var report = FaultReport(scenario: cluster.name, acknowledged: acknowledged.count, settled: settled, extra: extra)
        let runs = runs()
        let live = (try? await liveInRedis(acknowledged, snapshots: snapshots)) ?? []
        let copies = (try? await redisCopies(acknowledged, snapshots: snapshots)) ?? [:]
        func note(_ text: String) { report.violations.append(text) }
        var stuck = [String: Int]()

        for job in acknowledged {
            let id = job.id
            let rows = snapshots.compactMap { $0.jobs[id] }
            let history = Self.history(of: id, in: snapshots)
            let jobRuns = runs[id] ?? []
            let conflicts = snapshots.map { $0.conflicts[id] ?? 0 }.reduce(0, +)
            report.conflicts += conflicts
            let story = history.map { "\($0.seq):\($0.event)" }.joined(separator: " ") + " | runs=\(jobRuns.count)" + (conflicts > 0 ? " conflicts=\(conflicts)" : "")

            // Journaled, with its definition.
            guard !rows.isEmpty else {
                report.lost += 1
                note("\(id): acknowledged (\(job.status)) but in no journal")
                continue
            }
            var wellDefined = false
            for (snapshot, row) in snapshots.compactMap({ s in s.jobs[id].map { (s, $0) } }) {
                var wrong = [String]()
                if !row.defined { wrong.append("defined=0") }
                if row.type != job.type { wrong.append("type \(row.type)") }
                if row.payload != job.payload { wrong.append("payload \(row.payload.prefix(80))") }
                if let key = job.idempotencyKey, row.idempotencyKey != key { wrong.append("idempotencyKey \(row.idempotencyKey ?? "nil")") }
                if wrong.isEmpty { wellDefined = true } else {
                    note("\(id): journal \(URL(fileURLWithPath: snapshot.path).lastPathComponent) has a wrong definition: \(wrong.joined(separator: ", "))")
                }
            }

            // Gap-free: 1...n over the journals, contiguous within each, the same event wherever shared.
            let seqs = history.map(\.seq)
            if seqs != Array(1...max(1, seqs.count)) || seqs.isEmpty { note("\(id): history has gaps: \(story)") }
            for snapshot in snapshots {
                let own = (snapshot.events[id] ?? [:]).keys.sorted()
                if let first = own.first, own != Array(first...(first + own.count - 1)) {
                    note("\(id): \(URL(fileURLWithPath: snapshot.path).lastPathComponent) has a hole: \(own)")
                }
                for (seq, event) in snapshot.events[id] ?? [:] {
                    if let other = history.first(where: { $0.seq == seq }), other.event != event.event || other.state != event.state {
                        note("\(id): journals disagree on seq \(seq): \(other.event) vs \(event.event)")
                    }
                }
            }

            // Terminal.
            guard let last = history.last, Self.terminal.contains(last.state) else {
                stuck["journal:\(history.last?.state ?? "none")/redis:\(copies[id]?.state ?? "none")", default: 0] += 1
                report.lost += 1
                note("\(id): never terminal (journal: \(history.last?.state ?? "no events")): \(story)")
                continue
            }
            if !wellDefined { report.lost += 1 }
            switch last.state {
            case "completed": report.completed += 1
            case "dead": report.dead += 1
            case "cancelled": report.cancelled += 1
            default: report.purged += 1
            }
            if last.state != "completed" {
                let error = rows.compactMap(\.lastError).first ?? ""
                note("\(id): ended \(last.state) (\(error.prefix(120))), but its handler always succeeds: \(story)")
            }
            if last.state == "completed" && jobRuns.isEmpty { note("\(id): completed without a recorded handler run: \(story)") }

            // Re-runs need a reason in the history; nothing runs after the terminal event.
            let reasons = history.filter { Self.rerunReasons.contains($0.event) }
            if jobRuns.count > 1 {
                report.rerun += 1
                var why = Set(reasons.map(\.event))
                if conflicts > 0 { why.insert("conflict") }
                for reason in why { report.rerunWhy[reason, default: 0] += 1 }
                if why.isEmpty { report.rerunWhy["unexplained", default: 0] += 1 }
                if jobRuns.count - 1 > reasons.count + conflicts {
                    note("\(id): handler ran \(jobRuns.count) times, history explains \(reasons.count + conflicts): \(story)")
                }
            }
            if let terminalAt = history.first(where: { Self.terminal.contains($0.state) })?.at {
                let late = jobRuns.filter { $0.at > terminalAt }
                if !late.isEmpty {
                    report.afterTerminal += late.count
                    let explained = rerunAfterTerminalExplainedByHistory && (conflicts > 0 || history.contains { $0.event == "restored" })
                    if !explained {
                        note("\(id): handler ran \(late.count)× after the job was \(history.first { Self.terminal.contains($0.state) }!.state): \(story)")
                    }
                }
            }
            if conflicts > 0 && !redisLost { note("\(id): conflicting events though Redis lost nothing: \(story)") }

            // Redis agrees.
            if live.contains(id) { note("\(id): still live in Redis though the journal says \(last.state)") }
            if let copy = copies[id] {
                if copy.state != last.state { note("\(id): Redis says \(copy.state), the journal \(last.state) (seq \(copy.seq) vs \(last.seq))") }
                if copy.seq > last.seq { note("\(id): Redis is at seq \(copy.seq), the journal only at \(last.seq): events missing") }
            }
        }

        if !settled {
            let states = stuck.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
            report.violations.insert("not settled within \(deadline): not terminal [\(states)], live in Redis: \(live.count)", at: 0)
        }

        // One idempotency key, one job.
        let keys = Set(acknowledged.compactMap(\.idempotencyKey))
        var idsByKey = [String: Set<String>]()
        for snapshot in snapshots {
            for row in snapshot.jobs.values { if let key = row.idempotencyKey, keys.contains(key) { idsByKey[key, default: []].insert(row.id) } }
        }
        for (key, ids) in idsByKey.sorted(by: { $0.key < $1.key }) {
            let ran = ids.filter { runs[$0] != nil }
            if ran.count > 1 { note("idempotency key \(key) ran as \(ran.count) jobs: \(ran.sorted())") }
        }
        let acknowledgedIDs = Set(acknowledged.map(\.id))
        report.unacknowledged = Set(snapshots.flatMap { $0.jobs.keys }).subtracting(acknowledgedIDs).count
        return report
    }
}

extension FaultReport {
    /// Prints the count line and records every violation as a test issue (at most 25 listed).
    func record(sourceLocation: SourceLocation = #_sourceLocation) {
        print(line)
        #expect(lost == 0, "\(scenario): \(lost) acknowledged jobs lost", sourceLocation: sourceLocation)
        if !violations.isEmpty {
            let shown = violations.prefix(25).joined(separator: "\n")
            Issue.record("\(scenario): \(violations.count) invariant violations:\n\(shown)", sourceLocation: sourceLocation)
        }
    }
}
