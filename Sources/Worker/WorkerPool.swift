import DocketQueue
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Runs up to `concurrency` jobs at once from `queues`. On graceful shutdown it stops claiming, gives
/// running jobs `shutdownGrace` to finish, then cancels them: a cancelled job is released, not failed.
public struct WorkerPool: Service {
    public struct Configuration: Sendable {
        public var queues: [QueueName] = [.default]
        public var concurrency = 4
        /// Lease per claim, renewed by heartbeat every `lease / 3` while the job runs.
        public var lease: Duration = .seconds(30)
        public var shutdownGrace: Duration = .seconds(10)
        /// Longest blocking wait of one claim call (it wakes at once for new work).
        public var claimWait: Duration = .seconds(5)
        /// How often the worker refreshes its registration.
        public var registrationInterval: Duration = .seconds(5)
        public var workerID = WorkerID.make()
        public init() {}
    }

    public let configuration: Configuration
    let driver: any QueueDriver
    let runner: JobRunner
    let logger: Logger
    private let state: PoolState
    private let keeper: LeaseKeeper
    private let acks: AckBuffer

    public init(driver: any QueueDriver, handlers: HandlerRegistry, configuration: Configuration, logger: Logger) {
        precondition(configuration.concurrency > 0, "concurrency must be positive")
        precondition(!configuration.queues.isEmpty, "a worker needs at least one queue")
        var logger = logger
        logger[metadataKey: "worker.id"] = "\(configuration.workerID)"
        self.configuration = configuration
        self.driver = driver
        self.logger = logger
        let state = PoolState()
        self.state = state
        self.keeper = LeaseKeeper(driver: driver, lease: configuration.lease, heartbeat: configuration.lease / 3)
        self.acks = AckBuffer(driver: driver, lease: configuration.lease, logger: logger) { state.ring() }
        self.runner = JobRunner(
            driver: driver, handlers: handlers, lease: configuration.lease, heartbeat: configuration.lease / 3, logger: logger,
            keeper: keeper, acks: acks)
    }

    /// Jobs running right now.
    public var running: Int { state.running.load(ordering: .relaxed) }
    /// The most jobs that ever ran at once.
    public var peakRunning: Int { state.peak.load(ordering: .relaxed) }

    public func run() async {
        logger.info("Worker started", metadata: [
            "worker.queues": "\(configuration.queues.map(\.rawValue).joined(separator: ","))",
            "worker.concurrency": "\(configuration.concurrency)",
        ])
        await withTaskGroup(of: Void.self) { outer in
            outer.addTask { await self.register() }  // until cancelled below
            outer.addTask { await keeper.run() }  // watches running jobs until the last one is done
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.claimAndRun() }
                group.addTask {  // the grace clock starts when shutdown does
                    try? await gracefulShutdown()
                    try? await Task.sleep(for: configuration.shutdownGrace)
                }
                await group.next()  // whichever ends first cancels the other:
                group.cancelAll()  // jobs still running past the grace are cancelled, then released
            }
            outer.cancelAll()
        }
        if let registry = driver as? any WorkerRegistry {
            try? await registry.unregister(configuration.workerID)
        }
        logger.info("Worker stopped")
    }

    /// Claims until shutdown, keeping at most `concurrency` jobs running. Each claim call also completes the jobs
    /// that finished since the last one; while no work is ready it blocks for new work, and finishing jobs record
    /// their own outcomes meanwhile.
    private func claimAndRun() async {
        await withDiscardingTaskGroup { jobs in
            var failures = 0
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let free = configuration.concurrency - state.running.load(ordering: .acquiring)
                let finished = acks.take()
                if free <= 0 && finished.isEmpty {
                    await state.waitForSlot()
                    continue
                }
                let leases: [Lease]
                do {
                    let reply = try await driver.completeAndClaim(
                        finished, from: configuration.queues, worker: configuration.workerID, lease: configuration.lease, max: max(0, free))
                    acks.report(finished, reply.completed)
                    leases = reply.leases
                    if failures > 0 { logger.info("Redis reachable again; claiming") }
                    failures = 0
                } catch {
                    acks.restore(acks.dropExpired(finished))
                    if Task.isShuttingDownGracefully || Task.isCancelled { break }
                    // Redis outage: wait and try again, never exit or spin.
                    if failures == 0 { logger.warning("Claim failed; retrying with backoff", metadata: ["error": "\(error)"]) }
                    failures += 1
                    try? await Task.sleep(for: min(.milliseconds(100) * (1 << min(failures, 5)), .seconds(3)))
                    continue
                }
                for lease in leases {
                    state.started()
                    jobs.addTask {
                        await runner.run(lease) { state.finished() }
                    }
                }
                // Nothing ready: block until an enqueue wakes the queue (finishing jobs record themselves meanwhile).
                guard leases.isEmpty, free > 0, acks.enterDirect() else { continue }
                do {
                    try await cancelWhenGracefulShutdown {
                        try await driver.waitForWork(on: configuration.queues, wait: configuration.claimWait)
                    }
                } catch {
                    if !(Task.isShuttingDownGracefully || Task.isCancelled) {
                        try? await Task.sleep(for: .milliseconds(100))  // Redis down: the next claim reports it
                    }
                }
                acks.leaveDirect()
            }
            // Stopped claiming: outcomes still waiting, and those of jobs finishing during the grace, are recorded directly.
            await acks.close()
        }  // returns once the running jobs have finished
    }

    /// Keeps this worker's registration fresh until cancelled.
    private func register() async {
        guard let registry = driver as? any WorkerRegistry else { return }
        let started = Date()
        while !Task.isCancelled {
            var info = WorkerInfo(id: configuration.workerID, queues: configuration.queues, concurrency: configuration.concurrency, startedAt: started)
            info.lastHeartbeat = Date()
            info.running = running
            try? await registry.heartbeat(info, ttl: configuration.registrationInterval * 3)
            try? await Task.sleep(for: configuration.registrationInterval)
        }
    }
}

/// The pool's counters, and a doorbell rung when a job finishes.
private final class PoolState: Sendable {
    let running = Atomic<Int>(0)
    let peak = Atomic<Int>(0)
    private let bell: AsyncStream<Void>.Continuation
    private let doorbell: AsyncStream<Void>

    init() {
        (doorbell, bell) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func started() {
        let now = running.add(1, ordering: .acquiringAndReleasing).newValue
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
    }

    func finished() {
        running.subtract(1, ordering: .acquiringAndReleasing)
        bell.yield()
    }

    /// Wakes the claim loop (a finished job's outcome is waiting to be recorded).
    func ring() { bell.yield() }

    /// Waits until some job finishes (returns at once if one finished since the last wait).
    /// Only the claim loop waits, so the stream has one consumer at a time.
    func waitForSlot() async {
        for await _ in doorbell { return }
    }
}
