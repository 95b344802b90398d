import Foundation
import Logging
import Synchronization

/// The queue on Redis: every transition is one Lua script (see `Scripts`), keys come from `RedisKeys`.
public final class RedisQueueDriver: QueueDriver {
    public struct Configuration: Sendable {
        public var keys = RedisKeys()
        /// How long a completed job's hash stays in Redis (`DOCKET_COMPLETED_TTL`).
        public var completedTTL: Duration = .seconds(3600)
        /// How long a dead or cancelled job's hash stays in Redis (`DOCKET_DEAD_TTL`).
        public var deadTTL: Duration = .seconds(7 * 86400)
        /// How long an idempotency key keeps answering with its first job.
        public var idempotencyTTL: Duration = .seconds(86400)
        /// Jobs promoted or reaped per queue per script call.
        public var schedulerBatch = 500
        /// Longest single blocking wait for a wake token (a claim re-checks at least this often).
        public var maxBlock: Duration = .seconds(1)
        /// After Redis restarts, claims wait for a journal's recovery to vouch for the new Redis process (its
        /// marker), so work acknowledged since Redis' last snapshot never runs again; past this, they go on.
        public var fenceWait: Duration = .seconds(30)
        /// Cap of a queue's event stream while no live journal drains it (worker-only deployments).
        public var undrainedStreamCap = 100_000
        public init() {}
    }

    public let redis: RedisClient
    public let configuration: Configuration
    let logger: Logger
    public var keys: RedisKeys { configuration.keys }
    /// Queues this process registered in the `queues` set, and when (re-registered every second, so a
    /// Redis that lost its data learns its queues again from the next enqueue).
    private let knownQueues = Mutex<[QueueName: ContinuousClock.Instant]>([:])
    /// The Redis run id whose data a journal vouched for (marker), until when that holds without a new check (nil:
    /// until Redis restarts), and since when claims have waited for it.
    let verified = Mutex<(runID: String?, recheckAt: ContinuousClock.Instant?, waitingSince: ContinuousClock.Instant?)>((nil, nil, nil))
    /// Per list of queues a worker claims from: the index of the queue that last had work (its next claim's first try).
    let claimStart = Mutex<[[QueueName]: Int]>([:])
    /// The limits claims apply, and when they were read (see `currentLimits`).
    let limitCache = Mutex<(limits: [Limit], at: ContinuousClock.Instant)?>(nil)
    /// Wake-ups of multi-queue claims in a cluster.
    let wakeHub = WakeHub()
    /// When the scheduler last checked for streams no journal drains.
    let lastStreamCap = Mutex<ContinuousClock.Instant?>(nil)

