import DocketQueue
import DocketTestSupport
import DocketWorker
import Foundation
import Synchronization
import Testing

/// The worker pool in process against a real Redis: handlers, retries, timeouts, limits, progress, leases.
/// Leases are long (30 s, or 6 s where renewal is the point): a busy machine pausing the process for a
/// moment must never get a live job reaped. Nothing here depends on how fast the machine is.
@Suite("Worker pool", .timeLimit(.minutes(1)))
struct WorkerPoolTests {
    static let fastRetry = Backoff(base: .milliseconds(10), max: .milliseconds(20))

    func pool(_ t: TestQueue, concurrency: Int = 4, lease: Duration = .seconds(30), register: (inout HandlerRegistry) -> Void = { _ in })
        -> WorkerPool
    {
        var handlers = HandlerRegistry()
        Builtins.register(into: &handlers)
        register(&handlers)
        var config = WorkerPool.Configuration()
        config.concurrency = concurrency
        config.lease = lease
        config.claimWait = .milliseconds(500)
        config.shutdownGrace = .seconds(5)
        return WorkerPool(driver: t.driver, handlers: handlers, configuration: config, logger: TestQueue.logger)
    }

    func scheduler(_ t: TestQueue) -> QueueScheduler {
        QueueScheduler(driver: t.driver, interval: .milliseconds(20), logger: TestQueue.logger)
    }

