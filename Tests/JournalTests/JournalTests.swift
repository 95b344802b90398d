import DocketJournal
import DocketQueue
import DocketTestSupport
import Foundation
import GRDB
import Testing

@Suite("Journal")
struct JournalTests {
    let worker = WorkerID(rawValue: "w-journal")

    func ingestor(_ j: Journal, _ t: TestQueue) -> JournalIngestor {
        JournalIngestor(journal: j, driver: t.driver, logger: TestQueue.logger)
    }

    @Test func migrationsApplyFromEmptyAndAreIdempotent() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-mig-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("j.sqlite").path
        let first = try Journal.open(path: path, logger: TestQueue.logger)
        let second = try Journal.open(path: path, logger: TestQueue.logger)
        #expect(first.id == second.id, "the journal keeps its identity")
        let tables = try await second.database.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'grdb%' AND name NOT LIKE 'sqlite%' ORDER BY name")
        }
        #expect(tables == ["indexField", "job", "jobField", "journalConflict", "journalEvent", "journalInfo", "limitRule", "schedule", "scheduleEvent", "streamCursor"])
        let mode = try await second.database.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        #expect(try await JournalVacuum.incremental(second), "a new journal returns freed pages (incremental vacuum)")
        // The embedded list is exactly the files of migrations/.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let files = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("migrations").path)
            .filter { $0.hasSuffix(".sql") }.map { String($0.dropLast(4)) }.sorted()
        let applied = try await second.database.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
        #expect(applied == files)
    }

    @Test func everyTransitionIsJournaledOnceWithAGapFreeSeq() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { j in
                let ing = ingestor(j, t)
                // A full life: enqueue, fail, retry, progress, complete; a second job cancelled then requeued.
                let a = try await t.driver.enqueue(Job(type: "t", payload: #"{"x":1}"#, backoff: Backoff(base: .milliseconds(1), max: .milliseconds(1))), actor: "req-9").job!
                let b = try await t.driver.enqueue(Job(type: "u", runAt: Date().addingTimeInterval(60)), actor: nil).job!
                var lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
                _ = try await t.driver.fail(lease, error: "boom")
                _ = try await t.driver.runScheduler(now: Date().addingTimeInterval(1))
                lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
                try await t.driver.progress(lease, "50")
                try await t.driver.complete(lease, result: #"{"ok":1}"#)
                _ = try await t.driver.cancel(b.id, queue: nil, actor: "ops")
                _ = try await t.driver.requeue(b.id, queue: nil, actor: "ops")

                var cursors = [QueueName: String]()
                try await ing.pass(&cursors)
                let events = try await j.reader.events(a.id)
                #expect(events.map(\.event) == ["enqueued", "started", "failed", "retry_scheduled", "promoted", "started", "progress", "completed"])
                #expect(events.map(\.seq) == Array(1...8))
                #expect(events[0].actor == "req-9" && events[2].error == "boom" && events[7].detail == #"{"ok":1}"#)
                let row = try #require(try await j.reader.job(a.id))
                #expect(row.state == .completed && row.attempts == 2 && row.result == #"{"ok":1}"# && row.lastError == "boom")
                #expect(row.payload == #"{"x":1}"# && row.type == "t" && row.startedAt != nil && row.finishedAt != nil && row.progress == "50")
                #expect(try await j.reader.events(b.id).map(\.event) == ["enqueued", "cancelled", "requeued"])
                #expect(try await j.reader.job(b.id)?.state == .pending)

                // Replaying the whole stream from the start changes nothing.
                let before = try await j.reader.size()
                var fromZero = [QueueName: String]()
                try await ing.pass(&fromZero)
                let after = try await j.reader.size()
                #expect(before.jobs == after.jobs && before.events == after.events && after.events == 11)
                #expect(try await j.reader.job(a.id) == row)
            }
        }
    }

    @Test func ingestionServiceSurvivesRestartsAndFlushes() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                func journaled() async throws -> (jobs: Int, events: Int) {
                    let size = try await j.reader.size()
                    return (size.jobs, size.events)
                }
                try await t.vouch()  // as a server's recovery does: workers may claim from this Redis
                let first = try await t.driver.enqueue((0..<100).map { _ in Job(type: "t") }, actor: nil)
                try await withRunningServices([ingestor(j, t)]) {
                    try await eventually("the first batch") { try await journaled().jobs == 100 }
                }
                // The server is down while more work happens; a new ingestor resumes from the saved cursor.
                _ = try await t.driver.enqueue((0..<100).map { _ in Job(type: "t") }, actor: nil)
                let lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
                #expect(lease.job.id == first[0].job.id)
                try await withRunningServices([ingestor(j, t)]) {
                    try await eventually("the second batch") { try await journaled().events == 201 }
                    #expect(try await journaled().jobs == 200)
                    // Redis loses everything; events written after it still arrive, and a cursor ahead of the
                    // stream is detected and reset.
                    _ = try await t.redis.send("FLUSHALL")
                    let late = try await t.sibling().enqueue(Job(type: "t", queue: "other"), actor: nil).job!
                    try await eventually("the job enqueued after FLUSHALL") { try await j.reader.job(late.id) != nil }
                }
                try await j.writer.write([.cursor(.default, "99999999999999-0")])
                let after = try await t.driver.enqueue(Job(type: "t"), actor: nil).job!
                try await withRunningServices([ingestor(j, t)]) {
                    try await eventually("the stream to be re-read") { try await j.reader.job(after.id) != nil }
                }
                #expect(try await journaled().events == 203)
            }
        }
    }

    @Test func committedEventsAreTrimmedFromTheStream() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { j in
                _ = try await t.driver.enqueue((0..<50).map { _ in Job(type: "t") }, actor: nil)
                var cursors = [QueueName: String]()
                try await ingestor(j, t).pass(&cursors)
                // XTRIM MINID keeps the last committed entry itself.
                #expect(try await t.driver.events(of: .default).count <= 1)
                #expect(try await j.reader.size().jobs == 50)
            }
        }
    }

    /// Behind by many batches, a pass reads the next batch while it writes the last (up to four per queue), and
    /// every event lands once, in order, with the job rows advanced across batch boundaries.
    @Test func aPassBehindByManyBatchesPrefetchesAndJournalsEachEventOnce() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { j in
                let ids = try await t.driver.enqueue((0..<25).map { _ in Job(type: "t") }, actor: nil).map(\.job.id)
                let leases = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero, max: 25)
                #expect(try await t.driver.complete(leases.map { Completion(lease: $0, result: "1") }) == Array(repeating: true, count: 25))
                var configuration = JournalIngestor.Configuration()
                configuration.batchSize = 10
                let ingestor = JournalIngestor(journal: j, driver: t.driver, configuration: configuration, logger: TestQueue.logger)
                var cursors = [QueueName: String]()
                #expect(try await ingestor.pass(&cursors) == 40, "four batches of ten in one pass")
                #expect(try await ingestor.pass(&cursors) == 35)
                #expect(try await ingestor.pass(&cursors) == 0)
                for id in ids {
                    #expect(try await j.reader.events(id).map(\.event) == ["enqueued", "started", "completed"])
                    #expect(try await j.reader.job(id)?.state == .completed)
                }
            }
        }
    }

    @Test func lookupFallsBackToTheJournalAfterRedisExpiry() async throws {
        try await withTestQueue(configure: { $0.completedTTL = .milliseconds(200) }) { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger)
                try await t.vouch()
                let lookup = JobLookup(journal: j, driver: t.driver)
                let job = try await queue.enqueue([Job(type: "t", payload: "[1,2]")], actor: "req-1")[0].job
                #expect(try await lookup.job(job.id)?.source == .redis)
                let lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
                try await t.driver.complete(lease, result: "42")
                var cursors = [QueueName: String]()
                try await ingestor(j, t).pass(&cursors)
                try await eventually("the Redis hash to expire") { try await t.driver.job(job.id) == nil }
                let found = try #require(try await lookup.job(job.id))
                #expect(found.source == .journal)
                #expect(found.job.state == .completed && found.job.result == "42" && found.job.payload == "[1,2]" && found.job.attempts == 1)
                #expect(try await j.reader.events(job.id).map(\.event) == ["enqueued", "started", "completed"])
                #expect(try await lookup.job(JobID.make()) == nil)
            }
        }
    }

    @Test func paginationVisitsEveryJobOnceWhileInserting() async throws {
        try await withTemporaryJournal { j in
            let base = Date(timeIntervalSince1970: 1_800_000_000)
            var ids = Set<JobID>()
            for chunk in 0..<10 {
                var jobs = [Job]()
                for i in 0..<1000 {
                    // Many jobs share a millisecond, so the id breaks ties.
                    let type: JobType = i % 2 == 0 ? "even" : "odd"
                    let at = base.addingTimeInterval(Double(chunk * 1000 + i / 7) / 1000)
                    jobs.append(Job(type: type, createdAt: at))
                }
                ids.formUnion(jobs.map(\.id))
                try await j.writer.write([.events(jobs.map { JournalEvent.enqueued($0, actor: nil) })])
            }
            var seen = [JobID]()
            var filter = JournalReader.Filter()
            filter.limit = 333
            var page = 0
            repeat {
                let result = try await j.reader.list(filter)
                seen += result.jobs.map(\.id)
                // New (newer) jobs land meanwhile; they sort before the cursor and never enter later pages.
                let newer = (0..<50).map { _ in Job(type: "even", createdAt: Date()) }
                try await j.writer.write([.events(newer.map { JournalEvent.enqueued($0, actor: nil) })])
                filter.cursor = result.nextCursor
                page += 1
            } while filter.cursor != nil && page < 100
            let original = seen.filter { ids.contains($0) }
            #expect(original.count == 10_000 && Set(original) == ids, "each of the 10,000 exactly once")
            var byType = JournalReader.Filter()
            byType.type = "odd"
            byType.limit = 1000
            byType.until = base.addingTimeInterval(3600)
            let odd = try await j.reader.list(byType)
            #expect(odd.jobs.count == 1000 && odd.jobs.allSatisfy { $0.type == "odd" })
            #expect(zip(odd.jobs, odd.jobs.dropFirst()).allSatisfy { ($0.createdAt, $0.id) >= ($1.createdAt, $1.id) }, "newest first")
            var bad = JournalReader.Filter()
            bad.cursor = "not-a-cursor"
            await #expect(throws: JournalError.self) { _ = try await j.reader.list(bad) }
        }
    }

    @Test func spooledJobsArriveOnceInOrderWhenRedisReturns() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger)
                try await t.vouch()
                let pusher = SpoolPusher(queue: queue, minAge: .zero, logger: TestQueue.logger)
                _ = try await queue.enqueue([Job(type: "t")], actor: nil)  // registers the queue
                server.kill()
                var spooled = [JobID]()
                for i in 0..<20 {
                    let outcome = try await queue.enqueue([Job(type: "t", payload: "\(i)")], actor: "req-\(i)")[0]
                    guard case .spooled(let job) = outcome else { Issue.record("expected spooled, got \(outcome)"); return }
                    spooled.append(job.id)
                }
                #expect(try await j.reader.spooled(limit: 100).map(\.id) == spooled)
                try server.restart()
                try await eventually("Redis to be back") { await t.redis.ping() }
                // Redis came back empty: enqueues stay fenced (spooled) until a rebuild vouches for it.
                _ = try? await pusher.pushOnce()
                #expect(try await j.reader.spooled(limit: 100).count == 20, "fenced until Redis is rebuilt")
                try await t.vouch()
                try await eventually("the spool to drain") { _ = try? await pusher.pushOnce(); return try await j.reader.spooled(limit: 1).isEmpty }
                // Every spooled job arrived once, in order (a restarted empty Redis holds only them).
                var claimed = [JobID]()
                while let lease = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero) {
                    claimed.append(lease.job.id)
                }
                #expect(claimed == spooled)
                #expect(try await pusher.pushOnce() == 0)
            }
        }
    }

    @Test func idempotentReplaysAreNotJournaledAsNewJobs() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger)
                try await t.vouch()
                let first = try await queue.enqueue([Job(type: "t", idempotencyKey: "pay-1")], actor: nil)[0]
                let second = try await queue.enqueue([Job(type: "t", idempotencyKey: "pay-1")], actor: nil)[0]
                guard case .existing(let job) = second else { Issue.record("expected existing"); return }
                #expect(job.id == first.job.id)
                #expect(try await j.reader.size().jobs == 1)
            }
        }
    }

    @Test func idempotencyKeyOutlivesTheRedisCopyOfItsJob() async throws {
        try await withTestQueue(configure: { $0.completedTTL = .milliseconds(100) }) { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger)
                try await t.vouch()
                let first = try await queue.enqueue([Job(type: "t", idempotencyKey: "pay-9")], actor: nil)[0].job
                let lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
                try await t.driver.complete(lease, result: nil)
                try await eventually("the Redis hash to expire") { try await t.driver.job(first.id) == nil }
                let again = try await queue.enqueue([Job(type: "t", idempotencyKey: "pay-9")], actor: nil)[0]
                guard case .existing(let job) = again else { Issue.record("expected existing, got \(again)"); return }
                #expect(job.id == first.id)
                #expect(try await j.reader.size().jobs == 1, "the turned-away job leaves nothing in the journal")
                #expect(try await j.reader.spooled(limit: 10).isEmpty)
            }
        }
    }

    @Test func historyStatsBucketCountsAndRunTimes() async throws {
        try await withTemporaryJournal { j in
            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            var events = [JournalEvent]()
            for i in 0..<10 {
                let job = Job(type: "s", createdAt: t0.addingTimeInterval(Double(i)))
                events.append(JournalEvent.enqueued(job, actor: nil))
                var done = JournalEvent(jobID: job.id, seq: 2, at: t0.addingTimeInterval(Double(i) + (i < 5 ? 1 : 70)), event: i == 9 ? "dead" : "completed",
                                        state: i == 9 ? .dead : .completed, attempt: 1, queue: .default)
                done.runMs = Int64((i + 1) * 100)
                events.append(done)
            }
            try await j.writer.write([.events(events)])
            let stats = try await j.reader.stats(since: t0, until: t0.addingTimeInterval(600), bucket: .minute)
            #expect(stats.count == 2)
            // Minute 0 ran 100…500 ms, minute 1 ran 600…1000 ms: ranks n/2 and 0.95·n of each bucket's run times.
            #expect(stats[0].enqueued == 10 && stats[0].completed == 5 && stats[0].p50RunMs == 300 && stats[0].p95RunMs == 500)
            #expect(stats[1].completed == 4 && stats[1].dead == 1 && stats[1].p50RunMs == 800 && stats[1].p95RunMs == 1000)
            let hourly = try await j.reader.stats(since: t0, until: t0.addingTimeInterval(600), bucket: .hour)
            #expect(hourly.count == 1 && hourly[0].p50RunMs == 600 && hourly[0].p95RunMs == 1000)
            // Events after `enqueued` carry their job's type, so filtering by type sees them.
            let typed = try await j.reader.stats(since: t0, until: t0.addingTimeInterval(600), bucket: .hour, type: "s")
            #expect(typed.count == 1 && typed[0].completed == 9 && typed[0].enqueued == 10)
            #expect(try await j.reader.stats(since: t0, until: t0.addingTimeInterval(600), bucket: .hour, type: "other").isEmpty)
            let retention = JournalRetention(journal: j, retention: .seconds(1), logger: TestQueue.logger)
            #expect(try await retention.prune(before: t0.addingTimeInterval(30)) == 5)
            let size = try await j.reader.size()
            #expect(size.jobs == 5 && size.events == 10)
        }
    }
}
