import DocketQueue
import Foundation
import GRDB

/// One journaled transition: a row of `journalEvent`. An `enqueued` event also carries the job it creates.
public struct JournalEvent: Sendable, Hashable {
    public var jobID: JobID
    public var seq: Int
    public var at: Date
    public var event: String
    public var state: JobState
    public var attempt: Int
    public var queue: QueueName
    public var type: JobType?
    public var worker: String?
    public var error: String?
    public var actor: String?
    /// Event-specific JSON or text: the result of `completed`, the progress of `progress`, runAt of `retry_scheduled`.
    public var detail: String?
    /// How long the attempt ran (completed, failed, lease_expired).
    public var runMs: Int64?
    /// The job an `enqueued` event creates.
    public var job: Job?

    public init(jobID: JobID, seq: Int, at: Date, event: String, state: JobState, attempt: Int, queue: QueueName) {
        self.jobID = jobID
        self.seq = seq
        self.at = at
        self.event = event
        self.state = state
        self.attempt = attempt
        self.queue = queue
    }

    /// The `enqueued` event of a job accepted through the API (write-ahead).
    public static func enqueued(_ job: Job, actor: String?) -> JournalEvent {
        var e = JournalEvent(jobID: job.id, seq: 1, at: job.createdAt, event: "enqueued", state: job.state, attempt: 0, queue: job.queue)
        e.type = job.type
        e.actor = actor
        e.job = job
        return e
    }

    /// Maps a Redis stream entry to a journal event.
    public init(_ e: QueueEvent, queue: QueueName) {
        self.init(jobID: e.jobID, seq: e.seq, at: e.at, event: e.event, state: e.state, attempt: e.attempt, queue: queue)
        let f = e.fields
        worker = f["worker"]
        error = f["error"]
        actor = f["actor"]
        runMs = f["runMs"].flatMap { Int64($0) }
        type = f["type"].flatMap(JobType.init(rawValue:))
        switch e.event {
        case "completed": detail = f["result"]
        case "progress": detail = f["detail"]
        case "retry_scheduled": detail = f["runAt"]
        default: detail = f["detail"]
        }
        if e.event == "enqueued", let type {
            var job = Job(
                id: e.jobID, type: type, payload: f["payload"] ?? "null", queue: queue,
                priority: f["priority"].flatMap(Priority.init(rawValue:)) ?? .normal,
                maxAttempts: f["maxAttempts"].flatMap { Int($0) } ?? Job.defaultMaxAttempts,
                timeout: f["timeout"].flatMap { Int64($0) }.map { .milliseconds($0) } ?? Job.defaultTimeout,
                backoff: Backoff(
                    base: f["backoffBase"].flatMap { Int64($0) }.map { .milliseconds($0) } ?? Backoff.default.base,
                    max: f["backoffMax"].flatMap { Int64($0) }.map { .milliseconds($0) } ?? Backoff.default.max),
                runAt: f["runAt"].flatMap { Int64($0) }.map { Date(millis: $0) },
                idempotencyKey: f["idempotencyKey"],
                createdAt: f["createdAt"].flatMap { Int64($0) }.map { Date(millis: $0) } ?? e.at)
            job.state = e.state
            job.updatedAt = e.at
            job.seq = e.seq
            if let key = f["uniqueKey"] { job.unique = UniqueKey(key: key, while: f["uniqueWhile"].flatMap(UniqueKey.While.init(rawValue:)) ?? .untilComplete) }
            job.replayOf = f["replayOf"].flatMap(JobID.init(rawValue:))
            self.job = job
        }
    }

    /// The columns `init(row:)` reads, in its order (by index: a name lookup per column per row costs more than
    /// the rest of decoding an event when thousands are read).
    static let columns = "jobId, seq, at, event, state, attempt, queue, type, worker, error, actor, detail, runMs"

    init(row: Row) {
        self.init(
            jobID: JobID(rawValue: row[0]) ?? JobID(rawValue: "invalid")!, seq: row[1], at: Date(millis: row[2]),
            event: row[3], state: JobState(rawValue: row[4]) ?? .pending, attempt: row[5], queue: QueueName(rawValue: row[6]) ?? .default)
        type = (row[7] as String?).flatMap(JobType.init(rawValue:))
        worker = row[8]
        error = row[9]
        actor = row[10]
        detail = row[11]
        runMs = row[12]
    }
}
