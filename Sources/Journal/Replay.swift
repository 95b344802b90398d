import DocketQueue
import Foundation
import Logging

extension JournaledQueue {
    /// What a replay did (or, on a dry run, would do).
    public struct Replay: Sendable {
        /// Jobs the filter matches in the journal (all of them, not only this call's).
        public var matched: Int
        /// The jobs this call took, newest first: at most `limit`.
        public var originals: [JobID]
        /// Their copies, one per original in the same order (empty on a dry run).
        public var jobs: [JobID]
        /// Copies made by this call (not by an earlier call with the same request id).
        public var created: Int
        /// Copies accepted into the journal while Redis was unreachable (delivered when it is back).
        public var spooled: Int
        /// Where the next call goes on, when more jobs match than `limit`.
        public var nextCursor: String?
    }

    public static let maxReplay = 10_000

    /// Re-runs journaled jobs: each original the filter matches (newest first, at most `limit`) gets a new job with
    /// its definition (type, payload, priority, attempts, timeout, backoff; to `queue` if given) and `replayOf`, and
    /// a `replayed` event naming the copy. It needs only the journal: jobs Redis dropped long ago replay too.
    /// Copies are enqueued write-ahead like any job. A request id replays an original once: the same request again
    /// answers the copies it made (its copies carry the idempotency key `replay:<request id>:<original id>`).
    public func replay(_ filter: JournalReader.Filter, limit: Int, queue target: QueueName?, dryRun: Bool, requestID: String,
                       actor: String?) async throws -> Replay {
        var filter = filter
        filter.definedOnly = true
        filter.exceptReplaysBy = requestID
        let matched = try await journal.reader.count(filter)
        var originals = [Job]()
        var next: String?
        repeat {
            filter.limit = min(1000, limit - originals.count)
            let page = try await journal.reader.list(filter)
            originals += page.jobs
            next = page.nextCursor
            filter.cursor = next
        } while next != nil && originals.count < limit
        var result = Replay(matched: matched, originals: originals.map(\.id), jobs: [], created: 0, spooled: 0, nextCursor: next)
        if dryRun || originals.isEmpty { return result }
        return try await keyLocks.withLocks(["replay\u{0}" + requestID]) {
            let earlier = try await journal.reader.replays(requestID: requestID, of: originals.map(\.id))
            let now = Date()
            var copies = [Job]()
            for original in originals where earlier[original.id] == nil {
                var copy = Job(type: original.type, payload: original.payload, queue: target ?? original.queue, priority: original.priority,
                               maxAttempts: original.maxAttempts, timeout: original.timeout, backoff: original.backoff,
                               idempotencyKey: "replay:\(requestID):\(original.id.rawValue)", createdAt: now)
                copy.replayOf = original.id
                copies.append(copy)
            }
            // Each chunk is journaled (write-ahead), then delivered to Redis, and its originals marked there, while
            // the next chunk is being journaled.
            let byID = Dictionary(uniqueKeysWithValues: originals.map { ($0.id, $0) })
            let chunks = stride(from: 0, to: copies.count, by: 2000).map { Array(copies[$0..<min($0 + 2000, copies.count)]) }
            // Marks Redis could not take (unreachable), with why.
            var unmarked = [(original: Job, copy: JobID)]()
            var markFailure: RedisClientError?
            var made = [JobID: JobID]()
            try await withThrowingTaskGroup(of: ([Outcome], [(original: Job, copy: JobID)], RedisClientError?).self) { group in
                for chunk in chunks {
                    try await journal.writer.write([.events(chunk.map { JournalEvent.enqueued($0, actor: actor) }, spooled: true)])
                    let marks = chunk.map { (original: byID[$0.replayOf!]!, copy: $0.id) }
                    group.addTask {
                        async let delivered = deliver(chunk, actor: actor)
                        do {
                            _ = try await driver.markReplayed(marks, actor: actor)
                            return (try await delivered, [], nil)
                        } catch let error as RedisClientError {
                            return (try await delivered, marks, error)
                        }
                    }
                }
                for try await (outcomes, failed, failure) in group {
                    unmarked += failed
                    markFailure = markFailure ?? failure
                    for outcome in outcomes {
                        guard let original = outcome.job.replayOf else { continue }
                        made[original] = outcome.job.id
                        if case .spooled = outcome { result.spooled += 1 }
                    }
                }
            }
            result.created = made.count
            result.jobs = originals.compactMap { earlier[$0.id] ?? made[$0.id] }
            if let error = markFailure, !unmarked.isEmpty {
                // Redis unreachable: the copies are spooled; this journal notes the replays itself (next seq it knows).
                logger.warning("Redis unavailable; replayed events written to this journal only", metadata: ["error": "\(error)"])
                try await journal.writer.write([.events(unmarked.map { mark in
                    var e = JournalEvent(jobID: mark.original.id, seq: mark.original.seq + 1, at: now, event: "replayed",
                                         state: mark.original.state, attempt: mark.original.attempts, queue: mark.original.queue)
                    e.actor = actor
                    e.detail = mark.copy.rawValue
                    return e
                })])
            }
            return result
        }
    }
}
