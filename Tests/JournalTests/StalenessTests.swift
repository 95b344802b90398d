import DocketJournal
import DocketQueue
import DocketTestSupport
import Foundation
import Testing

/// SPEC §3 "Data loss": per-job staleness, conflicts, late journals, purges, idempotency and fencing, each
/// against a real Redis (its own server where the test restarts or snapshots it) and a real journal file.
@Suite("Recovery: staleness, conflicts, late journals", .timeLimit(.minutes(2)))
struct StalenessTests {
    let worker = WorkerID(rawValue: "w-stale")
    let logger = TestQueue.logger

    func ingest(_ j: Journal, _ t: TestQueue) async throws {
        var cursors = try await j.reader.cursors()
        let ingestor = JournalIngestor(journal: j, driver: t.driver, logger: logger)
        while try await ingestor.pass(&cursors) > 0 {}
    }

    func claim(_ t: TestQueue) async throws -> Lease? {
        try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(60), wait: .zero)
    }

    @Test func aRedisRestartedFromAnOlderSnapshotNeverRerunsFinishedWork() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: logger)
                try await t.vouch()
                let jobs = try await queue.enqueue((0..<4).map { Job(type: "t", payload: "\($0)", idempotencyKey: "k\($0)") }, actor: nil).map(\.job)
                try await ingest(j, t)
                try server.cli("SAVE")  // the snapshot: all four pending
                // After it: two complete, one is cancelled, one stays pending; the journal has it all.
                for _ in 0..<2 { try await t.driver.complete(try #require(try await claim(t)), result: "1") }
                _ = try await t.driver.cancel(jobs[2].id, queue: .default, actor: nil)
                try await ingest(j, t)
                // Redis restarts from the older snapshot.
                server.stop()
                try server.restart()  // loads the snapshot (dump.rdb)
                try await eventually("Redis back") { await t.redis.ping() }
                #expect(try await t.driver.job(jobs[0].id, queue: .default)?.state == .pending, "the snapshot is stale")
                #expect(try await !t.driver.dataVerified(), "a journal's data exists but no recovery vouched for this Redis")
                #expect(try await claim(t) == nil, "claims wait for recovery")

                let report = try await Recovery(journal: j, driver: t.driver, logger: logger).run(dryRun: false)
                #expect(report.stale == 3 && report.restored[.completed] == 2 && report.restored[.cancelled] == 1)
                try await t.vouch()
                for (i, state) in [JobState.completed, .completed, .cancelled, .pending].enumerated() {
                    #expect(try await t.driver.job(jobs[i].id, queue: .default)?.state == state)
                }
                let lease = try #require(try await claim(t))
                #expect(lease.job.id == jobs[3].id, "only the job that never finished runs")
                #expect(try await claim(t) == nil)
                // Idempotency keys of the finished ones still answer their job.
                #expect(try await t.driver.enqueue(Job(type: "t", idempotencyKey: "k0"), actor: nil).id == jobs[0].id)
                try await ingest(j, t)
                #expect(try await j.reader.events(jobs[0].id).last?.event == "restored")
                #expect(try await j.reader.conflictCount() == 0)
            }
        }
    }

    @Test func divergentEventsAreKeptAsConflicts() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { j in
                try await t.vouch()
                let job = try await t.driver.enqueue(Job(type: "t"), actor: nil).job!
                try await ingest(j, t)
                let lease = try #require(try await claim(t))
                try await ingest(j, t)
                // The same (job, seq) arrives again with other content, as from a run on an older Redis copy.
                var other = JournalEvent(jobID: job.id, seq: 2, at: Date().addingTimeInterval(5), event: "started", state: .active, attempt: 1, queue: .default)
                other.worker = "w-elsewhere"
                try await j.writer.write([.events([other])])
                try await j.writer.write([.events([other])])  // read twice: still one conflict
                #expect(try await j.reader.conflictCount() == 1)
                #expect(try await j.reader.conflicts(job.id).map(\.worker) == ["w-elsewhere"])
                #expect(try await j.reader.events(job.id).map(\.worker).last == lease.worker.rawValue, "the first is kept")
                #expect(await j.writer.conflicts == 1)
            }
        }
    }

    @Test func aLateJournalTakesDefinitionsFromRedisAndRebuildsAlone() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { first in
                try await t.vouch()
                let jobs = try await t.driver.enqueue((0..<5).map { Job(type: "late.t", payload: #"{"n":\#($0)}"#, maxAttempts: 7) }, actor: nil).map(\.job!)
                try await ingest(first, t)  // the first journal trims the stream up to its last event
                let kept = try await t.driver.events(of: .default).map(\.jobID)
                #expect(!kept.contains(jobs[0].id) && !kept.contains(jobs[1].id))
                for _ in 0..<2 { _ = try #require(try await claim(t)) }
                try await withTemporaryJournal { late in
                    try await ingest(late, t)
                    for job in jobs.prefix(2) {
                        let row = try #require(try await late.reader.job(job.id))
                        #expect(row.type == "late.t" && row.payload == job.payload && row.maxAttempts == 7 && row.state == .active)
                    }
                    _ = try await t.redis.send("FLUSHALL")
                    let report = try await Recovery(journal: late, driver: t.driver, logger: logger).run(dryRun: false)
                    #expect(report.restored[.pending] == 3 && report.undefined == 0, "it knows what it saw (two started, one enqueued), in full")
                    for job in jobs.prefix(2) {
                        let back = try #require(try await t.driver.job(job.id, queue: .default))
                        #expect(back.type == "late.t" && back.payload == job.payload && back.maxAttempts == 7 && back.state == .pending)
                    }
                }
            }
        }
    }

    @Test func restoredPendingJobsKeepStrictPriorityAndFIFO() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                try await t.vouch()
                let priorities: [Priority] = [.low, .normal, .high, .critical]
                let jobs = try await t.driver.enqueue((0..<900).map { Job(type: "t", payload: "\($0)", priority: priorities[$0 % 4]) }, actor: nil).map(\.job!)
                try await ingest(j, t)
                _ = try await t.redis.send("FLUSHALL")
                // Batches of 64 per read, restored up to three at once, in any order.
                let report = try await Recovery(journal: j, driver: t.driver, batchSize: 64, logger: logger).run(dryRun: false)
                #expect(report.restored[.pending] == 900)
                try await t.vouch()
                var claimed = [JobID]()
                while let lease = try await claim(t) { claimed.append(lease.job.id) }
                let expected = priorities.reversed().flatMap { p in jobs.filter { $0.priority == p }.map(\.id) }
                #expect(claimed == expected, "strict priority, FIFO within a level, as before the loss")
            }
        }
    }

    @Test func aLiveJournalWithoutACursorHoldsTrimmingBack() async throws {
        try await withTestQueue { t in
            _ = try await t.driver.enqueue(Job(type: "t"), actor: nil)
            try await t.driver.journalHeartbeat(journalID: "j-new")  // started, has not committed this queue yet
            let last = try await t.driver.lastStreamID(of: .default)
            let trimmed = try await t.driver.commitJournalCursor(journalID: "j-old", queue: .default, streamID: last, staleAfter: .seconds(60))
            let left = try await t.driver.events(of: .default).count
            #expect(trimmed == 0 && left == 1)
        }
    }

    @Test func purgedAndExpiredDeadJobsNeverComeBack() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                try await t.vouch()
                let jobs = try await t.driver.enqueue((0..<3).map { _ in Job(type: "t", maxAttempts: 1) }, actor: nil).map(\.job!)
                for _ in 0..<3 { _ = try await t.driver.fail(try #require(try await claim(t)), error: "boom") }
                try await t.driver.purge(jobs[0].id, queue: .default, actor: "ops")
                try await ingest(j, t)
                #expect(try await j.reader.job(jobs[0].id)?.state == .purged)
                #expect(try await j.reader.events(jobs[0].id).last?.actor == "ops")
                _ = try await t.redis.send("FLUSHALL")
                var report = try await Recovery(journal: j, driver: t.driver, logger: logger).run(dryRun: false)
                let purged = try await t.driver.job(jobs[0].id, queue: .default)
                #expect(report.restored[.dead] == 2 && purged == nil, "dead jobs within their TTL come back, the purged one never")
                // Past the dead TTL a dead job is gone for good, even if Redis loses data again (a deployment whose
                // dead TTL is shorter than these jobs' age: 1 ms).
                var short = t.driver.configuration
                short.deadTTL = .milliseconds(1)
                let expiring = RedisQueueDriver(redis: t.redis, configuration: short, logger: logger)
                _ = try await t.redis.send("FLUSHALL")
                report = try await Recovery(journal: j, driver: expiring, logger: logger).run(dryRun: false)
                let dead = try await t.driver.counts(.default).dead
                #expect(report.restoredTotal == 0 && dead == 0, "\(report)")
            }
        }
    }

    @Test func idempotencyHoldsThroughFlushallAndWhileRedisIsDown() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: logger)
                try await t.vouch()
                let done = try await queue.enqueue([Job(type: "t", idempotencyKey: "pay-1")], actor: nil)[0].job
                try await t.driver.complete(try #require(try await claim(t)), result: nil)
                try await ingest(j, t)
                _ = try await t.redis.send("FLUSHALL")
                // Before the rebuild: fenced, and the journal answers the key.
                guard case .existing(let same) = try await queue.enqueue([Job(type: "t", idempotencyKey: "pay-1")], actor: nil)[0] else {
                    Issue.record("a repeated key must answer the first job"); return
                }
                #expect(same.id == done.id)
                guard case .spooled = try await queue.enqueue([Job(type: "t")], actor: nil)[0] else {
                    Issue.record("enqueues are fenced until the rebuild"); return
                }
                _ = try await Recovery(journal: j, driver: t.driver, logger: logger).run(dryRun: false)
                #expect(try await t.driver.enqueue(Job(type: "t", idempotencyKey: "pay-1"), actor: nil).id == done.id, "the key is back in Redis")
                // Redis down: two enqueues with one key answer one (spooled) job.
                server.kill()
                let a = try await queue.enqueue([Job(type: "t", idempotencyKey: "down-1")], actor: nil)[0]
                let b = try await queue.enqueue([Job(type: "t", idempotencyKey: "down-1")], actor: nil)[0]
                guard case .spooled(let first) = a, case .existing(let second) = b else { Issue.record("\(a) \(b)"); return }
                #expect(first.id == second.id)
            }
        }
    }

    @Test func aFrozenRedisAnswersWithinTheDeadline() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        var configuration = RedisClient.Configuration(url: server.url)
        configuration.commandTimeout = .seconds(1)  // long enough for a busy machine to answer PING, short for the test
        configuration.connectTimeout = .seconds(1)
        let redis = RedisClient(configuration: configuration, logger: logger)
        defer { redis.shutdown() }
        #expect(await redis.ping())
        let pid = try #require(server.pid)
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        await #expect(throws: RedisClientError.self) { _ = try await redis.send("PING") }
        #expect(await !redis.ping(), "down, not hung")
        kill(pid, SIGCONT)
        try await eventually("Redis answers again") { await redis.ping() }
    }
}
