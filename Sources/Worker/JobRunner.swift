import DocketQueue
import Foundation
import Logging

/// Runs one leased job to its end: the handler, raced against its timeout and lease (watched for every running job
/// by one `LeaseKeeper`, not a timer per job); the first to finish decides the outcome. A success is handed to the
/// pool's `AckBuffer` (recorded with the next claim, many jobs per script call); other outcomes are written at once.
struct JobRunner: Sendable {
    let driver: any QueueDriver
    let handlers: HandlerRegistry
    let lease: Duration
    let heartbeat: Duration
    let logger: Logger
    let keeper: LeaseKeeper
    let acks: AckBuffer

    /// How an attempt ended.
    enum Outcome: Sendable, Equatable {
        case succeeded(result: String?)
        case failed(String)
        case timedOut(Duration)
        case leaseLost
        /// Shutdown outlasted the grace period: give the job back without counting the attempt.
        case interrupted
    }

    /// Runs the job; `freeSlot` is called once its concurrency slot may be reused (when the handler has returned).
    func run(_ claimed: Lease, freeSlot: @Sendable () -> Void) async {
        // Job metadata goes on each log line only when that level is on (built lazily: setting a log handler's
        // metadata per job is costly on the hot path).
        let logger = JobLogger(base: self.logger, job: claimed.job)
        let box = LeaseBox(claimed)
        guard let handler = handlers.handler(for: claimed.job.type) else {
            await finish(.failed("no handler for type \"\(claimed.job.type)\""), box: box, logger: logger)
            freeSlot()
            return
        }
        let context = JobContext(job: claimed.job, logger: self.logger, driver: driver, lease: box, leaseDuration: lease)
        logger.debug("Job started", ["job.payload.bytes": "\(claimed.job.payload.utf8.count)"])
        let decision = Decision()
        let watch = keeper.watch(box, decision: decision, timeout: claimed.job.timeout)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    decision.resolve(.succeeded(result: try await handler(context).map(JSONText.normalized)), byHandler: true)
                } catch {
                    decision.resolve(.failed(Self.describe(error)), byHandler: true)
                }
            }
            var (outcome, byHandler) = await decision.value()
            keeper.unwatch(watch)
            if byHandler {
                // Cancelled from outside (shutdown past grace): unless the handler had succeeded, release the job.
                if Task.isCancelled, case .succeeded = outcome {} else if Task.isCancelled { outcome = .interrupted }
                if case .succeeded(let result) = outcome {
                    await box.flushProgress(driver: driver)
                    freeSlot()
                    await acks.add(Completion(lease: box.current, result: result))
                    return
                }
                await finish(outcome, box: box, logger: logger)
                freeSlot()
            } else {
                // Timed out or lease lost: the outcome is written now, while a handler that ignores cancellation
                // keeps its slot until it returns.
                group.cancelAll()
                await finish(outcome, box: box, logger: logger)
                await group.waitForAll()
                freeSlot()
            }
        }
    }

    /// Flushes coalesced progress and writes the outcome. Escape hatch (as in swift-jobs): the write runs in a
    /// task of its own so that shutdown's cancellation cannot cut its retries short while Redis is briefly down.
    private func finish(_ outcome: Outcome, box: LeaseBox, logger: JobLogger) async {
        await box.flushProgress(driver: driver)
        let lease = box.current
        await Task { await record(outcome, lease: lease, logger: logger) }.value
    }

    /// Writes the outcome, retrying while Redis is unreachable (the lease keeps the job ours meanwhile).
    private func record(_ outcome: Outcome, lease: Lease, logger: JobLogger) async {
        do {
            try await Self.retryingWhileUnreachable(for: self.lease) {
                switch outcome {
                case .succeeded(let result):
                    try await driver.complete(lease, result: result)
                    logger.debug("Job completed")
                case .failed(let message):
                    let next = try await driver.fail(lease, error: message)
                    logger.debug("Job attempt failed", ["error": "\(message)", "job.next": "\(next)"])
                case .timedOut(let timeout):
                    let next = try await driver.fail(lease, error: "timed out after \(DurationText.format(timeout))")
                    logger.debug("Job attempt timed out", ["job.next": "\(next)"])
                case .interrupted:
                    try await driver.release(lease)
                    logger.info("Job released at shutdown")
                case .leaseLost:
                    logger.warning("Job lease lost while running; its result is dropped")
                }
            }
        } catch let error as QueueError where error.code == .leaseLost {
            logger.warning("Job lease lost before its outcome was written", ["job.outcome": "\(outcome)"])
        } catch {
            logger.error("Could not record job outcome; the lease will expire and the job run again", ["error": "\(error)"])
        }
    }

    /// Runs `write` until it succeeds; while Redis is unreachable it tries again with backoff, for at most `limit`
    /// (a lease's length: after that the job is reaped and runs again anyway). Other errors are thrown at once.
    static func retryingWhileUnreachable(for limit: Duration, _ write: () async throws -> Void) async throws {
        var pause: Duration = .milliseconds(100)
        let giveUp = ContinuousClock.now + limit
        while true {
            do {
                return try await write()
            } catch {
                guard ContinuousClock.now < giveUp, (error as? RedisClientError)?.isConnectionError == true else { throw error }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        let text: String
        switch error {
        case let failure as JobFailure: text = failure.description
        case is CancellationError: text = "cancelled"
        default: text = String(describing: error)
        }
        return text.count > 4096 ? String(text.prefix(4096)) + "…" : text
    }
}

/// The pool's logger for one job: the job's metadata is added to a line only when its level is enabled.
struct JobLogger: Sendable {
    let base: Logger
    let job: Job

    private func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, _ extra: @autoclosure () -> Logger.Metadata) {
        guard base.logLevel <= level else { return }
        base.log(level: level, message(), metadata: JobContext.metadata(of: job).merging(extra()) { _, new in new })
    }

    func debug(_ message: @autoclosure () -> Logger.Message, _ extra: @autoclosure () -> Logger.Metadata = [:]) { log(.debug, message(), extra()) }
    func info(_ message: @autoclosure () -> Logger.Message, _ extra: @autoclosure () -> Logger.Metadata = [:]) { log(.info, message(), extra()) }
    func warning(_ message: @autoclosure () -> Logger.Message, _ extra: @autoclosure () -> Logger.Metadata = [:]) { log(.warning, message(), extra()) }
    func error(_ message: @autoclosure () -> Logger.Message, _ extra: @autoclosure () -> Logger.Metadata = [:]) { log(.error, message(), extra()) }
}
