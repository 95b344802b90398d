import DocketQueue
import DocketTestSupport
import DocketWorker
import Foundation
import Synchronization
import Testing

/// A handler that ignores cancellation past its timeout: the attempt still fails at the timeout (its lease is
/// not left to expire), while the handler's concurrency slot stays taken until it returns.
@Suite("Worker timeouts", .timeLimit(.minutes(1)))
struct TimeoutTests {
    @Test func aHandlerIgnoringCancellationIsFailedAtItsTimeout() async throws {
        try await withTestQueue { t in
            let gate = Gate()
            var handlers = HandlerRegistry()
            handlers.register("stubborn") { _ in
                // Ignores cancellation: waits on a continuation the test resumes only after the failure is recorded.
                await gate.wait()
                return nil
            }
            var config = WorkerPool.Configuration()
            config.concurrency = 1
            config.lease = .seconds(30)  // far longer than the timeout: only the timeout can end the attempt
            config.claimWait = .milliseconds(200)
            let pool = WorkerPool(driver: t.driver, handlers: handlers, configuration: config, logger: TestQueue.logger)
            try await withRunningServices([pool]) {
                let job = try await t.driver.enqueue(Job(type: "stubborn", maxAttempts: 1, timeout: .milliseconds(200)), actor: nil).job!
                try await eventually("the attempt to fail at its timeout") { try await t.driver.job(job.id)?.state == .dead }
                let dead = try #require(try await t.driver.job(job.id))
                #expect(dead.lastError?.hasPrefix("timed out after") == true, "\(dead.lastError ?? "")")
                #expect(try await t.driver.events(of: .default).filter { $0.jobID == job.id }.map(\.event).contains("lease_expired") == false)
                gate.open()
            }
        }
    }
}

/// A wait that cancellation does not end (like a handler stuck in a call that ignores it).
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
