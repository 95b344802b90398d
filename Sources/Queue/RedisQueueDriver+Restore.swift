import Foundation
import Logging
import Synchronization

/// What recovery did to one job (see `restore.lua`).
public enum RestoreOutcome: Sendable, Hashable {
    /// Redis lacked the job (`stale` false) or held an older copy (`stale` true); it now holds the journal's
    /// state (as restored).
    case restored(JobState, stale: Bool)
    /// Redis already holds the job at the journal's seq or later: left alone.
    case present
    /// Nothing for Redis to hold (a finished job Redis no longer has); only its idempotency key came back.
    case skipped
}

extension RedisQueueDriver {
    /// Jobs per `restore.lua` call (all of one queue); calls are pipelined.
    static let restoreChunk = 200

    /// Sets journaled jobs back into Redis (recovery): each job missing from Redis or older there than in the
    /// journal (lower `seq`) gets the journal's state with a `restored` event; newer copies are left alone.
    /// Idempotency keys of jobs still in the window come back whatever their state. Returns one outcome per job.
    public func restore(_ jobs: [Job]) async throws -> [RestoreOutcome] {
        try await restore(jobs, plan: try await reserveOrder(jobs))
    }

    /// Where restored pending jobs go in each queue's FIFO order: a range of the queue's counter per batch,
    /// reserved in the order batches are planned, so batches may then be restored concurrently (in any order)
    /// and still keep the journal's order.
    public struct RestorePlan: Sendable {
        let firstOrder: [QueueName: Int64]
    }

    /// Reserves FIFO order for `jobs` (one round trip) and registers their queues.
    public func reserveOrder(_ jobs: [Job]) async throws -> RestorePlan {
        if jobs.isEmpty { return RestorePlan(firstOrder: [:]) }
        let counts = Dictionary(grouping: jobs, by: \.queue).mapValues(\.count).sorted { $0.key.rawValue < $1.key.rawValue }
        // The queue list always (not from the once-a-second cache): Redis may just have lost it.
        let replies = try await redis.pipeline(
            [RedisCommand("SADD", [RESPArgument(keys.queues)] + counts.map { RESPArgument($0.key.rawValue) })]
                + counts.map { RedisCommand("INCRBY", [RESPArgument(keys.queue($0.key).counter), RESPArgument($0.value)]) })
        for case .error(let message) in replies { throw RedisClientError(.serverError, message: message) }
        var first = [QueueName: Int64]()
        for ((queue, n), reply) in zip(counts, replies.dropFirst()) { first[queue] = (reply.int ?? Int64(n)) - Int64(n) }
        return RestorePlan(firstOrder: first)
    }

