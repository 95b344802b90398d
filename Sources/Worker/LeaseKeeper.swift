import DocketQueue
import Foundation
import Logging
import Synchronization

/// The first outcome of a running job, from its handler or from the `LeaseKeeper` (timeout, lease lost).
final class Decision: Sendable {
    private enum State {
        case waiting(CheckedContinuation<(JobRunner.Outcome, Bool), Never>?)
        case decided(JobRunner.Outcome, byHandler: Bool)
    }
    private let state = Mutex<State>(.waiting(nil))

    /// Records `outcome` unless another came first; true if this one decides.
    @discardableResult
    func resolve(_ outcome: JobRunner.Outcome, byHandler: Bool) -> Bool {
        let waiter: CheckedContinuation<(JobRunner.Outcome, Bool), Never>?? = state.withLock { state in
            guard case .waiting(let waiter) = state else { return nil }
            state = .decided(outcome, byHandler: byHandler)
            return .some(waiter)
        }
        guard let waiter else { return false }
        waiter?.resume(returning: (outcome, byHandler))
        return true
    }

    /// The deciding outcome, and whether the handler gave it.
    func value() async -> (JobRunner.Outcome, byHandler: Bool) {
        await withCheckedContinuation { (continuation: CheckedContinuation<(JobRunner.Outcome, Bool), Never>) in
            let decided: (JobRunner.Outcome, Bool)? = state.withLock { state in
                switch state {
                case .decided(let outcome, let byHandler): return (outcome, byHandler)
                case .waiting: state = .waiting(continuation); return nil
                }
            }
            if let decided { continuation.resume(returning: decided) }
        }
    }
}

/// Watches every running job of a pool from one task: fails a job at its timeout, renews its lease every `heartbeat`
/// (writing coalesced progress too), and gives up a job whose lease was lost. One loop instead of a timer per job.
final class LeaseKeeper: Sendable {
    private struct Watched {
        let box: LeaseBox
        let decision: Decision
        let timeoutAt: ContinuousClock.Instant
        var nextBeat: ContinuousClock.Instant
        let timeout: Duration
    }
    private let watched = Mutex<(next: Int, jobs: [Int: Watched])>((0, [:]))
    private let bell: AsyncStream<Void>.Continuation
    private let doorbell: AsyncStream<Void>
    let driver: any QueueDriver
    let lease: Duration
    let heartbeat: Duration
    /// How often running jobs are checked (the precision of timeouts).
    let tick: Duration

    init(driver: any QueueDriver, lease: Duration, heartbeat: Duration, tick: Duration = .milliseconds(50)) {
        self.driver = driver
        self.lease = lease
        self.heartbeat = heartbeat
        self.tick = tick
        (doorbell, bell) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func watch(_ box: LeaseBox, decision: Decision, timeout: Duration) -> Int {
        let now = ContinuousClock.now
        let (id, first) = watched.withLock { state in
            state.next += 1
            state.jobs[state.next] = Watched(box: box, decision: decision, timeoutAt: now + timeout, nextBeat: now + heartbeat, timeout: timeout)
            return (state.next, state.jobs.count == 1)
        }
        if first { bell.yield() }
        return id
    }

    func unwatch(_ id: Int) {
        _ = watched.withLock { $0.jobs.removeValue(forKey: id) }
    }

    /// Runs until cancelled (after the pool's last job has finished).
    func run() async {
        await withDiscardingTaskGroup { renewals in
            while !Task.isCancelled {
                if watched.withLock({ $0.jobs.isEmpty }) {
                    for await _ in doorbell { break }  // idle until a job starts
                    continue
                }
                try? await Task.sleep(for: tick)
                let now = ContinuousClock.now
                let (expired, due) = watched.withLock { state -> ([Watched], [Watched]) in
                    var expired = [Watched](), due = [Watched]()
                    for (id, job) in state.jobs {
                        if now >= job.timeoutAt {
                            expired.append(job)
                            state.jobs[id] = nil
                        } else if now >= job.nextBeat {
                            due.append(job)
                            state.jobs[id]?.nextBeat = now + heartbeat
                        }
                    }
                    return (expired, due)
                }
                for job in expired { job.decision.resolve(.timedOut(job.timeout), byHandler: false) }
                for job in due {
                    renewals.addTask { [driver, lease] in
                        do {
                            try await job.box.renew(driver: driver, for: lease)
                            await job.box.flushProgress(driver: driver)
                        } catch let error as QueueError where error.code == .leaseLost {
                            job.decision.resolve(.leaseLost, byHandler: false)
                        } catch {
                            // Redis briefly unreachable: tried again next beat while the lease lasts.
                        }
                    }
                }
            }
        }
    }
}

/// Successful outcomes waiting to be recorded. The claim loop takes them with its next claim (one script call
/// completes them and leases the next jobs); while it is blocked waiting for new work ("direct" mode), the jobs that
/// finish record their outcomes themselves, one flush at a time, each flush taking all that are waiting.
final class AckBuffer: Sendable {
    private struct State {
        var pending: [Completion] = []
        var direct = false
        var flushing = false
    }
    private let state = Mutex(State())
    let driver: any QueueDriver
    let lease: Duration
    let logger: Logger
    /// Rung when an outcome is added (the claim loop may be waiting for a slot).
    let added: @Sendable () -> Void

