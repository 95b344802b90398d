import Foundation

extension RedisQueueDriver {
    /// Puts journaled jobs back into Redis (recovery), each atomically with a `restored` event; a job
    /// Redis still has is left alone. Returns, per job, the state it was restored to (nil: already there).
    public func restore(_ jobs: [Job]) async throws -> [JobState?] {
        if jobs.isEmpty { return [] }
        // Always (not from the once-a-second cache): Redis just lost its list of queues.
        _ = try await redis.send(RedisCommand("SADD", [RESPArgument(keys.queues)] + Set(jobs.map(\.queue)).map { RESPArgument($0.rawValue) }))
        let now = Date()
        let calls = jobs.map { job -> (script: RedisScript, keys: [RedisKey], arguments: [RESPArgument]) in
            let q = keys.queue(job.queue)
            let idem = job.idempotencyKey ?? ""
            return (
                Scripts.restore,
                [q.job(job.id), q.pending, q.scheduled, q.retrying, q.dead, q.events, q.idempotency(idem), q.wake, q.counter],
                [
                    RESPArgument(job.id.rawValue), RESPArgument(job.type.rawValue), RESPArgument(job.queue.rawValue), RESPArgument(job.payload),
                    RESPArgument(job.priority.rawValue), RESPArgument(job.maxAttempts), RESPArgument(job.timeout.milliseconds),
                    RESPArgument(job.backoff.base.milliseconds), RESPArgument(job.backoff.max.milliseconds), RESPArgument(job.state.rawValue),
                    RESPArgument(job.attempts), RESPArgument(idem), RESPArgument(configuration.idempotencyTTL.milliseconds),
                    RESPArgument(job.createdAt.millis), RESPArgument(job.runAt?.millis ?? 0), RESPArgument(job.lastError ?? ""),
                    RESPArgument(job.seq), RESPArgument(now.millis), RESPArgument(configuration.deadTTL.milliseconds),
                    RESPArgument(job.finishedAt?.millis ?? 0),
                ]
            )
        }
        return try await redis.evalScripts(calls).map { try $0.get().string.flatMap(JobState.init(rawValue:)) }
    }

    /// Whether this Redis process is known to hold this deployment's data: false after FLUSHALL, a
    /// restart without persistence, or any restart at all (the marker holds the `run_id` of the Redis
    /// process that last was checked, so a Redis restored from an older snapshot is noticed too).
    public func hasMarker() async throws -> Bool {
        let replies = try await redis.pipeline([RedisCommand("GET", [RESPArgument(keys.marker)]), RedisCommand("INFO", ["server"])])
        guard let marker = replies[0].string else { return false }
        return marker == Self.runID(replies[1])
    }

    /// Marks this Redis process as holding this deployment's data (after recovery ran or had nothing to do).
    public func setMarker() async throws {
        let info = try await redis.send(RedisCommand("INFO", ["server"]))
        _ = try await redis.send(RedisCommand("SET", [RESPArgument(keys.marker), RESPArgument(Self.runID(info))]))
    }

    private static func runID(_ info: RESPValue) -> String {
        let text = info.string ?? ""
        return text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("run_id:") }.map { String($0.dropFirst(7)) } ?? "unknown"
    }
}

extension RedisQueueDriver {
    /// Which of `jobs` Redis has a hash for (one pipeline).
    public func exists(_ jobs: [Job]) async throws -> [Bool] {
        if jobs.isEmpty { return [] }
        let replies = try await redis.pipeline(jobs.map { RedisCommand("EXISTS", [RESPArgument(keys.queue($0.queue).job($0.id))]) })
        return replies.map { $0.int == 1 }
    }
}