    /// Restores `jobs` with the FIFO order `plan` reserved for them.
    public func restore(_ jobs: [Job], plan: RestorePlan) async throws -> [RestoreOutcome] {
        if jobs.isEmpty { return [] }
        let now = Date().millis
        var calls = [(script: RedisScript, keys: [RedisKey], arguments: [RESPArgument])]()
        var order = [[Int]]()
        let byQueue = Dictionary(grouping: jobs.indices, by: { jobs[$0].queue })
        for (queue, indices) in byQueue.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let q = keys.queue(queue)
            for start in stride(from: 0, to: indices.count, by: Self.restoreChunk) {
                let chunk = Array(indices[start..<min(start + Self.restoreChunk, indices.count)])
                var arguments: [RESPArgument] = [
                    RESPArgument(now), RESPArgument(configuration.idempotencyTTL.milliseconds), RESPArgument(configuration.deadTTL.milliseconds),
                    RESPArgument(configuration.completedTTL.milliseconds), RESPArgument(q.jobKeyPrefix), RESPArgument(q.idempotencyPrefix),
                    RESPArgument((plan.firstOrder[queue] ?? 0) + Int64(start)), RESPArgument(22),
                ]
                arguments.reserveCapacity(8 + chunk.count * 22)
                for i in chunk {
                    let job = jobs[i]
                    arguments += [
                        RESPArgument(job.id.rawValue), RESPArgument(job.type.rawValue), RESPArgument(job.queue.rawValue), RESPArgument(job.payload),
                        RESPArgument(job.priority.rawValue), RESPArgument(job.maxAttempts), RESPArgument(job.timeout.milliseconds),
                        RESPArgument(job.backoff.base.milliseconds), RESPArgument(job.backoff.max.milliseconds), RESPArgument(job.state.rawValue),
                        RESPArgument(job.attempts), RESPArgument(job.idempotencyKey ?? ""), RESPArgument(job.createdAt.millis),
                        RESPArgument(job.runAt?.millis ?? 0), RESPArgument(job.lastError ?? ""), RESPArgument(job.seq),
                        RESPArgument(job.finishedAt?.millis ?? 0), RESPArgument(job.result ?? ""),
                        RESPArgument(job.unique.map { q.unique($0.key).description } ?? ""), RESPArgument(job.unique?.while.rawValue ?? ""),
                        RESPArgument(job.unique?.key ?? ""), RESPArgument(job.replayOf?.rawValue ?? ""),
                    ]
                }
                calls.append((Scripts.restore, [q.pending, q.scheduled, q.retrying, q.active, q.dead, q.events, q.wake], arguments))
                order.append(chunk)
            }
        }
        var outcomes = [RestoreOutcome](repeating: .present, count: jobs.count)
        for (chunk, reply) in zip(order, try await redis.evalScripts(calls)) {
            let items = try reply.get().array ?? []
            guard items.count == chunk.count else { throw QueueError(.unexpectedReply, message: "restore: \(items.count) answers for \(chunk.count) jobs") }
            for (i, item) in zip(chunk, items) {
                switch item.string {
                case "present": outcomes[i] = .present
                case "skipped": outcomes[i] = .skipped
                case let text?:
                    let stale = text.hasPrefix("stale:")
                    guard let state = JobState(rawValue: stale ? String(text.dropFirst(6)) : text) else {
                        throw QueueError(.unexpectedReply, message: "restore: \(text)")
                    }
                    outcomes[i] = .restored(state, stale: stale)
                case nil: throw QueueError(.unexpectedReply, message: "restore: \(item)")
                }
            }
        }
        return outcomes
    }

    /// Ids Redis holds in `queue`'s live sets (pending, scheduled, retrying, active, dead), a page at a time
    /// (`after` is the previous page's `next`; a page may be empty while `next` is not nil).
    public func liveJobs(of queue: QueueName, after cursor: String = "0:0", count: Int = 5000) async throws -> (ids: [JobID], next: String?) {
        // One cursor over five sets: "<set index>:<ZSCAN cursor>".
        let q = keys.queue(queue)
        let sets = [q.pending, q.scheduled, q.retrying, q.active, q.dead]
        let parts = cursor.split(separator: ":").map(String.init)
        let setIndex = parts.count == 2 ? Int(parts[0]) ?? 0 : 0
        guard setIndex < sets.count else { return ([], nil) }
        let reply = try await redis.send(RedisCommand("ZSCAN", [RESPArgument(sets[setIndex]), RESPArgument(parts.count == 2 ? parts[1] : "0"), "COUNT", RESPArgument(count)]))
        let pair = reply.array ?? []
        let nextScan = pair.first?.string ?? "0"
        let items = pair.dropFirst().first?.array ?? []
        let ids = stride(from: 0, to: items.count, by: 2).compactMap { items[$0].string.flatMap(JobID.init(rawValue:)) }
        let next: String? = nextScan != "0" ? "\(setIndex):\(nextScan)" : (setIndex + 1 < sets.count ? "\(setIndex + 1):0" : nil)
        return (ids, next)
    }

    // MARK: Marker: does this Redis hold the journal's data?

    /// Whether this Redis process is known to hold this deployment's data, and its run id: false after
    /// FLUSHALL, a restart without persistence, or any restart at all (the marker holds the `run_id` of the
    /// Redis process that was last rebuilt or checked, so a Redis restored from an older snapshot is noticed).
    public func markerState() async throws -> (holds: Bool, runID: String) {
        if redis.isCluster {
            // Every master's own marker; the run id is the masters' run ids, comma-separated (see `setMarker`).
            let nodes = try await clusterMarkers()
            return (nodes.allSatisfy(\.holds), nodes.map(\.runID).joined(separator: ","))
        }
        let replies = try await redis.pipeline([RedisCommand("GET", [RESPArgument(keys.marker)]), RedisCommand("INFO", ["server"])])
        for case .error(let message) in replies { throw RedisClientError(.serverError, message: message) }
        let runID = RedisConnection.runID(fromInfo: replies[1]) ?? "unknown"
        return (replies[0].string == runID, runID)
    }

    public func hasMarker() async throws -> Bool { try await markerState().holds }

    /// Marks Redis process `runID` as holding this deployment's data (after recovery rebuilt it). If Redis
    /// restarted since `runID` was read, the marker names the old process and the next check rebuilds again.
    /// In a cluster `runID` lists the masters' run ids (from `markerState`): each master still running one of them
    /// gets its own marker; a master that changed since (a failover, a restart) is left unmarked for the next check.
    public func setMarker(runID: String) async throws {
        guard redis.isCluster else {
            _ = try await redis.send(RedisCommand("SET", [RESPArgument(keys.marker), RESPArgument(runID)]))
            return
        }
        let vouched = Set(runID.split(separator: ",").map(String.init))
        for node in try await clusterMarkers() where vouched.contains(node.runID) {
            _ = try await redis.pipeline([RedisCommand("SET", [RESPArgument(node.key), RESPArgument(node.runID)])], onRunID: node.runID)
        }
    }

    /// Removes the marker while a rebuild runs: fenced enqueues are refused and claims after a restart wait. In a
    /// cluster only the markers of masters that lost their vouching go (the others keep taking work meanwhile).
    public func clearMarker() async throws {
        guard redis.isCluster else {
            _ = try await redis.send(RedisCommand("DEL", [RESPArgument(keys.marker)]))
            return
        }
        for node in try await clusterMarkers() where !node.holds {
            _ = try await redis.send(RedisCommand("DEL", [RESPArgument(node.key)]))
        }
    }

    /// Each cluster master's marker key, its run id, and whether the marker names it (a master promoted from a
    /// replica carries its old master's marker, naming another process: not vouched, rebuilt like a restarted Redis).
    private func clusterMarkers() async throws -> [(key: RedisKey, runID: String, holds: Bool, marked: Bool)] {
        var nodes = [(key: RedisKey, runID: String, holds: Bool, marked: Bool)]()
        for master in try await redis.clusterMasters() {
            let key = keys.marker(tag: master.tag)
            let (replies, runID) = try await redis.pipelineReportingRunID([RedisCommand("GET", [RESPArgument(key)])])
            if case .error(let message) = replies[0] { throw RedisClientError(.serverError, message: message) }
            let id = runID ?? "unknown"
            nodes.append((key, id, replies[0].string == id, !replies[0].isNull))
        }
        return nodes
    }

    /// The Redis process (`run_id`) a journal vouched for (its marker names it), or, when no journal is
    /// registered at all (nothing could rebuild it), the process now reached; nil while neither holds. Fenced
    /// enqueues and claims run only on that process (`onRunID`): a Redis restarted from an older snapshot takes
    /// none until recovery has set stale jobs back and vouched for it.
    public func verifiedRunID() async throws -> String? {
        let now = ContinuousClock.now
        if let runID = verified.withLock({ state in state.recheckAt.map { now < $0 } ?? true ? state.runID : nil }) { return runID }
        if redis.isCluster { return try await clusterVerifiedRunIDs(now: now, waited: false) }
        let (replies, runID) = try await redis.pipelineReportingRunID([
            RedisCommand("GET", [RESPArgument(keys.marker)]), RedisCommand("ZCARD", [RESPArgument(keys.journals)]),
        ])
        for case .error(let message) in replies { throw RedisClientError(.serverError, message: message) }
        guard let runID else { return nil }
        if replies[0].string == runID {
            verified.withLock { $0 = (runID, nil, nil) }  // vouched for: holds until Redis restarts
        } else if replies[1].int == 0 {
            // No journal registered: nothing could rebuild this Redis. Checked again every few seconds, since a
            // server's journal may register any moment (e.g. on a Redis restored from before it existed).
            verified.withLock { $0 = (runID, now + .seconds(2), nil) }
        } else {
            verified.withLock { $0.runID = nil }
            return nil
        }
        return runID
    }

    /// The cluster masters claims and fenced enqueues may use, as a comma-separated list of run ids: those whose
    /// marker names them, all of them when no journal is registered or claims `waited` out `fenceWait`. Checked again
    /// every second, so a master that just lost its data (FLUSHALL keeps its run id) or was rebuilt is noticed.
    private func clusterVerifiedRunIDs(now: ContinuousClock.Instant, waited: Bool) async throws -> String? {
        let (replies, journalsNode) = try await redis.pipelineReportingRunID([RedisCommand("ZCARD", [RESPArgument(keys.journals)])])
        let journals = replies[0].int ?? 0
        let nodes = try await clusterMarkers()
        // An empty journal list proves nothing on a master promoted after a failover (it carries its old master's
        // marker): the list may be what it lost.
        let promoted = nodes.contains { $0.runID == journalsNode && $0.marked && !$0.holds }
        let all = (journals == 0 && !promoted) || waited
        let vouched = nodes.filter { all || $0.holds }.map(\.runID)
        let runIDs = vouched.isEmpty ? nil : vouched.joined(separator: ",")
        verified.withLock { state in
            state.runID = runIDs
            state.recheckAt = now + .seconds(1)
            if vouched.count == nodes.count { state.waitingSince = nil }
        }
        return runIDs
    }

    /// Forgets the verified process (after `serverChanged`: Redis restarted), so the next call checks again.
    func forgetVerified() {
        verified.withLock { $0 = (nil, nil, nil) }
    }

    /// Whether the Redis process reached now is vouched for by a journal (or no journal is registered): checked
    /// afresh, not from the cache.
    public func dataVerified() async throws -> Bool {
        forgetVerified()
        return try await verifiedRunID() != nil
    }

    /// The process claims may run on. Claims wait for `verifiedRunID`, but at most `fenceWait` per restart (a
    /// deployment whose servers are gone must not stall its workers forever); nil while they wait.
    func claimRunID() async throws -> String? {
        if let runID = try await verifiedRunID() { return runID }
        let now = ContinuousClock.now
        let since = verified.withLock { state -> ContinuousClock.Instant in
            if let since = state.waitingSince { return since }
            state.waitingSince = now
            return now
        }
        guard since.duration(to: now) >= configuration.fenceWait else { return nil }
        logger.warning("No journal vouched for this Redis after a restart; claiming anyway", metadata: ["fence.wait": "\(configuration.fenceWait)"])
        if redis.isCluster { return try await clusterVerifiedRunIDs(now: now, waited: true) }
        let runID = try await redis.pipelineReportingRunID([RedisCommand("PING")]).runID
        verified.withLock { $0 = (runID, nil, nil) }
        return runID
    }
}

extension RedisQueueDriver {
    /// Each job's seq in Redis (nil when Redis has no hash for it), one pipeline.
    public func seqs(_ jobs: [Job]) async throws -> [Int?] {
        if jobs.isEmpty { return [] }
        let replies = try await redis.pipeline(jobs.map { RedisCommand("HGET", [RESPArgument(keys.queue($0.queue).job($0.id)), "seq"]) })
        return replies.map { $0.string.flatMap { Int($0) } }
    }

    /// The jobs as Redis has them (nil where it has none), one pipeline: a journal that meets a job mid-life
    /// takes its definition from here.
    public func jobs(_ ids: [(JobID, QueueName)]) async throws -> [Job?] {
        if ids.isEmpty { return [] }
        let replies = try await redis.pipeline(ids.map { RedisCommand("HGETALL", [RESPArgument(keys.queue($0.1).job($0.0))]) })
        for case .error(let message) in replies { throw RedisClientError(.serverError, message: message) }
        return replies.map { Job(redisHash: $0) }
    }
}