    public init(redis: RedisClient, configuration: Configuration = .init(), logger: Logger) {
        self.redis = redis
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Enqueue

    public func enqueue(_ job: Job, actor: String? = nil) async throws -> EnqueueResult {
        try await enqueue([job], actor: actor)[0]
    }

    public func enqueue(_ jobs: [Job], actor: String? = nil) async throws -> [EnqueueResult] {
        try await enqueue(jobs, actor: actor, fenced: false)
    }

    /// Enqueues `jobs`; with `fenced`, a Redis that lost data and is not rebuilt yet (its marker is missing, or it
    /// restarted since a journal vouched for it) takes nothing and each job answers `.fenced`.
    public func enqueue(_ jobs: [Job], actor: String?, fenced: Bool) async throws -> [EnqueueResult] {
        try await enqueue(jobs, actor: actor, fenced: fenced, enforceUnique: true)
    }

    /// With `enforceUnique` false, jobs take their unique keys without being refused: jobs the journal already
    /// acknowledged (spooled while Redis was away) are delivered whatever holds their key.
    public func enqueue(_ jobs: [Job], actor: String?, fenced: Bool, enforceUnique: Bool) async throws -> [EnqueueResult] {
        if jobs.isEmpty { return [] }
        var runID: String?
        if fenced {
            runID = try await verifiedRunID()
            if runID == nil { return jobs.map { .fenced($0.id) } }
        }
        try await register(Set(jobs.map(\.queue)))
        let now = Date()
        // In a cluster the script cannot read the marker (another slot): each master's marker is checked by
        // `verifiedRunID` instead, and the script gets a key of its own slot in its place.
        let cluster = redis.isCluster
        let checkMarker = fenced && !cluster
        let calls = jobs.map { job -> (script: RedisScript, keys: [RedisKey], arguments: [RESPArgument]) in
            let q = keys.queue(job.queue)
            let idem = job.idempotencyKey ?? ""
            return (
                Scripts.enqueue,
                [q.job(job.id), q.pending, q.scheduled, q.events, q.idempotency(idem), q.wake, q.counter, cluster ? q.counter : keys.marker,
                 job.unique.map { q.unique($0.key) } ?? q.counter],
                [
                    RESPArgument(job.id.rawValue), RESPArgument(job.type.rawValue), RESPArgument(job.queue.rawValue),
                    RESPArgument(job.payload), RESPArgument(job.priority.rawValue), RESPArgument(job.maxAttempts),
                    RESPArgument(job.timeout.milliseconds), RESPArgument(job.backoff.base.milliseconds),
                    RESPArgument(job.backoff.max.milliseconds), RESPArgument(job.runAt?.millis ?? 0),
                    RESPArgument(now.millis), RESPArgument(idem), RESPArgument(configuration.idempotencyTTL.milliseconds),
                    RESPArgument(actor ?? ""), RESPArgument(job.createdAt.millis), RESPArgument(checkMarker ? "1" : "0"),
                    RESPArgument(job.unique?.key ?? ""), RESPArgument(job.unique?.while.rawValue ?? ""), RESPArgument(q.jobKeyPrefix),
                    RESPArgument(uniqueTTL(job, now: now)), RESPArgument(enforceUnique ? "1" : "0"),
                    RESPArgument(job.replayOf?.rawValue ?? ""),
                ]
            )
        }
        var replies: [Result<RESPValue, RedisClientError>]
        do {
            replies = try await redis.evalScripts(calls, onRunID: runID)
        } catch let error as RedisClientError where error.code == .serverChanged {
            forgetVerified()
            guard cluster, fenced, Set(jobs.map(\.queue)).count > 1 else { return jobs.map { .fenced($0.id) } }
            replies = await enqueueByQueue(jobs, calls, runID: runID)
        } catch let error as RedisClientError where cluster && fenced && error.isConnectionError && Set(jobs.map(\.queue)).count > 1 {
            replies = await enqueueByQueue(jobs, calls, runID: runID)
        }
        var results = [EnqueueResult]()
        results.reserveCapacity(jobs.count)
        for (job, reply) in zip(jobs, replies) {
            if case .failure(let error) = reply, error.code == .serverChanged {
                results.append(.fenced(job.id))  // its master failed or is not vouched for (cluster): spooled
                continue
            }
            let value = try reply.get()
            guard let pair = value.array, pair.count == 2, let created = pair[0].int, let idText = pair[1].string,
                let id = JobID(rawValue: idText)
            else { throw QueueError(.unexpectedReply, jobID: job.id, message: "enqueue: \(value)") }
            if created == 3 {
                results.append(.uniqueConflict(job.id, holder: id))
            } else if created == 2 {
                results.append(.fenced(job.id))
            } else if created == 1 {
                var stored = job
                stored.state = (job.runAt.map { $0.millis > now.millis } ?? false) ? .scheduled : .pending
                stored.updatedAt = Date(millis: now.millis)
                stored.seq = 1
                results.append(.created(stored))
            } else {
                // The idempotency key's job (or the same id) already exists: answer with it.
                if let existing = try await self.job(id, queue: job.queue) {
                    results.append(.existing(existing))
                } else {
                    results.append(.expired(id))
                }
            }
        }
        return results
    }

    /// How long a unique key outlives its enqueue: the dead TTL past the job's run time (a holder that finished long
    /// ago no longer blocks anyway; the key only saves the lookup).
    private func uniqueTTL(_ job: Job, now: Date) -> Int64 {
        max(0, (job.runAt?.millis ?? now.millis) - now.millis) + configuration.deadTTL.milliseconds
    }

    /// A cluster batch that failed as a whole (a master down or not vouched for) goes again one queue at a time, at
    /// once: queues on healthy masters take their jobs, the others' calls answer `serverChanged` (fenced, spooled).
    /// Sending a call twice is safe: enqueue.lua answers an id it already stored with that id.
    private func enqueueByQueue(
        _ jobs: [Job], _ calls: [(script: RedisScript, keys: [RedisKey], arguments: [RESPArgument])], runID: String?
    ) async -> [Result<RESPValue, RedisClientError>] {
        let groups = Dictionary(grouping: jobs.indices, by: { jobs[$0].queue })
        var replies = [Result<RESPValue, RedisClientError>](repeating: .failure(RedisClientError(.serverChanged)), count: jobs.count)
        await withTaskGroup(of: ([Int], [Result<RESPValue, RedisClientError>]?).self) { group in
            for indices in groups.values {
                group.addTask { (indices, try? await self.redis.evalScripts(indices.map { calls[$0] }, onRunID: runID)) }
            }
            for await (indices, answers) in group {
                guard let answers else { continue }
                for (i, answer) in zip(indices, answers) { replies[i] = answer }
            }
        }
        return replies
    }

    /// Adds queue names to the `queues` set once per process (outside the scripts: it is another slot).
    private func register(_ queues: Set<QueueName>) async throws {
        let now = ContinuousClock.now
        let due = knownQueues.withLock { known in queues.filter { known[$0].map { $0.duration(to: now) > .seconds(1) } ?? true } }
        guard !due.isEmpty else { return }
        _ = try await redis.send(RedisCommand("SADD", [RESPArgument(keys.queues)] + due.map { RESPArgument($0.rawValue) }))
        knownQueues.withLock { known in for q in due { known[q] = now } }
    }

    // MARK: Lookup

    public func job(_ id: JobID, queue: QueueName? = nil) async throws -> Job? {
        let candidates: [QueueName]
        if let queue { candidates = [queue] } else { candidates = try await queues() }
        if candidates.isEmpty { return nil }
        let replies = try await redis.pipeline(candidates.map { RedisCommand("HGETALL", [RESPArgument(keys.queue($0).job(id))]) })
        for reply in replies {
            if case .error(let message) = reply { throw RedisClientError(.serverError, message: message) }
            if let job = Job(redisHash: reply) { return job }
        }
        return nil
    }

    /// The queue a job lives in, by probing every known queue (nil if no hash exists).
    func locate(_ id: JobID, queue: QueueName?) async throws -> QueueName? {
        if let queue { return queue }
        let all = try await queues()
        if all.isEmpty { return nil }
        let replies = try await redis.pipeline(all.map { RedisCommand("EXISTS", [RESPArgument(keys.queue($0).job(id))]) })
        return zip(all, replies).first { $0.1.int == 1 }?.0
    }

    public func queues() async throws -> [QueueName] {
        let reply = try await redis.send(RedisCommand("SMEMBERS", [RESPArgument(keys.queues)]))
        return (reply.array ?? []).compactMap { $0.string.flatMap(QueueName.init(rawValue:)) }.sorted { $0.rawValue < $1.rawValue }
    }

    // MARK: Claim and lease

    public func claim(from queues: [QueueName], worker: WorkerID, lease: Duration, wait: Duration) async throws -> Lease? {
        try await claim(from: queues, worker: worker, lease: lease, wait: wait, max: 1).first
    }

    public func claim(from queues: [QueueName], worker: WorkerID, lease: Duration, wait: Duration, max: Int) async throws -> [Lease] {
        precondition(!queues.isEmpty && max > 0, "claim needs a queue and a positive max")
        let deadline = ContinuousClock.now + wait
        while true {
            let leases = try await completeAndClaim([], from: queues, worker: worker, lease: lease, max: max).leases
            if !leases.isEmpty { return leases }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .milliseconds(1) || Task.isCancelled { return [] }
            try await waitForWork(on: queues, wait: remaining)
        }
    }

    public func completeAndClaim(
        _ completions: [Completion], from queues: [QueueName], worker: WorkerID, lease: Duration, max: Int
    ) async throws -> (leases: [Lease], completed: [Bool]) {
        precondition(!queues.isEmpty && max >= 0, "claim needs a queue and a max of at least 0")
        guard max > 0, let runID = try await claimRunID() else {
            // Nothing to lease, or Redis restarted and no journal has vouched for its data yet (claims wait).
            return ([], try await complete(completions))
        }
        // The claim goes to the queue that had work last time (the first, unless it was empty then), carrying that
        // queue's completions; other queues' completions ride in the same round trip, and so do the sizes of the
        // queues ahead of it, so a higher-precedence queue that filled up is claimed from next time.
        let limits = try await currentLimits()
        let start = queues.count == 1 ? 0 : claimStart.withLock { $0[queues] ?? 0 }
        let first = queues[start]
        let carried = completions.indices.filter { completions[$0].lease.job.queue == first }
        let others = completions.indices.filter { completions[$0].lease.job.queue != first }
        var calls = [claimCall(first, completing: carried.map { completions[$0] }, worker: worker, lease: lease, max: max, limits: limits)]
        let groups = Dictionary(grouping: others) { completions[$0].lease.job.queue }.sorted { $0.key.rawValue < $1.key.rawValue }
        calls += groups.map { completeCall($0.key, $0.value.map { completions[$0] }) }
        let ahead = queues[..<start].map { RedisCommand("ZCARD", [RESPArgument(keys.queue($0).pending)]) }
        let replies: [Result<RESPValue, RedisClientError>]
        var sizes = [RESPValue]()
        do {
            async let aheadSizes = ahead.isEmpty ? [] : redis.pipeline(ahead)
            replies = try await redis.evalScripts(calls.map { ($0.script, $0.keys, $0.arguments) }, onRunID: runID)
            sizes = (try? await aheadSizes) ?? []
        } catch let error as RedisClientError where error.code == .serverChanged {
            forgetVerified()  // Redis restarted since it was vouched for: check again before claiming
            let completed = try await complete(completions)
            // In a cluster only this queue's master may be unvouched: the other queues are still claimed.
            guard redis.isCluster else { return ([], completed) }
            return (try await claimInTurn(queues, skipping: first, worker: worker, lease: lease, max: max, runID: runID, limits: limits), completed)
        }
        var completed = [Bool](repeating: false, count: completions.count)
        let claimed = try replies[0].get()
        guard case .array(let parts) = claimed, parts.count == 4, case .array(let flags) = parts[0], flags.count == carried.count else {
            throw QueueError(.unexpectedReply, message: "claim: \(claimed)")
        }
        for (i, flag) in zip(carried, flags) { completed[i] = flag.int == 1 }
        for (group, reply) in zip(groups, replies.dropFirst()) {
            let flags = try Self.completeFlags(reply.get(), count: group.value.count)
            for (i, flag) in zip(group.value, flags) { completed[i] = flag }
        }
        var leases = try decodeLeases(claimed, token: calls[0].token, worker: worker)
        if let filled = sizes.firstIndex(where: { ($0.int ?? 0) > 0 }) { claimStart.withLock { $0[queues] = filled } }
        // That queue had nothing ready: try the others in order of precedence, as a plain claim.
        if leases.isEmpty {
            leases = try await claimInTurn(queues, skipping: first, worker: worker, lease: lease, max: max, runID: runID, limits: limits)
            if leases.isEmpty, start > 0 { claimStart.withLock { $0[queues] = nil } }  // all empty: the first goes first again
        }
        return (leases, completed)
    }

    /// Claims from the first of `queues` that has work, one queue at a time. With several queues, one pipeline of
    /// `ZCARD`s first skips the empty ones (a round trip for all rather than a claim call for each).
    /// The queue that gave leases becomes the next claim's first try (`claimStart`).
    private func claimInTurn(
        _ queues: [QueueName], skipping tried: QueueName, worker: WorkerID, lease: Duration, max: Int, runID: String, limits: [Limit]
    ) async throws -> [Lease]
    {
        var candidates = queues.filter { $0 != tried }
        if candidates.count > 1 {
            let sizes = try await redis.pipeline(candidates.map { RedisCommand("ZCARD", [RESPArgument(keys.queue($0).pending)]) })
            candidates = zip(candidates, sizes).filter { $0.1.int.map { $0 > 0 } ?? true }.map(\.0)
        }
        for queue in candidates {
            let call = claimCall(queue, completing: [], worker: worker, lease: lease, max: max, limits: limits)
            do {
                let reply = try await redis.evalScript(call.script, keys: call.keys, arguments: call.arguments, onRunID: runID)
                let leases = try decodeLeases(reply, token: call.token, worker: worker)
                if !leases.isEmpty {
                    if queues.count > 1 { claimStart.withLock { $0[queues] = queues.firstIndex(of: queue) } }
                    return leases
                }
            } catch let error as RedisClientError where error.code == .serverChanged {
                forgetVerified()  // this queue's Redis (a cluster master, or a restarted Redis) is not vouched for: skip it
            }
        }
        return []
    }

    /// Blocks until an enqueue wakes one of `queues`, or `wait` (at most `maxBlock`) passes. While a restarted Redis
    /// waits for a journal to vouch for it, this only pauses briefly (claims are held back meanwhile).
    public func waitForWork(on queues: [QueueName], wait: Duration) async throws {
        let block = min(wait, configuration.maxBlock)
        guard block > .milliseconds(1) else { return }
        if try await claimRunID() == nil {
            try await Task.sleep(for: min(block, .milliseconds(100)))
            return
        }
        let seconds = String(format: "%.3f", Double(block.milliseconds) / 1000)
        guard redis.isCluster, queues.count > 1 else {
            let wakeKeys = queues.map { RESPArgument(keys.queue($0).wake) }
            do {
                _ = try await redis.withDedicatedConnection(for: keys.queue(queues[0]).wake) { connection in
                    try await connection.sendBlocking(RedisCommand("BLPOP", wakeKeys + [RESPArgument(seconds)]), block: block)
                }
            } catch let error as RedisClientError where error.isClusterRedirect {
                // The queue's slot is moving: the claim follows the redirect; pause a moment rather than spin.
                try await Task.sleep(for: .milliseconds(10))
            }
            return
        }
        // A cluster takes no BLPOP across slots: each queue has a listener blocking on its wake list (on the master
        // serving it), and the claim waits for any of them.
        await wakeHub.wait(on: queues, timeout: block) { queue in
            Task { await self.listenForWakes(queue) }
        }
    }

    /// A cluster queue's wake listener (see `WakeHub`): BLPOP on its wake list until the client shuts down.
    private func listenForWakes(_ queue: QueueName) async {
        let wake = keys.queue(queue).wake
        let seconds = String(format: "%.3f", Double(configuration.maxBlock.milliseconds) / 1000)
        defer { wakeHub.stopped(queue) }
        while true {
            do {
                let reply = try await redis.withDedicatedConnection(for: wake) { connection in
                    try await connection.sendBlocking(RedisCommand("BLPOP", [RESPArgument(wake), RESPArgument(seconds)]), block: configuration.maxBlock)
                }
                if !reply.isNull { wakeHub.signal(queue) }
            } catch let error as RedisClientError where error.code == .shutdown {
                return
            } catch {
                // Down, or its slot moving: claims go on polling every maxBlock meanwhile; try again shortly.
                wakeHub.signal(queue)
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private static let claimFieldArguments = Job.claimFields.map { RESPArgument($0) }

    private struct ScriptCall {
        var script: RedisScript
        var keys: [RedisKey]
        var arguments: [RESPArgument]
        var token = ""
    }

    private func claimCall(_ queue: QueueName, completing: [Completion], worker: WorkerID, lease: Duration, max: Int, limits: [Limit])
        -> ScriptCall
    {
        let q = keys.queue(queue)
        let token = "\(worker.rawValue)/\(UInt64.random(in: 0...UInt64.max))"
        var arguments = [
            RESPArgument(lease.milliseconds), RESPArgument(worker.rawValue), RESPArgument(q.jobKeyPrefix), RESPArgument(token),
            RESPArgument(max), RESPArgument(configuration.completedTTL.milliseconds), RESPArgument(completing.count),
        ]
        arguments.reserveCapacity(arguments.count + completing.count * 3 + 2 + Self.claimFieldArguments.count)
        Self.appendCompletions(completing, to: &arguments)
        let applying = limits.filter { $0.applies(to: queue) }
        arguments.append(RESPArgument(applying.count))
        arguments.append(RESPArgument(redis.isCluster ? q.limitCounterPrefix : keys.limitCounterPrefix))
        for l in applying {
            arguments += [
                RESPArgument(l.name), RESPArgument(l.type ?? ""), RESPArgument(l.key ?? ""), RESPArgument(l.rateLimit ?? 0),
                RESPArgument(l.ratePerMs ?? 0), RESPArgument(l.concurrency ?? 0),
            ]
        }
        arguments += Self.claimFieldArguments
        return ScriptCall(script: Scripts.claim, keys: [q.pending, q.active, q.events, q.paused, q.wake, q.stats], arguments: arguments, token: token)
    }

    private func completeCall(_ queue: QueueName, _ completions: [Completion]) -> ScriptCall {
        let q = keys.queue(queue)
        var arguments = [RESPArgument(q.jobKeyPrefix), RESPArgument(configuration.completedTTL.milliseconds)]
        arguments.reserveCapacity(2 + completions.count * 3)
        Self.appendCompletions(completions, to: &arguments)
        return ScriptCall(script: Scripts.complete, keys: [q.active, q.events, q.stats], arguments: arguments)
    }

    private static func appendCompletions(_ completions: [Completion], to arguments: inout [RESPArgument]) {
        for c in completions {
            arguments.append(RESPArgument(c.lease.job.id.rawValue))
            arguments.append(RESPArgument(c.lease.token))
            arguments.append(RESPArgument(c.result ?? ""))
        }
    }

    private static func completeFlags(_ reply: RESPValue, count: Int) throws -> [Bool] {
        guard let flags = reply.array, flags.count == count else { throw QueueError(.unexpectedReply, message: "complete: \(reply)") }
        return flags.map { $0.int == 1 }
    }

    /// The leases of a claim.lua reply: { completed, jobs, start ms, lease deadline ms }.
    private func decodeLeases(_ reply: RESPValue, token: String, worker: WorkerID) throws -> [Lease] {
        guard case .array(let parts) = reply, parts.count == 4, case .array(let hashes) = parts[1] else {
            throw QueueError(.unexpectedReply, message: "claim: \(reply)")
        }
        if hashes.isEmpty { return [] }
        guard let now = parts[2].int, let until = parts[3].int else { throw QueueError(.unexpectedReply, message: "claim: \(reply)") }
        let startedAt = Date(millis: now), deadline = Date(millis: until)
        return try hashes.enumerated().map { i, hash in
            guard let job = Job(claimValues: hash, startedAt: startedAt, worker: worker, leaseUntil: deadline) else {
                throw QueueError(.unexpectedReply, message: "claim: \(hash)")
            }
            return Lease(job: job, worker: worker, token: "\(token):\(i + 1)", deadline: deadline)
        }
    }

    public func renew(_ lease: Lease, for duration: Duration) async throws -> Lease {
        let q = keys.queue(lease.job.queue)
        let reply = try await redis.evalScript(
            Scripts.renew, keys: [q.active, q.job(lease.job.id)],
            arguments: [RESPArgument(lease.job.id.rawValue), RESPArgument(lease.token), RESPArgument(duration.milliseconds)])
        guard let ms = reply.int, ms > 0 else { throw QueueError(.leaseLost, jobID: lease.job.id) }
        let deadline = Date(millis: ms)
        var renewed = lease
        renewed.deadline = deadline
        renewed.job.leaseUntil = deadline
        return renewed
    }

    public func progress(_ lease: Lease, _ progress: String) async throws {
        let q = keys.queue(lease.job.queue)
        let reply = try await redis.evalScript(
            Scripts.progress, keys: [q.job(lease.job.id), q.events],
            arguments: [RESPArgument(lease.job.id.rawValue), RESPArgument(lease.token), RESPArgument(progress), RESPArgument(Date().millis)])
        guard reply.int == 1 else { throw QueueError(.leaseLost, jobID: lease.job.id) }
    }

    public func complete(_ lease: Lease, result: String?) async throws {
        guard try await complete([Completion(lease: lease, result: result)]) == [true] else { throw QueueError(.leaseLost, jobID: lease.job.id) }
    }

    /// Completes many leased jobs: one script call per queue, in one pipeline. Returns per job whether the lease
    /// was still held (where not, that result was dropped).
    public func complete(_ completions: [Completion]) async throws -> [Bool] {
        if completions.isEmpty { return [] }
        let groups = Dictionary(grouping: completions.indices) { completions[$0].lease.job.queue }.sorted { $0.key.rawValue < $1.key.rawValue }
        let calls = groups.map { completeCall($0.key, $0.value.map { completions[$0] }) }
        let replies = try await redis.evalScripts(calls.map { ($0.script, $0.keys, $0.arguments) })
        var completed = [Bool](repeating: false, count: completions.count)
        for (group, reply) in zip(groups, replies) {
            for (i, flag) in zip(group.value, try Self.completeFlags(reply.get(), count: group.value.count)) { completed[i] = flag }
        }
        return completed
    }

    public func fail(_ lease: Lease, error: String) async throws -> FailOutcome {
        let q = keys.queue(lease.job.queue)
        let reply = try await redis.evalScript(
            Scripts.fail, keys: [q.active, q.job(lease.job.id), q.retrying, q.dead, q.events, q.stats],
            arguments: [
                RESPArgument(lease.job.id.rawValue), RESPArgument(lease.token), RESPArgument(Date().millis),
                RESPArgument(error), RESPArgument(String(Double.random(in: 0..<1))), RESPArgument(configuration.deadTTL.milliseconds),
            ])
        if reply.isNull { throw QueueError(.leaseLost, jobID: lease.job.id) }
        guard let pair = reply.array, pair.count == 2, let state = pair[0].string else {
            throw QueueError(.unexpectedReply, jobID: lease.job.id, message: "fail: \(reply)")
        }
        return state == JobState.dead.rawValue ? .dead : .retrying(at: Date(millis: pair[1].int ?? 0))
    }

    public func release(_ lease: Lease) async throws {
        let q = keys.queue(lease.job.queue)
        let reply = try await redis.evalScript(
            Scripts.release, keys: [q.active, q.job(lease.job.id), q.pending, q.events, q.wake, q.counter],
            arguments: [RESPArgument(lease.job.id.rawValue), RESPArgument(lease.token), RESPArgument(Date().millis)])
        guard reply.int == 1 else { throw QueueError(.leaseLost, jobID: lease.job.id) }
    }

    // MARK: Operator actions

    public func cancel(_ id: JobID, queue: QueueName? = nil, actor: String? = nil) async throws -> Job {
        guard let queue = try await locate(id, queue: queue) else { throw QueueError(.notFound, jobID: id) }
        let q = keys.queue(queue)
        let reply = try await redis.evalScript(
            Scripts.cancel, keys: [q.job(id), q.pending, q.scheduled, q.retrying, q.events],
            arguments: [RESPArgument(id.rawValue), RESPArgument(Date().millis), RESPArgument(actor ?? ""), RESPArgument(configuration.deadTTL.milliseconds)])
        return try await outcome(reply, id: id, queue: queue)
    }

    public func requeue(_ id: JobID, queue: QueueName? = nil, actor: String? = nil) async throws -> Job {
        guard let queue = try await locate(id, queue: queue) else { throw QueueError(.notFound, jobID: id) }
        let q = keys.queue(queue)
        let reply = try await redis.evalScript(
            Scripts.requeue, keys: [q.job(id), q.dead, q.pending, q.events, q.wake, q.counter],
            arguments: [RESPArgument(id.rawValue), RESPArgument(Date().millis), RESPArgument(actor ?? "")])
        return try await outcome(reply, id: id, queue: queue)
    }

    /// Maps a cancel/requeue script answer to the job or a `notFound`/`conflict` error.
    private func outcome(_ reply: RESPValue, id: JobID, queue: QueueName) async throws -> Job {
        switch reply.string {
        case "ok":
            guard let job = try await job(id, queue: queue) else { throw QueueError(.notFound, jobID: id) }
            return job
        case "not_found":
            throw QueueError(.notFound, jobID: id)
        case let state?:
            throw QueueError(.conflict, jobID: id, state: JobState(rawValue: state), message: "job is \(state)")
        case nil:
            throw QueueError(.unexpectedReply, jobID: id, message: "\(reply)")
        }
    }

    public func pause(_ queue: QueueName) async throws {
        try await register([queue])
        let q = keys.queue(queue)
        _ = try await redis.evalScript(Scripts.pause, keys: [q.paused, q.wake], arguments: [RESPArgument(Date().millis)])
    }

    public func resume(_ queue: QueueName) async throws {
        let q = keys.queue(queue)
        _ = try await redis.evalScript(Scripts.resume, keys: [q.paused, q.pending, q.wake], arguments: [])
    }

    // MARK: Counts and scheduler

    public func counts(_ queue: QueueName) async throws -> QueueCounts {
        let q = keys.queue(queue)
        let replies = try await redis.pipeline([
            RedisCommand("ZCARD", [RESPArgument(q.pending)]),
            RedisCommand("ZCARD", [RESPArgument(q.scheduled)]),
            RedisCommand("ZCARD", [RESPArgument(q.active)]),
            RedisCommand("ZCARD", [RESPArgument(q.retrying)]),
            RedisCommand("ZCARD", [RESPArgument(q.dead)]),
            RedisCommand("HMGET", [RESPArgument(q.stats), "completed", "failed"]),
            RedisCommand("EXISTS", [RESPArgument(q.paused)]),
        ])
        if let error = replies.first(where: { if case .error = $0 { true } else { false } }) {
            throw RedisClientError(.serverError, message: "\(error)")
        }
        var counts = QueueCounts()
        counts.pending = Int(replies[0].int ?? 0)
        counts.scheduled = Int(replies[1].int ?? 0)
        counts.active = Int(replies[2].int ?? 0)
        counts.retrying = Int(replies[3].int ?? 0)
        counts.dead = Int(replies[4].int ?? 0)
        let totals = replies[5].array ?? []
        counts.completed = Int(totals.first?.int ?? 0)
        counts.failed = Int(totals.dropFirst().first?.int ?? 0)
        counts.paused = replies[6].int == 1
        return counts
    }

    /// Promotes and reaps only on the Redis process claims may run on: after a restart from an older snapshot,
    /// reaping a stale copy's long-expired lease would revive a job the journal has since finished.
    public func runScheduler(now: Date = Date()) async throws -> SchedulerStep {
        var step = SchedulerStep()
        guard let runID = try await claimRunID() else { return step }
        let queues = try await queues()
        if queues.isEmpty { return step }
        let batch = RESPArgument(configuration.schedulerBatch)
        var calls = [(script: RedisScript, keys: [RedisKey], arguments: [RESPArgument])]()
        for queue in queues {
            let q = keys.queue(queue)
            calls.append((Scripts.promote, [q.scheduled, q.retrying, q.pending, q.events, q.wake, q.counter],
                [RESPArgument(now.millis), batch, RESPArgument(q.jobKeyPrefix)]))
            calls.append((Scripts.reap, [q.active, q.retrying, q.dead, q.events, q.stats],
                [RESPArgument(now.millis), batch, RESPArgument(q.jobKeyPrefix), RESPArgument(String(Double.random(in: 0..<1))),
                 RESPArgument(configuration.deadTTL.milliseconds)]))
        }
        let replies: [Result<RESPValue, RedisClientError>]
        do {
            replies = try await redis.evalScripts(calls, onRunID: runID)
        } catch let error as RedisClientError where error.code == .serverChanged {
            forgetVerified()
            return step
        }
        for (i, reply) in replies.enumerated() {
            let n = Int(try reply.get().int ?? 0)
            if i % 2 == 0 { step.promoted += n } else { step.reaped += n }
        }
        if step.reaped > 0 { logger.warning("Reaped expired leases", metadata: ["jobs.reaped": "\(step.reaped)"]) }
        try await capUndrainedStreams(queues)
        return step
    }
}
