import DocketJournal
import DocketQueue
import DocketTestSupport
import Foundation
import Testing

@Suite("Recovery")
struct RecoveryTests {
    let worker = WorkerID(rawValue: "w-recovery")

    @Test func flushallIsRebuiltFromTheJournal() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger)
                try await t.vouch()
                let ingestor = JournalIngestor(journal: j, driver: t.driver, logger: TestQueue.logger)
                let fast = Backoff(base: .seconds(60), max: .seconds(60))
                // One job in each recoverable state, plus a completed one that must not come back.
                let ids = try await queue.enqueue([
                    Job(type: "p", idempotencyKey: "once"), Job(type: "s", runAt: Date().addingTimeInterval(600)),
                    Job(type: "r", backoff: fast), Job(type: "d", maxAttempts: 1), Job(type: "a"), Job(type: "c"),
                ], actor: nil).map(\.job.id)
                for _ in 0..<5 {
                    let lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(60), wait: .zero))
                    switch lease.job.type {
                    case "r", "d": _ = try await t.driver.fail(lease, error: "boom")
                    case "c": try await t.driver.complete(lease, result: nil)
                    case "p": try await t.driver.release(lease)  // back to pending
                    default: break  // "a" stays active
                    }
                }
                var cursors = [QueueName: String]()
                try await ingestor.pass(&cursors)
                let before = try await ids.asyncMap { try await t.driver.job($0)?.state }
                _ = try await t.redis.send("FLUSHALL")
                #expect(try await t.driver.job(ids[0]) == nil)

                let recovery = Recovery(journal: j, driver: t.driver, logger: TestQueue.logger)
                let dry = try await recovery.run(dryRun: true)
                #expect(dry.candidates == 5 && dry.restoredTotal == 5 && dry.present == 0)
                #expect(try await t.driver.job(ids[0]) == nil, "a dry run changes nothing")
                let report = try await recovery.run(dryRun: false)
                #expect(report.restoredTotal == 5)
                let after = try await ids.asyncMap { try await t.driver.job($0)?.state }
                // Active comes back pending (its lease died with Redis); completed stays gone.
                #expect(before.map { $0 == .active ? .pending : $0 }.dropLast() == after.dropLast())
                #expect(after.last == .some(nil))
                let counts = try await t.driver.counts(.default)
                #expect(counts.pending == 2 && counts.scheduled == 1 && counts.retrying == 1 && counts.dead == 1)
                // The idempotency key is live again; the seq continues after the journal's.
                #expect(try await t.driver.enqueue(Job(type: "p", idempotencyKey: "once"), actor: nil).job.id == ids[0])
                let restored = try #require(try await t.driver.events(of: .default).first { $0.jobID == ids[0] })
                let journaledSeq = try await j.reader.job(ids[0])?.seq ?? 0
                #expect(restored.event == "restored" && restored.seq == journaledSeq + 1)
                // Twice is harmless.
                #expect(try await recovery.run(dryRun: false).restoredTotal == 0)
            }
        }
    }

    @Test func recoveryServiceNoticesDataLoss() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger)
                try await t.vouch()
                let job = try await queue.enqueue([Job(type: "keep")], actor: nil)[0].job
                let service = RecoveryService(recovery: Recovery(journal: j, driver: t.driver, logger: TestQueue.logger), interval: .milliseconds(50), logger: TestQueue.logger)
                try await withRunningServices([service]) {
                    try await eventually("the marker") { try await t.driver.hasMarker() }
                    server.kill()
                    try server.restart()  // no persistence: Redis comes back empty
                    try await eventually("the job to be rebuilt") { (try? await t.driver.job(job.id, queue: .default))?.state == .pending }
                }
            }
        }
    }
}

extension RecoveryTests {
    @Test func aRestartedRedisMissingJobsIsRepaired() async throws {
        let server = try RedisServer.start(appendOnly: true)
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger)
                try await t.vouch()
                let jobs = try await queue.enqueue([Job(type: "a"), Job(type: "b")], actor: nil).map(\.job)
                let service = RecoveryService(recovery: Recovery(journal: j, driver: t.driver, logger: TestQueue.logger), interval: .milliseconds(50), logger: TestQueue.logger)
                try await withRunningServices([service]) {
                    try await eventually("the marker") { try await t.driver.hasMarker() }
                    // Redis comes back from older data: it still has the marker, but not job a.
                    let q = t.keys.queue(.default)
                    _ = try await t.redis.pipeline([
                        RedisCommand("DEL", [RESPArgument(q.job(jobs[0].id))]), RedisCommand("ZREM", [RESPArgument(q.pending), RESPArgument(jobs[0].id.rawValue)]),
                    ])
                    server.stop()
                    try server.restart()
                    try await eventually("job a to be restored") { (try? await t.driver.job(jobs[0].id, queue: .default))?.state == .pending }
                    #expect(try await t.driver.counts(.default).pending == 2, "job b was kept, not duplicated")
                }
            }
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out = [T]()
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
