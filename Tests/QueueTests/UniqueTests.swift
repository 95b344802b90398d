import DocketQueue
import DocketTestSupport
import Foundation
import Testing

/// Unique jobs (SPEC §8): refused while a job holding the key is in the states `while` names.
@Suite("Unique jobs", .timeLimit(.minutes(1)))
struct UniqueTests {
    let worker = WorkerID(rawValue: "w-unique")

    func job(_ key: String, _ mode: UniqueKey.While) -> Job {
        var job = Job(type: "t", payload: #"{"customer":42}"#)
        job.unique = UniqueKey(key: key, while: mode)
        return job
    }

    func holder(_ result: EnqueueResult) -> JobID? {
        if case .uniqueConflict(_, let holder) = result { return holder }
        return nil
    }

    @Test func untilCompleteRefusesWhileTheHolderWaitsOrRuns() async throws {
        try await withTestQueue { t in
            let first = try #require(try await t.driver.enqueue(job("sync-42", .untilComplete), actor: nil).job)
            #expect(first.unique == UniqueKey(key: "sync-42", while: .untilComplete))
            #expect(try await t.driver.job(first.id)?.unique?.key == "sync-42", "kept in the job's hash")
            #expect(holder(try await t.driver.enqueue(job("sync-42", .untilComplete), actor: nil)) == first.id, "pending: refused")
            #expect(try await t.driver.enqueue(job("sync-43", .untilComplete), actor: nil).isCreated, "another key is free")
            let lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
            #expect(lease.job.id == first.id)
            #expect(holder(try await t.driver.enqueue(job("sync-42", .untilComplete), actor: nil)) == first.id, "active: refused")
            try await t.driver.complete(lease, result: nil)
            #expect(try await t.driver.enqueue(job("sync-42", .untilComplete), actor: nil).isCreated, "completed: free again")
            // A batch: the second job with the key is refused, the rest created.
            let results = try await t.driver.enqueue([job("batch", .pending), job("batch", .pending), Job(type: "t")], actor: nil)
            #expect(results[0].isCreated && holder(results[1]) == results[0].id && results[2].isCreated)
        }
    }

    @Test func pendingAndActiveModesLookOnlyAtTheirStates() async throws {
        try await withTestQueue { t in
            // while pending: a running holder does not block.
            let a = try #require(try await t.driver.enqueue(job("p", .pending), actor: nil).job)
            #expect(holder(try await t.driver.enqueue(job("p", .pending), actor: nil)) == a.id)
            let lease = try #require(try await t.driver.claim(from: [.default], worker: worker, lease: .seconds(30), wait: .zero))
            #expect(lease.job.id == a.id)
            let b = try #require(try await t.driver.enqueue(job("p", .pending), actor: nil).job, "a is active: b may wait")
            #expect(holder(try await t.driver.enqueue(job("p", .pending), actor: nil)) == b.id, "b waits now")
            // while active: a waiting holder does not block, a running one does (every holder counts, not only the last).
            #expect(holder(try await t.driver.enqueue(job("p", .active), actor: nil)) == a.id, "a runs: refused")
            try await t.driver.complete(lease, result: nil)
            #expect(try await t.driver.enqueue(job("p", .active), actor: nil).isCreated, "a finished and b only waits: free")
        }
    }
}
