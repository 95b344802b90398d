import DocketTestSupport
import Foundation
import Testing

@testable import DocketQueue

/// Every transition against a real Redis: the job's state, and the event (with a gap-free seq) it appends.
/// Leases that must expire are shortened by a renewal and reaped by polling, so no test depends on the
/// machine's speed nor on whose clock (the caller's or Redis') a lease runs.
@Suite("Job lifecycle", .timeLimit(.minutes(1)))
struct LifecycleTests {
    let worker = WorkerID(rawValue: "w-test")

    func events(_ t: TestQueue, _ id: JobID, queue: QueueName = .default) async throws -> [QueueEvent] {
        try await t.driver.events(of: queue, count: 100_000).filter { $0.jobID == id }
    }

    func expectEvents(_ t: TestQueue, _ id: JobID, _ names: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let list = try await events(t, id)
        #expect(list.map(\.event) == names, sourceLocation: sourceLocation)
        #expect(list.map(\.seq) == Array(1...max(1, list.count)).prefix(list.count).map { $0 }, "seq is gap-free from 1", sourceLocation: sourceLocation)
        if let job = try await t.driver.job(id) { #expect(job.seq == list.count, sourceLocation: sourceLocation) }
    }

    func claim(_ t: TestQueue, lease: Duration = .seconds(30)) async throws -> Lease? {
        try await t.driver.claim(from: [.default], worker: worker, lease: lease, wait: .zero)
    }

    /// Runs the scheduler until it has reaped something (leases that already ran out); returns how many it reaped.
    func reap(_ t: TestQueue) async throws -> Int {
        var reaped = 0
        try await eventually("an expired lease to be reaped") {
            reaped = try await t.driver.runScheduler(now: Date()).reaped
            return reaped > 0
        }
        return reaped
    }

    /// The delay each `retry_scheduled` event chose (its `runAt` minus the event's own time), in ms, oldest first.
    func retryDelays(_ t: TestQueue, of id: JobID? = nil, queue: QueueName = .default) async throws -> [Int64] {
        try await t.driver.events(of: queue, count: 100_000)
            .filter { $0.event == "retry_scheduled" && (id == nil || $0.jobID == id) }
            .compactMap { e in e.fields["runAt"].flatMap { Int64($0) }.map { $0 - e.at.millis } }
    }

    @Test func enqueueStoresThePendingJobAndItsEvent() async throws {
        try await withTestQueue { t in
            let job = Job(type: "email.send", payload: #"{"to":"a@b.c","n":[1,2]}"#, priority: .high, maxAttempts: 5,
                          timeout: .seconds(9), backoff: Backoff(base: .milliseconds(100), max: .seconds(1)))
            let result = try await t.driver.enqueue(job, actor: "req-1")
            #expect(result.isCreated)
            #expect(result.job.state == .pending)
            let stored = try #require(try await t.driver.job(job.id))
            #expect(stored.type == job.type && stored.payload == job.payload && stored.priority == .high)
            #expect(stored.maxAttempts == 5 && stored.timeout == .seconds(9) && stored.backoff == job.backoff)
            #expect(stored.state == .pending && stored.attempts == 0 && stored.seq == 1)
            #expect(stored.createdAt.millis == job.createdAt.millis)
            let list = try await events(t, job.id)
            #expect(list.count == 1)
            let e = try #require(list.first)
            #expect(e.event == "enqueued" && e.state == .pending && e.seq == 1 && e.actor == "req-1")
            #expect(e.fields["type"] == "email.send" && e.fields["payload"] == job.payload && e.fields["priority"] == "high")
            #expect(try await t.driver.queues() == [.default])
            #expect(try await t.driver.counts(.default).pending == 1)
        }
    }

    @Test func idempotentEnqueueReturnsTheFirstJob() async throws {
        try await withTestQueue { t in
            let first = try await t.driver.enqueue(Job(type: "a", idempotencyKey: "order-7"), actor: nil)
            let second = try await t.driver.enqueue(Job(type: "a", payload: "2", idempotencyKey: "order-7"), actor: nil)
            #expect(first.isCreated && !second.isCreated)
            #expect(second.job.id == first.job.id)
            #expect(try await t.driver.counts(.default).pending == 1)
            // The same id twice (a spooled job pushed again) is also a no-op.
            let again = try await t.driver.enqueue(first.job, actor: nil)
            #expect(!again.isCreated)
            #expect(try await t.driver.events(of: .default).count == 1)
            // Within a batch too.
            let batch = try await t.driver.enqueue([Job(type: "a", idempotencyKey: "k2"), Job(type: "a", idempotencyKey: "k2")], actor: nil)
            #expect(batch.map(\.isCreated) == [true, false])
            #expect(batch[0].job.id == batch[1].job.id)
        }
    }

    @Test func claimTakesStrictPriorityThenFIFO() async throws {
        try await withTestQueue { t in
            let jobs = [
                Job(type: "t", payload: "1", priority: .low), Job(type: "t", payload: "2"), Job(type: "t", payload: "3", priority: .critical),
                Job(type: "t", payload: "4"), Job(type: "t", payload: "5", priority: .high), Job(type: "t", payload: "6", priority: .critical),
                Job(type: "t", payload: "7"),
            ]
            _ = try await t.driver.enqueue(jobs, actor: nil)
            var order = [String]()
            while let lease = try await claim(t) { order.append(lease.job.payload) }
            #expect(order == ["3", "6", "5", "2", "4", "7", "1"])
        }
    }

    @Test func claimsFromSeveralQueuesTakeTheFirstWithWorkAndComeBackToAQueueAheadThatFills() async throws {
        try await withTestQueue { t in
            let queues: [QueueName] = ["first", "second", "third"]
            let (driver, worker) = (t.driver, worker)
            let claimOne = { () async throws -> QueueName? in
                try await driver.claim(from: queues, worker: worker, lease: .seconds(30), wait: .zero)?.job.queue
            }
            _ = try await t.driver.enqueue((0..<4).map { _ in Job(type: "t", queue: "third") }, actor: nil)
            #expect(try await claimOne() == "third", "the first queue with work")
            #expect(try await claimOne() == "third", "then straight to it (the claim remembers where work was)")
            // A queue ahead fills up: at most one more claim comes from the queue behind it.
            _ = try await t.driver.enqueue((0..<2).map { _ in Job(type: "t", queue: "first") }, actor: nil)
            let next = [try await claimOne(), try await claimOne()]
            #expect(next.contains("first") && next.last == "first", "precedence is back within one claim: \(next)")
            _ = try await claimOne()
            #expect(try await claimOne() == "third", "the first queue drained: the third again")
            #expect(try await claimOne() == nil, "all empty")
            _ = try await t.driver.enqueue([Job(type: "t", queue: "second")], actor: nil)
            #expect(try await claimOne() == "second")
        }
    }

    @Test func claimLeasesTheJobAndCompleteFinishesIt() async throws {
        try await withTestQueue(configure: { $0.completedTTL = .seconds(60) }) { t in
            let job = try await t.driver.enqueue(Job(type: "t"), actor: nil).job!
            let before = Date()
            let lease = try #require(try await claim(t, lease: .seconds(10)))
            #expect(lease.job.id == job.id && lease.attempt == 1 && lease.job.state == .active)
            #expect(lease.job.worker == worker && lease.job.startedAt != nil)
            #expect(lease.deadline >= before.addingTimeInterval(9.9), "the lease runs 10 s from the claim")
            #expect(try await t.driver.counts(.default).active == 1)
            try await t.driver.progress(lease, #"{"pct":50}"#)
            #expect(try await t.driver.job(job.id)?.progress == #"{"pct":50}"#)
            let renewed = try await t.driver.renew(lease, for: .seconds(20))
            #expect(renewed.deadline > lease.deadline)
            try await t.driver.complete(lease, result: #"{"ok":true}"#)
            let done = try #require(try await t.driver.job(job.id))
            #expect(done.state == .completed && done.result == #"{"ok":true}"# && done.finishedAt != nil)
            let ttl = try await t.redis.send("PTTL", RESPArgument(t.keys.queue(.default).job(job.id))).int ?? -1
            #expect(ttl > 0 && ttl <= 60_000)
            let counts = try await t.driver.counts(.default)
            #expect(counts.active == 0 && counts.completed == 1)
            try await expectEvents(t, job.id, ["enqueued", "started", "progress", "completed"])
            let completed = try #require(try await events(t, job.id).last)
            #expect(completed.fields["result"] == #"{"ok":true}"# && completed.worker == worker.rawValue)
            // The lease is spent: a second complete is refused.
            await #expect(throws: QueueError.self) { try await t.driver.complete(lease, result: nil) }
        }
    }

    @Test func batchClaimLeasesSeveralJobsWithTheirOwnTokens() async throws {
        try await withTestQueue { t in
            let ids = try await t.driver.enqueue((0..<5).map { Job(type: "t", payload: "\($0)") }, actor: nil).map(\.job.id)
            let leases = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero, max: 3)
            #expect(leases.map(\.job.id) == Array(ids.prefix(3)))
            #expect(Set(leases.map(\.token)).count == 3)
            for lease in leases { try await t.driver.complete(lease, result: nil) }
            let rest = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero, max: 10)
            #expect(rest.map(\.job.id) == Array(ids.suffix(2)))
            // A lease of the same worker from an earlier claim cannot complete a job it no longer holds.
            await #expect(throws: QueueError.self) { try await t.driver.complete(leases[0], result: nil) }
        }
    }

    @Test func oneCallCompletesFinishedJobsAndLeasesTheNext() async throws {
        try await withTestQueue { t in
            let ids = try await t.driver.enqueue((0..<6).map { Job(type: "t", payload: "\($0)") }, actor: nil).map(\.job.id)
            let other = try await t.driver.enqueue(Job(type: "t", queue: "other"), actor: nil).job!
            let first = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero, max: 3)
            let elsewhere = try await t.driver.claim(from: ["other"], worker: worker, lease: .seconds(30), wait: .zero, max: 1)
            // Two of this queue's jobs, one of another queue's and one stale lease (job 0 completed twice) in one call.
            let finished = [
                Completion(lease: first[0], result: #"{"n":0}"#), Completion(lease: first[1], result: nil),
                Completion(lease: elsewhere[0], result: "1"), Completion(lease: first[0], result: nil),
            ]
            let reply = try await t.driver.completeAndClaim(finished, from: [.default], worker: worker, lease: .seconds(30), max: 2)
            #expect(reply.completed == [true, true, true, false])
            #expect(reply.leases.map(\.job.id) == Array(ids[3..<5]))
            #expect(reply.leases.allSatisfy { $0.job.state == .active && $0.job.attempts == 1 && $0.job.seq == 2 })
            #expect(try await t.driver.job(ids[0])?.state == .completed)
            #expect(try await t.driver.job(ids[0])?.result == #"{"n":0}"#)
            #expect(try await t.driver.job(other.id)?.state == .completed)
            #expect(try await t.driver.job(ids[2])?.state == .active)
            let counts = try await t.driver.counts(.default)
            #expect(counts.completed == 2 && counts.active == 3 && counts.pending == 1)
            try await expectEvents(t, ids[0], ["enqueued", "started", "completed"])
            // With no room to lease, the call only completes.
            let done = try await t.driver.completeAndClaim([Completion(lease: first[2], result: nil)], from: [.default], worker: worker, lease: .seconds(30), max: 0)
            #expect(done.completed == [true] && done.leases.isEmpty)
            #expect(try await t.driver.complete(reply.leases.map { Completion(lease: $0, result: nil) }) == [true, true])
            #expect(try await t.driver.counts(.default).completed == 5)
        }
    }

    /// A large dead-letter queue is requeued in bounded slices: at most `limit` per call, oldest death first, with
    /// an exact count of what is left, with or without a type filter.
    @Test func deadJobsAreRequeuedInBoundedSlices() async throws {
        try await withTestQueue { t in
            let jobs = (0..<1_250).map { Job(type: $0 % 5 == 0 ? "rare" : "common", payload: "\($0)", maxAttempts: 1) }
            _ = try await t.driver.enqueue(jobs, actor: nil)
            while true {
                let leases = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero, max: 200)
                if leases.isEmpty { break }
                for lease in leases { _ = try await t.driver.fail(lease, error: "boom") }
            }
            #expect(try await t.driver.counts(.default).dead == 1_250)
            let rare = try await t.driver.requeueDead(queue: .default, type: "rare", limit: 100, actor: "test")
            #expect(rare.requeued == 100 && rare.remaining == 150)
            let all = try await t.driver.requeueDead(queue: nil, type: nil, limit: 700, actor: "test")
            #expect(all.requeued == 700 && all.remaining == 450)
            let rest = try await t.driver.requeueDead(queue: .default, type: nil, limit: 10_000, actor: "test")
            #expect(rest.requeued == 450 && rest.remaining == 0)
            let counts = try await t.driver.counts(.default)
            #expect(counts.dead == 0 && counts.pending == 1_250)
            // Oldest death first: the first requeued "rare" job is the first one that died.
            let first = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
            #expect(first.job.type == "rare" && first.job.payload == "0" && first.job.attempts == 1)
        }
    }

