import DocketQueue
import Foundation
import Logging

/// Runs one leased job to its end: the handler, the lease heartbeat and the timeout race; the first to
/// finish decides the outcome, which is then written to the queue (complete, fail or release).
struct JobRunner: Sendable {
    let driver: any QueueDriver
    let handlers: HandlerRegistry
    let lease: Duration
    let heartbeat: Duration
    let logger: Logger

    /// How an attempt ended.
    enum Outcome: Sendable, Equatable {
        case succeeded(result: String?)
        case failed(String)
        case timedOut(Duration)
        case leaseLost
        /// Shutdown outlasted the grace period: give the job back without counting the attempt.
        case interrupted
    }

    func run(_ claimed: Lease) async {
        // Job metadata goes on each log line only when that level is on (built lazily: setting a log handler's
        // metadata per job is costly on the hot path).
        let logger = JobLogger(base: self.logger, job: claimed.job)
        let box = LeaseBox(claimed)
        if let handler = handlers.handler(for: claimed.job.type) {
            let context = JobContext(job: claimed.job, logger: self.logger, driver: driver, lease: box, leaseDuration: lease)
            logger.debug("Job started", ["job.payload.bytes": "\(claimed.job.payload.utf8.count)"])
            await race(handler, context: context, box: box, logger: logger)
        } else {
            await finish(.failed("no handler for type \"\(claimed.job.type)\""), box: box, logger: logger)
        }
    }

    /// Flushes coalesced progress and writes the outcome. Escape hatch (as in swift-jobs): the write runs in a
    /// task of its own so that shutdown's cancellation cannot cut its retries short while Redis is briefly down.
    private func finish(_ outcome: Outcome, box: LeaseBox, logger: JobLogger) async {
        await box.flushProgress(driver: driver)
        let lease = box.current
        await Task { await record(outcome, lease: lease, logger: logger) }.value
    }

    /// Races the handler, its timeout and the lease heartbeat; the first to finish decides the outcome, which is
    /// written at once: a handler that ignores cancellation past its timeout still has its attempt failed on
    /// time (its concurrency slot stays taken until it returns).
    private func race(_ handler: @escaping JobHandler, context: JobContext, box: LeaseBox, logger: JobLogger) async {
        let timeout = context.job.timeout
        await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    return .succeeded(result: try await handler(context).map(JSONText.normalized))
                } catch {
                    return .failed(Self.describe(error))
                }
            }
            // One watchdog per job (one timer, not two): it wakes for the next heartbeat or the timeout, whichever
            // comes first.
            group.addTask {
                let deadline = ContinuousClock.now + timeout
                var nextBeat = ContinuousClock.now + heartbeat
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(until: min(deadline, nextBeat), clock: .continuous)
                    } catch {
                        return nil  // cancelled: the handler finished, or shutdown
                    }
                    if ContinuousClock.now >= deadline { return .timedOut(timeout) }
                    nextBeat = ContinuousClock.now + heartbeat
                    do {
                        try await box.renew(driver: driver, for: lease)
                        await box.flushProgress(driver: driver)
                    } catch let error as QueueError where error.code == .leaseLost {
                        return .leaseLost
                    } catch {
                        // Cancelled, or Redis briefly unreachable: try again next beat while the lease lasts.
                        if Task.isCancelled { return nil }
                    }
                }
                return nil
            }
            var first: Outcome = .interrupted
            while let result = await group.next() {
                if let result {
                    first = result
                    break
                }
            }
            group.cancelAll()
            // Cancelled from outside (shutdown past grace): unless the handler had already finished, release.
            if Task.isCancelled, case .succeeded = first {} else if Task.isCancelled { first = .interrupted }
            await finish(first, box: box, logger: logger)
        }
    }

    /// Writes the outcome, retrying while Redis is unreachable (the lease keeps the job ours meanwhile).
    private func record(_ outcome: Outcome, lease: Lease, logger: JobLogger) async {
        var pause: Duration = .milliseconds(100)
        let giveUp = ContinuousClock.now + self.lease
        while true {
            do {
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
                return
            } catch let error as QueueError where error.code == .leaseLost {
                logger.warning("Job lease lost before its outcome was written", ["job.outcome": "\(outcome)"])
                return
            } catch {
                guard ContinuousClock.now < giveUp, (error as? RedisClientError)?.isConnectionError == true else {
                    logger.error("Could not record job outcome; the lease will expire and the job run again", ["error": "\(error)"])
                    return
                }
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