    init(driver: any QueueDriver, lease: Duration, logger: Logger, added: @escaping @Sendable () -> Void) {
        self.driver = driver
        self.lease = lease
        self.logger = logger
        self.added = added
    }

    /// Adds a finished job's outcome; in direct mode the caller records it (and any others waiting).
    func add(_ completion: Completion) async {
        let flush = state.withLock { state -> Bool in
            state.pending.append(completion)
            guard state.direct, !state.flushing else { return false }
            state.flushing = true
            return true
        }
        added()
        if flush { await flushDirect() }
    }

    /// Everything waiting (the claim loop sends it with its claim).
    func take() -> [Completion] {
        state.withLock { state in
            defer { state.pending.removeAll(keepingCapacity: true) }
            return state.pending
        }
    }

    /// Puts back outcomes a failed call did not record (tried again with the next call).
    func restore(_ completions: [Completion]) {
        state.withLock { $0.pending.insert(contentsOf: completions, at: 0) }
    }

    /// Enters direct mode unless outcomes are waiting (then the claim loop should take them instead of blocking).
    func enterDirect() -> Bool {
        state.withLock { state in
            guard state.pending.isEmpty else { return false }
            state.direct = true
            return true
        }
    }

    func leaveDirect() {
        state.withLock { $0.direct = false }
    }

    /// Direct mode for good (shutdown), recording anything still waiting.
    func close() async {
        let flush = state.withLock { state -> Bool in
            state.direct = true
            guard !state.flushing else { return false }
            state.flushing = true
            return true
        }
        if flush { await flushDirect() }
    }

    /// Records outcomes until none wait. Escape hatch: in a task of its own, so shutdown's cancellation cannot cut
    /// the retries short while Redis is briefly down.
    private func flushDirect() async {
        await Task {
            while true {
                let batch = state.withLock { state -> [Completion] in
                    if state.pending.isEmpty { state.flushing = false }
                    defer { state.pending.removeAll(keepingCapacity: true) }
                    return state.pending
                }
                if batch.isEmpty { return }
                await record(batch)
            }
        }.value
    }

    /// Records `batch`, retrying while Redis is unreachable until the leases would have run out.
    private func record(_ batch: [Completion]) async {
        do {
            try await JobRunner.retryingWhileUnreachable(for: lease) { report(batch, try await driver.complete(batch)) }
        } catch {
            logger.error("Could not record job outcomes; the leases will expire and the jobs run again", metadata: [
                "error": "\(error)", "jobs": "\(batch.count)",
            ])
        }
    }

    /// Logs what a completion call did: a job whose lease was lost had its result dropped.
    func report(_ batch: [Completion], _ completed: [Bool]) {
        for (completion, done) in zip(batch, completed) {
            let log = JobLogger(base: logger, job: completion.lease.job)
            if done {
                log.debug("Job completed")
            } else {
                log.warning("Job lease lost before its outcome was written", ["job.outcome": "succeeded"])
            }
        }
    }

    /// Drops outcomes whose lease has run out (their jobs run again); used while Redis stays unreachable.
    func dropExpired(_ batch: [Completion], now: Date = Date()) -> [Completion] {
        var kept = [Completion]()
        for completion in batch {
            if completion.lease.deadline > now {
                kept.append(completion)
            } else {
                JobLogger(base: logger, job: completion.lease.job).error("Could not record job outcome; the lease expired and the job runs again")
            }
        }
        return kept
    }
}