    @Test func delayedJobsArePromotedOnlyWhenDue() async throws {
        try await withTestQueue { t in
            let runAt = Date().addingTimeInterval(3600)
            let job = try await t.driver.enqueue(Job(type: "t", runAt: runAt), actor: nil).job!
            #expect(job.state == .scheduled)
            #expect(try await t.driver.job(job.id)?.state == .scheduled)
            #expect(try await claim(t) == nil)
            #expect(try await t.driver.runScheduler(now: Date()).promoted == 0)
            #expect(try await t.driver.runScheduler(now: runAt.addingTimeInterval(-1)).promoted == 0)
            #expect(try await t.driver.runScheduler(now: runAt).promoted == 1)
            #expect(try await t.driver.job(job.id)?.state == .pending)
            #expect(try await claim(t)?.job.id == job.id)
            try await expectEvents(t, job.id, ["enqueued", "promoted", "started"])
        }
    }

    @Test func failingRetriesWithBackoffThenGoesDead() async throws {
        try await withTestQueue(configure: { $0.deadTTL = .seconds(100) }) { t in
            let backoff = Backoff(base: .milliseconds(1000), max: .milliseconds(3000))
            let job = try await t.driver.enqueue(Job(type: "t", maxAttempts: 3, backoff: backoff), actor: nil).job!
            for attempt in 1...3 {
                let lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
                #expect(lease.attempt == attempt)
                let outcome = try await t.driver.fail(lease, error: "boom \(attempt)")
                if attempt < 3 {
                    guard case .retrying(let at) = outcome else { Issue.record("attempt \(attempt) should retry"); return }
                    // SPEC §2: min(max, base·2^(n-1)), jittered down by at most 20%: measured on the event itself
                    // (runAt minus the failure's time), so a slow machine cannot stretch it.
                    let expected = backoff.delay(afterAttempt: attempt).milliseconds
                    let delay = try #require(try await retryDelays(t, of: job.id).last)
                    #expect(delay <= expected && delay >= expected * 8 / 10, "attempt \(attempt) waits \(delay) ms of \(expected)")
                    let stored = try #require(try await t.driver.job(job.id))
                    #expect(stored.state == .retrying && stored.lastError == "boom \(attempt)" && stored.runAt == Date(millis: at.millis))
                    #expect(try await t.driver.counts(.default).retrying == 1)
                    // Not due yet: nothing to claim, nothing promoted.
                    #expect(try await t.driver.runScheduler(now: Date(millis: at.millis - 1)).promoted == 0)
                    #expect(try await t.driver.runScheduler(now: at).promoted == 1)
                } else {
                    #expect(outcome == .dead)
                }
            }
            let dead = try #require(try await t.driver.job(job.id))
            #expect(dead.state == .dead && dead.attempts == 3 && dead.lastError == "boom 3")
            let counts = try await t.driver.counts(.default)
            #expect(counts.dead == 1 && counts.failed == 3 && counts.retrying == 0)
            try await expectEvents(t, job.id, [
                "enqueued", "started", "failed", "retry_scheduled", "promoted", "started", "failed", "retry_scheduled",
                "promoted", "started", "failed", "dead",
            ])
            let ttl = try await t.redis.send("PTTL", RESPArgument(t.keys.queue(.default).job(job.id))).int ?? -1
            #expect(ttl > 0 && ttl <= 100_000)
        }
    }