    @Test func handlerResultCompletesTheJob() async throws {
        try await withTestQueue { t in
            let p = pool(t) { $0.register("greet", payload: [String: String].self) { payload, _ in ["hello": payload["name"] ?? "?"] } }
            try await withRunningServices([p]) {
                let echo = try await t.driver.enqueue(Job(type: "docket.echo", payload: #"{"a":[1,2,3]}"#), actor: nil).job!
                let greet = try await t.driver.enqueue(Job(type: "greet", payload: #"{"name":"ada"}"#), actor: nil).job!
                let noop = try await t.driver.enqueue(Job(type: "docket.noop"), actor: nil).job!
                let e = try await t.finished(echo.id)
                #expect(e.state == .completed && e.result == #"{"a":[1,2,3]}"# && e.attempts == 1)
                #expect(try await t.finished(greet.id).result == #"{"hello":"ada"}"#)
                let n = try await t.finished(noop.id)
                #expect(n.state == .completed && n.result == nil)
            }
        }
    }

    @Test func thrownErrorRetriesWithBackoffThenCompletes() async throws {
        try await withTestQueue { t in
            try await withRunningServices([scheduler(t), pool(t)]) {
                let job = try await t.driver.enqueue(
                    Job(type: "docket.fail", payload: #"{"times":2}"#, maxAttempts: 3, backoff: Self.fastRetry), actor: nil
                ).job!
                let done = try await t.finished(job.id)
                #expect(done.state == .completed && done.attempts == 3)
                #expect(done.result == #"{"succeededOnAttempt":3}"#)
                #expect(done.lastError == "docket.fail: attempt 2 failed on purpose")
                let events = try await t.driver.events(of: .default).filter { $0.jobID == job.id }.map(\.event)
                #expect(events.filter { $0 == "failed" }.count == 2 && events.filter { $0 == "retry_scheduled" }.count == 2)
            }
        }
    }

    @Test func alwaysFailingGoesDeadWithTheLastError() async throws {
        try await withTestQueue { t in
            try await withRunningServices([scheduler(t), pool(t)]) {
                let job = try await t.driver.enqueue(Job(type: "docket.fail", maxAttempts: 2, backoff: Self.fastRetry), actor: nil).job!
                let dead = try await t.finished(job.id)
                #expect(dead.state == .dead && dead.attempts == 2)
                #expect(dead.lastError == "docket.fail: attempt 2 failed on purpose")
                #expect(try await t.driver.counts(.default).dead == 1)
            }
        }
    }

    @Test func timeoutFailsTheAttempt() async throws {
        try await withTestQueue { t in
            try await withRunningServices([scheduler(t), pool(t)]) {
                let job = try await t.driver.enqueue(
                    Job(type: "docket.sleep", payload: #"{"ms":60000}"#, maxAttempts: 1, timeout: .milliseconds(150)), actor: nil
                ).job!
                let dead = try await t.finished(job.id)
                #expect(dead.state == .dead && dead.lastError == "timed out after 150ms")
            }
        }
    }

    @Test func unknownTypeFailsIntoTheDeadLetterQueue() async throws {
        try await withTestQueue { t in
            let job = try await t.driver.enqueue(Job(type: "nobody.home", maxAttempts: 2, backoff: Self.fastRetry), actor: nil).job!
            try await withRunningServices([scheduler(t), pool(t)]) {
                let dead = try await t.finished(job.id)
                #expect(dead.state == .dead && dead.attempts == 2)
                #expect(dead.lastError == #"no handler for type "nobody.home""#)
            }
            // Requeued once a handler exists, it runs.
            _ = try await t.driver.requeue(job.id, queue: nil, actor: nil)
            let p = pool(t) { $0.register("nobody.home") { _ in #""found""# } }
            try await withRunningServices([p]) {
                let done = try await t.finished(job.id)
                #expect(done.state == .completed && done.result == #""found""#)
            }
        }
    }

    /// Enough jobs are queued and every handler holds its slot until the gate opens, so the pool must fill
    /// exactly `concurrency` slots (not fewer), and never take more: the rest stay pending in Redis.
    @Test(arguments: [1, 3])
    func concurrencyIsFilledAndNeverExceeded(concurrency: Int) async throws {
        try await withTestQueue { t in
            let running = Atomic<Int>(0)
            let peak = Atomic<Int>(0)
            let gate = Atomic<Bool>(false)
            let p = pool(t, concurrency: concurrency) {
                $0.register("hold") { _ in
                    let now = running.add(1, ordering: .sequentiallyConsistent).newValue
                    _ = peak.max(now, ordering: .sequentiallyConsistent)
                    while !gate.load(ordering: .sequentiallyConsistent) { try await Task.sleep(for: .milliseconds(5)) }
                    running.subtract(1, ordering: .sequentiallyConsistent)
                    return nil
                }
            }
            let total = concurrency * 4 + 3
            try await withRunningServices([p]) {
                // A timeout far beyond the test: only the gate ends a handler.
                let ids = try await t.driver.enqueue((0..<total).map { _ in Job(type: "hold", timeout: .seconds(600)) }, actor: nil).map(\.job.id)
                try await eventually("\(concurrency) jobs to run at once") { running.load(ordering: .sequentiallyConsistent) >= concurrency }
                #expect(running.load(ordering: .sequentiallyConsistent) == concurrency, "no more than \(concurrency) at once")
                let held = try await t.driver.counts(.default)
                #expect(held.active == concurrency && held.pending == total - concurrency, "\(held)")
                #expect(p.running == concurrency)
                gate.store(true, ordering: .sequentiallyConsistent)
                for id in ids { #expect(try await t.finished(id).state == .completed) }
            }
            #expect(peak.load(ordering: .sequentiallyConsistent) == concurrency, "handlers ran exactly \(concurrency) at once at most")
            #expect(p.peakRunning == concurrency)
        }
    }

    /// Outcomes ride with the next claim (and are recorded by the jobs themselves while the pool waits for work):
    /// every job ends completed once, with one attempt and a gap-free history, however the calls were batched.
    @Test func aBusyPoolRecordsEveryOutcomeOnce() async throws {
        try await withTestQueue { t in
            let p = pool(t, concurrency: 16) {
                $0.register("maybe-sleep") { context in
                    if context.payload.hasSuffix("0") { try await Task.sleep(for: .milliseconds(5)) }
                    return context.payload
                }
            }
            let total = 400
            try await withRunningServices([p]) {
                let ids = try await t.driver.enqueue((0..<total).map { Job(type: "maybe-sleep", payload: "\($0)") }, actor: nil).map(\.job.id)
                try await eventually("every job to complete") { try await t.driver.counts(.default).completed == total }
                let events = try await t.driver.events(of: .default, count: 10 * total)
                for (n, id) in ids.enumerated() {
                    let job = try #require(try await t.driver.job(id))
                    #expect(job.state == .completed && job.attempts == 1 && job.result == "\(n)")
                    #expect(events.filter { $0.jobID == id }.map(\.event) == ["enqueued", "started", "completed"])
                }
                // A few more after the pool went idle: recorded while the claim loop blocks for new work.
                let late = try await t.driver.enqueue((0..<5).map { Job(type: "maybe-sleep", payload: "\($0)") }, actor: nil).map(\.job.id)
                for id in late { #expect(try await t.finished(id).state == .completed) }
            }
            #expect(try await t.driver.counts(.default).completed == total + 5)
        }
    }

    @Test func progressAndHeartbeatAreVisible() async throws {
        try await withTestQueue { t in
            let release = Atomic<Bool>(false)
            // A lease renewed by heartbeat (every lease / 3 = 2 s): the job outlives its first lease and is
            // never reaped, though the scheduler looks for expired leases every 20 ms.
            let p = pool(t, lease: .seconds(6)) {
                $0.register("long") { context in
                    try await context.progress(["done": 1, "total": 2])
                    try await context.heartbeat()
                    while !release.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(10)) }
                    return nil
                }
            }
            try await withRunningServices([scheduler(t), p]) {
                let job = try await t.driver.enqueue(Job(type: "long", timeout: .seconds(600)), actor: nil).job!
                var first: Job?
                try await eventually("progress to show") {
                    first = try await t.driver.job(job.id)
                    return first?.progress == #"{"done":1,"total":2}"# || first?.progress == #"{"total":2,"done":1}"#
                }
                var lease = try #require(first?.leaseUntil)
                var renewals = 0
                try await eventually(timeout: .seconds(40), "the lease to be renewed twice") {
                    guard let now = try await t.driver.job(job.id)?.leaseUntil else { return false }
                    if now > lease {
                        renewals += 1
                        lease = now
                    }
                    return renewals >= 2
                }
                #expect(try await t.driver.job(job.id)?.state == .active)
                release.store(true, ordering: .relaxed)
                let done = try await t.finished(job.id)
                #expect(done.state == .completed && done.attempts == 1, "never reaped while heartbeating")
                let events = try await t.driver.events(of: .default).filter { $0.jobID == job.id }.map(\.event)
                #expect(!events.contains("lease_expired"), "\(events)")
            }
        }
    }

    @Test func theLastCoalescedProgressIsKept() async throws {
        try await withTestQueue { t in
            let p = pool(t) {
                $0.register("count") { context in
                    for i in 1...50 { try await context.progress(i) }  // all within 250 ms: coalesced
                    return nil
                }
            }
            try await withRunningServices([p]) {
                let job = try await t.driver.enqueue(Job(type: "count"), actor: nil).job!
                let done = try await t.finished(job.id)
                #expect(done.state == .completed && done.progress == "50")
            }
        }
    }

    @Test func workersRegisterThemselves() async throws {
        try await withTestQueue { t in
            let p = pool(t, concurrency: 7)
            try await withRunningServices([p]) {
                try await eventually("the worker to register") { try await t.driver.workers().count == 1 }
                let info = try #require(try await t.driver.workers().first)
                #expect(info.id == p.configuration.workerID.rawValue && info.concurrency == 7 && info.queues == ["default"])
                #expect(info.pid == Int(ProcessInfo.processInfo.processIdentifier))
            }
            #expect(try await t.driver.workers().isEmpty, "unregistered on shutdown")
        }
    }
}
