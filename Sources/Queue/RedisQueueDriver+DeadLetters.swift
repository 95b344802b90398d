import Foundation

extension RedisQueueDriver {
    /// A page of the dead-letter queue, newest death first.
    public struct DeadPage: Sendable {
        public var jobs: [Job]
        /// Pass back as `after` for the next page; nil on the last page.
        public var next: String?
    }

    /// Dead jobs of `queues` (every queue when nil), newest first; `after` is a previous page's `next`.
    public func deadJobs(queue: QueueName?, limit: Int, after: String?) async throws -> DeadPage {
        let queues: [QueueName]
        if let queue { queues = [queue] } else { queues = try await self.queues() }
        // Cursor: "<died at ms>:<id>" of the last job returned.
        var bound: (Int64, String)?
        if let after {
            let parts = after.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let ms = Int64(parts[0]), JobID(rawValue: parts[1]) != nil else {
                throw QueueError(.unexpectedReply, message: "invalid cursor")
            }
            bound = (ms, parts[1])
        }
        var entries = [(ms: Int64, id: JobID, queue: QueueName)]()
        for queue in queues {
            let key = RESPArgument(keys.queue(queue).dead)
            // Everything strictly older than the cursor's time, plus, at exactly that time, the ids after it
            // (one reap can kill many jobs in the same millisecond).
            var commands = [RedisCommand("ZRANGE", [
                key, RESPArgument(bound.map { "(\($0.0)" } ?? "+inf"), "-inf", "BYSCORE", "REV", "WITHSCORES", "LIMIT", "0", RESPArgument(limit + 1),
            ])]
            if let bound { commands.append(RedisCommand("ZRANGE", [key, RESPArgument(bound.0), RESPArgument(bound.0), "BYSCORE", "WITHSCORES"])) }
            for reply in try await redis.pipeline(commands) {
                let items = reply.array ?? []
                for i in stride(from: 0, to: items.count - 1, by: 2) {
                    guard let id = items[i].string.flatMap(JobID.init(rawValue:)), let ms = items[i + 1].string.flatMap(Double.init) else { continue }
                    let entry = (ms: Int64(ms), id: id, queue: queue)
                    if let bound, entry.ms == bound.0, entry.id.rawValue >= bound.1 { continue }
                    entries.append(entry)
                }
            }
        }
        entries.sort { ($0.ms, $0.id.rawValue) > ($1.ms, $1.id.rawValue) }
        let page = entries.prefix(limit)
        var jobs = [Job]()
        for entry in page {
            if let job = try await job(entry.id, queue: entry.queue) { jobs.append(job) }
        }
        let next = entries.count > limit ? page.last.map { "\($0.ms):\($0.id.rawValue)" } : nil
        return DeadPage(jobs: jobs, next: next)
    }

    /// Deletes a dead job from Redis with a `purged` event (recovery never brings it back); throws `notFound`,
    /// or `conflict` when it is not dead.
    public func purge(_ id: JobID, queue: QueueName? = nil, actor: String? = nil) async throws {
        guard let queue = try await locate(id, queue: queue) else { throw QueueError(.notFound, jobID: id) }
        let q = keys.queue(queue)
        let reply = try await redis.evalScript(
            Scripts.purge, keys: [q.job(id), q.dead, q.events],
            arguments: [RESPArgument(id.rawValue), RESPArgument(Date().millis), RESPArgument(actor ?? "")])
        switch reply.string {
        case "ok": return
        case "not_found": throw QueueError(.notFound, jobID: id)
        case let state?: throw QueueError(.conflict, jobID: id, state: JobState(rawValue: state), message: "job is \(state)")
        case nil: throw QueueError(.unexpectedReply, jobID: id)
        }
    }

    /// Requeues every dead job (optionally of one queue and/or type); returns how many.
    /// Requeues up to `limit` dead jobs (of `type`, if given) of `queue` (or of every queue), oldest death first: one
    /// script call per slice of the dead set, so a large dead-letter queue never blocks Redis for long. Returns how
    /// many were requeued and how many dead jobs matching the filter remain.
    public func requeueDead(queue: QueueName?, type: JobType?, limit: Int, actor: String?) async throws -> (requeued: Int, remaining: Int) {
        precondition(limit >= 0, "limit must not be negative")
        let queues: [QueueName]
        if let queue { queues = [queue] } else { queues = try await self.queues() }
        let slice = 500
        var requeued = 0, remaining = 0
        for queue in queues {
            let q = keys.queue(queue)
            var start = 0
            while true {
                if type == nil, requeued >= limit {
                    // Nothing more to requeue, and without a type filter every dead job left matches.
                    remaining += Int(try await redis.send(RedisCommand("ZCARD", [RESPArgument(q.dead)])).int ?? 0) - start
                    break
                }
                let reply = try await redis.evalScript(Scripts.requeueDead, keys: [q.dead, q.pending, q.events, q.wake, q.counter], arguments: [
                    RESPArgument(Date().millis), RESPArgument(actor ?? ""), RESPArgument(q.jobKeyPrefix), RESPArgument(limit - requeued),
                    RESPArgument(type?.rawValue ?? ""), RESPArgument(slice), RESPArgument(start),
                ])
                guard let v = reply.array?.compactMap(\.int), v.count == 4 else { throw QueueError(.unexpectedReply, message: "requeue_dead: \(reply)") }
                requeued += Int(v[0])
                remaining += Int(v[1])
                start += Int(v[1] + v[2])
                if v[3] < slice { break }
            }
        }
        return (requeued, remaining)
    }
}