    @Test func backoffFollowsTheSpec() {
        let b = Backoff.default
        #expect(b.delay(afterAttempt: 1) == .seconds(2))
        #expect(b.delay(afterAttempt: 2) == .seconds(4))
        #expect(b.delay(afterAttempt: 8) == .seconds(256))
        #expect(b.delay(afterAttempt: 9) == .seconds(300))
        #expect(b.delay(afterAttempt: 60) == .seconds(300))
    }

    /// Without jitter every job failing its first attempt would wait exactly `base`: the delays must differ
    /// from job to job and from attempt to attempt, each within [0.8·d, d].
    @Test func retryDelaysAreJitteredWithinTheBackoff() async throws {
        try await withTestQueue { t in
            let backoff = Backoff(base: .seconds(60), max: .seconds(3600))
            let d = backoff.delay(afterAttempt: 1).milliseconds
            let count = 24
            _ = try await t.driver.enqueue((0..<count).map { _ in Job(type: "t", maxAttempts: 5, backoff: backoff) }, actor: nil)
            let leases = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(60), wait: .zero, max: count)
            #expect(leases.count == count)
            for lease in leases { _ = try await t.driver.fail(lease, error: "boom") }
            let delays = try await retryDelays(t)
            #expect(delays.count == count)
            for delay in delays { #expect(delay >= d * 8 / 10 && delay <= d, "\(delay) ms outside [0.8·\(d), \(d)]") }
            // 24 draws from 12,000 possible delays: all alike only without jitter.
            #expect(Set(delays).count >= count / 2, "delays vary: \(delays.sorted())")
            #expect(delays.max()! - delays.min()! >= d / 100, "delays spread over the jitter range: \(delays.sorted())")

            // One job (in a queue of its own) through several attempts: each delay within its own doubled range,
            // and not all at one fraction of it.
            let solo: QueueName = "solo"
            let id = try await t.driver.enqueue(Job(type: "t", queue: solo, maxAttempts: 5, backoff: backoff), actor: nil).id
            var fractions = [Double]()
            for attempt in 1...4 {
                if attempt > 1 {
                    let runAt = try #require(try await t.driver.job(id)?.runAt, "job \(id) retrying before attempt \(attempt)")
                    #expect(try await t.driver.runScheduler(now: runAt).promoted >= 1)
                }
                let lease = try #require(try await t.driver.claim(from: [solo], worker: worker, lease: .seconds(60), wait: .zero))
                #expect(lease.job.id == id && lease.attempt == attempt)
                _ = try await t.driver.fail(lease, error: "boom \(attempt)")
                let expected = backoff.delay(afterAttempt: attempt).milliseconds
                let delay = try #require(try await retryDelays(t, of: id, queue: solo).last)
                #expect(delay >= expected * 8 / 10 && delay <= expected, "attempt \(attempt): \(delay) ms of \(expected)")
                fractions.append(Double(delay) / Double(expected))
            }
            #expect(Set(fractions).count > 1, "each attempt draws its own jitter: \(fractions)")
        }
    }

