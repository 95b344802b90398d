import DocketQueue
import Foundation
import Logging
import Synchronization

/// What a handler gets besides the job: its attempt, a logger with job metadata, progress and heartbeat.
/// The handler's task is cancelled on timeout and on shutdown past the grace period; long handlers
/// should check `Task.isCancelled` (or use cancellable awaits such as `Task.sleep`).
public struct JobContext: Sendable {
    public let job: Job
    let baseLogger: Logger
    let driver: any QueueDriver
    let lease: LeaseBox
    let leaseDuration: Duration

    init(job: Job, logger: Logger, driver: any QueueDriver, lease: LeaseBox, leaseDuration: Duration) {
        self.job = job
        self.baseLogger = logger
        self.driver = driver
        self.lease = lease
        self.leaseDuration = leaseDuration
    }

    /// A logger carrying the job's id, type, attempt and queue (built when asked for: most handlers never log,
    /// and a log handler's metadata is costly to set per job).
    public var logger: Logger {
        var logger = baseLogger
        var metadata = logger.handler.metadata
        metadata.merge(Self.metadata(of: job)) { _, new in new }
        logger.handler.metadata = metadata
        return logger
    }

    static func metadata(of job: Job) -> Logger.Metadata {
        ["job.id": "\(job.id)", "job.type": "\(job.type)", "job.attempt": "\(job.attempts)", "queue.name": "\(job.queue)"]
    }

    /// This attempt's number, from 1.
    public var attempt: Int { job.attempts }
    public var payload: String { job.payload }

    /// Records progress (any JSON text). Calls closer together than 250 ms are coalesced: the latest
    /// value is kept and written by the next call, the heartbeat, or when the handler returns.
    public func progress(json: String) async throws {
        let json = JSONText.normalized(json)
        guard lease.shouldWriteProgress(json) else { return }
        try await driver.progress(lease.current, json)
    }

    /// Records progress as an `Encodable` value (a number, or `{"done": 3, "total": 10}`).
    public func progress<T: Encodable>(_ value: T) async throws {
        let data = try JSONEncoder().encode(value)
        try await progress(json: String(decoding: data, as: UTF8.self))
    }

    /// Extends the lease now (the pool also renews it on its own while the handler runs).
    public func heartbeat() async throws {
        try await lease.renew(driver: driver, for: leaseDuration)
    }
}

/// The current lease of a running job, shared by the handler's context and the pool's heartbeat.
final class LeaseBox: Sendable {
    private struct State {
        var lease: Lease
        var lastProgressAt: ContinuousClock.Instant?
        /// A coalesced progress value not yet written.
        var pendingProgress: String?
    }
    private let state: Mutex<State>

    init(_ lease: Lease) { state = Mutex(State(lease: lease)) }

    var current: Lease { state.withLock { $0.lease } }

    func renew(driver: any QueueDriver, for duration: Duration) async throws {
        let renewed = try await driver.renew(current, for: duration)
        state.withLock { $0.lease.deadline = renewed.deadline }
    }

    func shouldWriteProgress(_ json: String) -> Bool {
        state.withLock { s in
            let now = ContinuousClock.now
            if let last = s.lastProgressAt, last.duration(to: now) < .milliseconds(250) {
                s.pendingProgress = json
                return false
            }
            s.lastProgressAt = now
            s.pendingProgress = nil
            return true
        }
    }

    /// Writes a coalesced progress value, if one is waiting.
    func flushProgress(driver: any QueueDriver) async {
        guard let json = state.withLock({ s -> String? in defer { s.pendingProgress = nil }; return s.pendingProgress }) else { return }
        try? await driver.progress(current, json)
    }
}
