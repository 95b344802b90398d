import DocketTestSupport
import Foundation
import Synchronization
import Testing

@testable import DocketQueue

@Suite("Concurrent claimers", .timeLimit(.minutes(1)))
struct ConcurrencyTests {
    @Test func eightClaimersTakeEveryJobExactlyOnce() async throws {
        try await withTestQueue { t in
            let total = 5000
            var ids = Set<JobID>()
            for chunk in 0..<(total / 500) {
                let jobs = (0..<500).map { i in Job(type: "t", payload: "\(chunk * 500 + i)") }
                ids.formUnion(try await t.driver.enqueue(jobs, actor: nil).map(\.job.id))
            }
            #expect(ids.count == total)
            let drivers = (0..<8).map { _ in t.sibling() }
            defer { for d in drivers { d.redis.shutdown() } }
            let claimed = try await withThrowingTaskGroup(of: [JobID].self) { group in
                for (n, driver) in drivers.enumerated() {
                    group.addTask {
                        var mine = [JobID]()
                        let me = WorkerID(rawValue: "w\(n)")
                        while let lease = try await driver.claim(from: [.default], worker: me, lease: .seconds(60), wait: .zero) {
                            try await driver.complete(lease, result: nil)
                            mine.append(lease.job.id)
                        }
                        return mine
                    }
                }
                var all = [JobID]()
                for try await part in group { all += part }
                return all
            }
            #expect(claimed.count == total, "every job claimed once")
            #expect(Set(claimed) == ids, "no job lost, none duplicated")
            let counts = try await t.driver.counts(.default)
            #expect(counts.pending == 0 && counts.active == 0 && counts.completed == total)
        }
    }
}