    /// Leases reaped in one scheduler pass share one timestamp; their retries must still spread out.
    @Test func leasesReapedTogetherRetryAtDifferentTimes() async throws {
        try await withTestQueue { t in
            let backoff = Backoff(base: .seconds(60), max: .seconds(60))
            let d = backoff.delay(afterAttempt: 1).milliseconds
            _ = try await t.driver.enqueue((0..<6).map { _ in Job(type: "t", maxAttempts: 2, backoff: backoff) }, actor: nil)
            #expect(try await t.driver.claim(from: [.default], worker: worker, lease: .milliseconds(1), wait: .zero, max: 6).count == 6)
            #expect(try await reap(t) == 6)
            let delays = try await retryDelays(t)
            #expect(delays.count == 6)
            for delay in delays { #expect(delay >= d * 8 / 10 && delay <= d, "\(delay) ms outside [0.8·\(d), \(d)]") }
            #expect(Set(delays).count == 6, "each reaped job gets its own delay: \(delays.sorted())")
        }
    }

    /// Several claimers take batches of different sizes at once. Redis runs each claim atomically, so the
    /// order of the `started` events in the stream is the global claim order: it must be strict priority, FIFO
    /// within a level, with every job leased exactly once.
    @Test func concurrentBatchClaimsKeepStrictPriority() async throws {
        try await withTestQueue { t in
            let priorities: [Priority] = [.low, .normal, .high, .critical]
            var jobs = [Job]()
            var generator = SystemRandomNumberGenerator()
            for i in 0..<400 { jobs.append(Job(type: "t", payload: "\(i)", priority: priorities.randomElement(using: &generator)!)) }
            // Enqueued in order (one pipeline per chunk, chunks one after another): FIFO is this order.
            for chunk in stride(from: 0, to: jobs.count, by: 100) {
                _ = try await t.driver.enqueue(Array(jobs[chunk..<min(chunk + 100, jobs.count)]), actor: nil)
            }
            let band: (Priority) -> Int = { p in [.critical: 0, .high: 1, .normal: 2, .low: 3][p]! }
            let expected = jobs.enumerated().sorted { (band($0.element.priority), $0.offset) < (band($1.element.priority), $1.offset) }.map(\.element.id)

            let drivers = (0..<6).map { _ in t.sibling() }
            defer { for d in drivers { d.redis.shutdown() } }
            let batches = try await withThrowingTaskGroup(of: [[JobID]].self) { group in
                for (n, driver) in drivers.enumerated() {
                    group.addTask {
                        var mine = [[JobID]]()
                        let me = WorkerID(rawValue: "w\(n)")
                        while true {
                            let leases = try await driver.claim(from: [.default], worker: me, lease: .seconds(60), wait: .zero, max: 1 + (n + mine.count) % 7)
                            if leases.isEmpty { break }
                            mine.append(leases.map(\.job.id))
                            for lease in leases { try await driver.complete(lease, result: nil) }
                        }
                        return mine
                    }
                }
                var all = [[JobID]]()
                for try await part in group { all += part }
                return all
            }
            let claimed = batches.flatMap { $0 }
            #expect(claimed.count == jobs.count && Set(claimed) == Set(jobs.map(\.id)), "every job leased exactly once")
            #expect(batches.count > drivers.count, "the claimers took several batches each")
            let position = Dictionary(uniqueKeysWithValues: expected.enumerated().map { ($0.element, $0.offset) })
            for batch in batches {
                #expect(batch.map { position[$0]! } == batch.map { position[$0]! }.sorted(), "a batch is in priority order")
            }
            let started = try await t.driver.events(of: .default, count: 100_000).filter { $0.event == "started" }.map(\.jobID)
            #expect(started == expected, "the global claim order is strict priority, FIFO within a level")
        }
    }

    @Test func expiredLeasesCountAsFailedAttempts() async throws {
        try await withTestQueue { t in
            let job = try await t.driver.enqueue(Job(type: "t", maxAttempts: 2, backoff: Backoff(base: .milliseconds(10), max: .milliseconds(10))), actor: nil).job!
            let lease = try #require(try await claim(t, lease: .seconds(60)))
            #expect(try await t.driver.runScheduler(now: Date()).reaped == 0, "a live lease is never reaped")
            // The holder goes silent: its lease, renewed for 1 ms, runs out whatever clock it runs on.
            _ = try await t.driver.renew(lease, for: .milliseconds(1))
            #expect(try await reap(t) == 1)
            let stored = try #require(try await t.driver.job(job.id))
            #expect(stored.state == .retrying && stored.lastError == "lease expired")
            // The old holder can no longer touch the job.
            await #expect(throws: QueueError.self) { try await t.driver.complete(lease, result: nil) }
            await #expect(throws: QueueError.self) { _ = try await t.driver.renew(lease, for: .seconds(1)) }
            // Second expiry exhausts maxAttempts.
            try await eventually("the retry to be promoted") { try await t.driver.runScheduler(now: Date()).promoted == 1 }
            let second = try #require(try await claim(t, lease: .seconds(60)))
            #expect(second.attempt == 2)
            _ = try await t.driver.renew(second, for: .milliseconds(1))
            #expect(try await reap(t) == 1)
            #expect(try await t.driver.job(job.id)?.state == .dead)
            try await expectEvents(t, job.id, [
                "enqueued", "started", "lease_expired", "retry_scheduled", "promoted", "started", "lease_expired", "dead",
            ])
        }
    }

    @Test func releaseGivesTheJobBackWithoutAnAttempt() async throws {
        try await withTestQueue { t in
            let job = try await t.driver.enqueue(Job(type: "t"), actor: nil).job!
            let lease = try #require(try await claim(t))
            try await t.driver.release(lease)
            let stored = try #require(try await t.driver.job(job.id))
            #expect(stored.state == .pending && stored.attempts == 0 && stored.worker == nil)
            let again = try #require(try await claim(t))
            #expect(again.attempt == 1)
            await #expect(throws: QueueError.self) { try await t.driver.release(lease) == () }
            try await expectEvents(t, job.id, ["enqueued", "started", "released", "started"])
        }
    }

    @Test func cancelOnlyWaitingJobs() async throws {
        try await withTestQueue { t in
            let pending = try await t.driver.enqueue(Job(type: "t"), actor: nil).job!
            let scheduled = try await t.driver.enqueue(Job(type: "t", runAt: Date().addingTimeInterval(60)), actor: nil).job!
            let active = try await t.driver.enqueue(Job(type: "t"), actor: nil).job!

            let c1 = try await t.driver.cancel(pending.id, queue: nil, actor: "ops")
            #expect(c1.state == .cancelled && c1.finishedAt != nil)
            #expect(try await t.driver.cancel(scheduled.id, queue: .default, actor: nil).state == .cancelled)
            #expect(try await t.driver.runScheduler(now: Date().addingTimeInterval(120)).promoted == 0)

            let lease = try #require(try await claim(t))
            #expect(lease.job.id == active.id)
            do {
                _ = try await t.driver.cancel(active.id, queue: nil, actor: nil)
                Issue.record("an active job cannot be cancelled")
            } catch let error as QueueError {
                #expect(error.code == .conflict && error.state == .active)
            }
            try await t.driver.complete(lease, result: nil)
            await #expect(throws: QueueError.self) { _ = try await t.driver.cancel(active.id, queue: nil, actor: nil) }
            do {
                _ = try await t.driver.cancel(JobID.make(), queue: nil, actor: nil)
                Issue.record("unknown job")
            } catch let error as QueueError {
                #expect(error.code == .notFound)
            }
            // A second cancel of a cancelled job is a conflict too.
            await #expect(throws: QueueError.self) { _ = try await t.driver.cancel(pending.id, queue: nil, actor: nil) }
            try await expectEvents(t, pending.id, ["enqueued", "cancelled"])
            #expect(try await events(t, pending.id).last?.actor == "ops")
            let counts = try await t.driver.counts(.default)
            #expect(counts.pending == 0 && counts.scheduled == 0)
        }
    }

    @Test func requeueBringsDeadAndCancelledJobsBack() async throws {
        try await withTestQueue { t in
            let doomed = try await t.driver.enqueue(Job(type: "t", maxAttempts: 1), actor: nil).job!
            let lease = try #require(try await claim(t))
            #expect(try await t.driver.fail(lease, error: "x") == .dead)
            let requeued = try await t.driver.requeue(doomed.id, queue: nil, actor: "ops")
            #expect(requeued.state == .pending && requeued.attempts == 0)
            let pttl = try await t.redis.send("PTTL", RESPArgument(t.keys.queue(.default).job(doomed.id))).int
            #expect(pttl == -1, "a requeued job no longer expires")
            #expect(try await t.driver.counts(.default).dead == 0)
            do {
                _ = try await t.driver.requeue(doomed.id, queue: nil, actor: nil)
                Issue.record("a pending job cannot be requeued")
            } catch let error as QueueError {
                #expect(error.code == .conflict && error.state == .pending)
            }
            _ = try await t.driver.cancel(doomed.id, queue: nil, actor: nil)
            #expect(try await t.driver.requeue(doomed.id, queue: nil, actor: nil).state == .pending)
            #expect(try await claim(t)?.attempt == 1)
            try await expectEvents(t, doomed.id, ["enqueued", "started", "failed", "dead", "requeued", "cancelled", "requeued", "started"])
            await #expect(throws: QueueError.self) { _ = try await t.driver.requeue(JobID.make(), queue: nil, actor: nil) }
        }
    }

    @Test func deadLetterPagesWalkJobsThatDiedInTheSameMillisecond() async throws {
        try await withTestQueue { t in
            let jobs = (0..<7).map { _ in Job(type: "t", maxAttempts: 1) }
            _ = try await t.driver.enqueue(jobs, actor: nil)
            // One claim gives all seven the same 1 ms lease, so the first reap after it ran out takes all
            // seven at once: one timestamp.
            #expect(try await t.driver.claim(from: [.default], worker: worker, lease: .milliseconds(1), wait: .zero, max: 7).count == 7)
            #expect(try await reap(t) == 7)
            var seen = [JobID]()
            var cursor: String?
            repeat {
                let page = try await t.driver.deadJobs(queue: nil, limit: 2, after: cursor)
                seen += page.jobs.map(\.id)
                cursor = page.next
            } while cursor != nil && seen.count < 20
            #expect(Set(seen) == Set(jobs.map(\.id)) && seen.count == 7)
        }
    }

    @Test func pauseStopsClaimsNotEnqueues() async throws {
        try await withTestQueue { t in
            try await t.driver.pause(.default)
            _ = try await t.driver.enqueue(Job(type: "t"), actor: nil)
            #expect(try await t.driver.counts(.default).paused)
            #expect(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(5), wait: .milliseconds(50)) == nil)
            try await t.driver.resume(.default)
            #expect(try await t.driver.counts(.default).paused == false)
            #expect(try await claim(t) != nil)
        }
    }

    @Test func blockedClaimWakesForANewJob() async throws {
        try await withTestQueue { t in
            let other = t.sibling()
            defer { other.redis.shutdown() }
            async let claimed = other.claim(from: ["q1", .default], worker: worker, lease: .seconds(5), wait: .seconds(60))
            // Wait until the claimer is blocked on the wake list, then enqueue.
            try await eventually("the claimer to block") {
                (try await t.redis.send("CLIENT", "LIST").string ?? "").contains("cmd=blpop")
            }
            let job = try await t.driver.enqueue(Job(type: "t"), actor: nil).job!
            let lease = try await claimed
            #expect(lease?.job.id == job.id)
        }
    }

    @Test func claimWithAWaitReturnsNilWhenNothingArrives() async throws {
        try await withTestQueue { t in
            let lease = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(5), wait: .milliseconds(100))
            #expect(lease == nil)
        }
    }

