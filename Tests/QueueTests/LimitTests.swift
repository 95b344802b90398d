import DocketQueue
import DocketTestSupport
import Foundation
import Synchronization
import Testing

/// Rate and concurrency limits (SPEC §8), enforced inside claim.lua against a real Redis.
@Suite("Limits", .timeLimit(.minutes(1)))
struct LimitTests {
    let worker = WorkerID(rawValue: "w-limit")

    func claim(_ t: TestQueue, max: Int = 16, queue: QueueName = .default) async throws -> [Lease] {
        try await t.driver.claim(from: [queue], worker: worker, lease: .seconds(30), wait: .zero, max: max)
    }

    @Test func concurrencyHoldsJobsBackWithoutChargingThemAndFreesSlotsAsJobsFinish() async throws {
        try await withTestQueue { t in
            #expect(try await t.driver.addLimit(Limit(name: "two-reports", type: "report", concurrency: 2)))
            #expect(try await t.driver.addLimit(Limit(name: "two-reports", concurrency: 5)) == false, "names are unique")
            let jobs = (0..<6).map { Job(type: "report", payload: "\($0)") } + [Job(type: "other")]
            _ = try await t.driver.enqueue(jobs, actor: nil)
            let first = try await claim(t)
            #expect(first.map(\.job.payload) == ["0", "1", "null"], "two reports, and the job no limit matches: \(first.map(\.job.payload))")
            #expect(try await claim(t).isEmpty, "both slots taken")
            #expect(try await claim(t).isEmpty)
            let held = try #require(try await t.driver.job(jobs[2].id))
            #expect(held.state == .pending && held.attempts == 0, "held back: pending, not charged an attempt")
            let history = try await t.driver.events(of: .default, count: 1000).filter { $0.jobID == jobs[2].id }
            #expect(history.map(\.event) == ["enqueued", "held"], "held once, however many claims passed it: \(history.map(\.event))")
            #expect(history.last?.fields["detail"] == "two-reports" && history.map(\.seq) == [1, 2])
            try await t.driver.complete(first[0], result: nil)
            let next = try await claim(t)
            #expect(next.map(\.job.payload) == ["2"], "a slot came back: the next in FIFO order")
            #expect(try await t.driver.events(of: .default, count: 1000).filter { $0.jobID == jobs[2].id }.map(\.event) == ["enqueued", "held", "started"])
            // A killed worker's slot returns with its lease.
            _ = try await t.driver.renew(first[1], for: .milliseconds(1))
            try await eventually("the expired lease to be reaped") { try await t.driver.runScheduler(now: Date()).reaped > 0 }
            #expect(try await claim(t).map(\.job.payload) == ["3"])
            #expect(try await t.driver.deleteLimit("two-reports"))
        }
    }

    @Test func perKeyAndRateLimits() async throws {
        try await withTestQueue { t in
            _ = try await t.driver.addLimit(Limit(name: "one-per-customer", queue: "sync", key: "/customer/id", concurrency: 1))
            let jobs = [42, 42, 7, 7, 42].map { Job(type: "sync", payload: #"{"customer":{"id":\#($0)}}"#, queue: "sync") }
            _ = try await t.driver.enqueue(jobs, actor: nil)
            let leased = try await claim(t, queue: "sync")
            #expect(leased.map(\.job.id) == [jobs[0].id, jobs[2].id], "one per customer")
            _ = try await t.driver.enqueue(Job(type: "sync", payload: #"{"customer":{"id":42}}"#), actor: nil)
            #expect(try await claim(t).count == 1, "the limit names queue sync: the default queue is not limited")

            _ = try await t.driver.addLimit(Limit(name: "three-an-hour", queue: "mail", rateLimit: 3, ratePerMs: 3_600_000))
            _ = try await t.driver.enqueue((0..<5).map { _ in Job(type: "mail", queue: "mail") }, actor: nil)
            #expect(try await claim(t, queue: "mail").count == 3)
            for lease in try await claim(t, queue: "mail") { Issue.record("over the rate: \(lease.job.id)") }
            #expect(try await t.driver.counts("mail").pending == 2)
        }
    }

    @Test func sixteenClaimersNeverRunMoreThanTheLimitAtOnce() async throws {
        try await withTestQueue { t in
            _ = try await t.driver.addLimit(Limit(name: "three", concurrency: 3))
            _ = try await t.driver.enqueue((0..<60).map { Job(type: "t", payload: "\($0)") }, actor: nil)
            final class Count: Sendable { let value = Atomic<Int>(0) }
            let done = Count()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<16 {
                    group.addTask {
                        let worker = WorkerID(rawValue: "w\(w)")
                        let deadline = ContinuousClock.now + .seconds(40)
                        while done.value.load(ordering: .relaxed) < 60, ContinuousClock.now < deadline {
                            let leases = try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .milliseconds(50), max: 4)
                            for lease in leases {
                                try await Task.sleep(for: .milliseconds(2))
                                try await t.driver.complete(lease, result: nil)
                                done.value.add(1, ordering: .relaxed)
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(done.value.load(ordering: .relaxed) == 60)
            // The stream (what every journal ingests) in order: never more than 3 between a start and its completion.
            var running = 0, most = 0
            for event in try await t.driver.events(of: .default, count: 100_000) {
                if event.event == "started" { running += 1 }
                if event.event == "completed" { running -= 1 }
                most = max(most, running)
            }
            #expect(most == 3, "at most 3 at once, and the limit was reached")
        }
    }
}