    @Test func jobsAreLookedUpAcrossQueues() async throws {
        try await withTestQueue { t in
            let a = try await t.driver.enqueue(Job(type: "t", queue: "emails"), actor: nil).job!
            let b = try await t.driver.enqueue(Job(type: "t", queue: "reports"), actor: nil).job!
            #expect(try await t.driver.job(a.id)?.queue == "emails")
            #expect(try await t.driver.job(b.id, queue: "reports")?.id == b.id)
            #expect(try await t.driver.job(b.id, queue: "emails") == nil)
            #expect(try await t.driver.queues() == ["emails", "reports"])
            #expect(try await t.driver.cancel(b.id, queue: nil, actor: nil).state == .cancelled)
        }
    }

    @Test func scriptsRecoverFromAnEmptyScriptCache() async throws {
        // A server of its own: a flushed script cache makes other tests' pipelined scripts re-run out of order.
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            _ = try await t.driver.enqueue(Job(type: "t"), actor: nil)
            _ = try await t.redis.send("SCRIPT", "FLUSH")
            _ = try await t.driver.enqueue(Job(type: "t"), actor: nil)
            #expect(try await t.driver.counts(.default).pending == 2)
        }
    }

    @Test func scriptHeadersMatchTheirKeyCounts() {
        for script in Scripts.all {
            let header = script.body.split(separator: "\n").prefix { $0.hasPrefix("--") }.joined(separator: "\n")
            let keys = header.matches(of: /KEYS\[(\d+)\]/).compactMap { Int($0.1) }
            #expect(keys.max() == script.keyCount, "\(script.name).lua header")
            #expect(script.body.hasPrefix("-- \(script.name).lua:"), "\(script.name).lua names itself")
        }
    }
}
