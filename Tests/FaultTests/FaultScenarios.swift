import DocketTestSupport
import Foundation
import Testing

/// Black-box fault injection (SPEC §3 "Data loss", §7): the real `docket` binary and real `redis-server`s,
/// one fault per scenario, every scenario ending in the same `InvariantChecker`. Each prints one line:
/// `FAULT <scenario>: acknowledged=… completed=… rerun=… (why) … lost=…`.
@Suite("Fault injection (real processes)", .serialized)
struct FaultScenarios {
    /// Prints the counts, records violations, and shows the processes' stderr when something failed.
    func finish(_ cluster: FaultCluster, _ report: FaultReport, sourceLocation: SourceLocation = #_sourceLocation) {
        report.record(sourceLocation: sourceLocation)
        if !report.violations.isEmpty || report.lost > 0 { print("FAULT \(cluster.name) stderr:\n\(cluster.diagnostics())") }
    }

    /// Waits up to `timeout` for `condition`, then goes on either way (pacing a fault, not asserting).
    func awhile(_ timeout: Duration, _ condition: () async -> Bool) async {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end, !(await condition()) { try? await Task.sleep(for: .milliseconds(50)) }
    }

    func delayed<T: Sendable>(_ delay: Duration, _ body: @Sendable () async -> T) async -> T {
        try? await Task.sleep(for: delay)
        return await body()
    }

    // MARK: 1. worker SIGKILL mid-job

    @Test("worker SIGKILL mid-job: leases expire, the jobs run again elsewhere and complete", .timeLimit(.minutes(2)))
    func workerSigkill() async throws {
        let cluster = try FaultCluster("worker-sigkill")
        defer { cluster.cleanup() }
        let server = try await cluster.startServer()
        let slow = cluster.handler(sleep: 0.1)
        let first = try await cluster.startWorker(handlers: [slow])
        await cluster.load(0..<200, concurrency: 8) { server.base }
        try await eventually(timeout: .seconds(30), "40 handler runs before the kill") { cluster.runCount >= 40 }
        try await cluster.crash(first)
        _ = try await cluster.startWorker(handlers: [slow])
        let report = try await InvariantChecker(cluster, journals: [server.journal]).check()
        finish(cluster, report)
        let answers = await cluster.ledger.summary
        #expect(report.acknowledged == 200, "every enqueue answered: \(answers)")
        #expect(report.rerun >= 1, "the SIGKILL caught jobs mid-run (none ran twice)")
    }

    // MARK: 2. server SIGKILL during a burst of enqueues

    @Test("server SIGKILL during a burst of enqueues: every acknowledged job completes after a restart", .timeLimit(.minutes(2)))
    func serverSigkill() async throws {
        let cluster = try FaultCluster("server-sigkill")
        defer { cluster.cleanup() }
        let first = try await cluster.startServer()
        _ = try await cluster.startWorker()
        let target = Shared(first.base)
        // Clients retry what got no answer with the same idempotency key, as a careful client would.
        let load = Task { await cluster.load(0..<300, concurrency: 8, keyed: true, retryUnanswered: true, deadline: .seconds(60)) { target.value } }
        defer { load.cancel() }
        try await eventually(timeout: .seconds(30), "100 acknowledged enqueues") { await cluster.ledger.count >= 100 }
        try await cluster.crash(first.process)
        let second = try await cluster.startServer(journal: first.journal)
        target.value = second.base
        await load.value
        let unanswered = await cluster.ledger.unanswered
        let report = try await InvariantChecker(cluster, journals: [first.journal]).check(extra: "unanswered=\(unanswered)")
        finish(cluster, report)
        let answers = await cluster.ledger.summary
        #expect(report.acknowledged == 300, "every request acknowledged once retried: \(answers)")
    }

    // MARK: 3. Redis SIGKILL + restart without persistence, under load

    @Test("Redis SIGKILL and restart without persistence under load: the server rebuilds from the journal", .timeLimit(.minutes(2)))
    func redisSigkill() async throws {
        let cluster = try FaultCluster("redis-sigkill", appendOnly: false)
        defer { cluster.cleanup() }
        let server = try await cluster.startServer()
        _ = try await cluster.startWorker(handlers: [cluster.handler(sleep: 0.05)])
        let load = Task { await cluster.load(0..<400, concurrency: 4, pace: .milliseconds(10), keyed: true) { server.base } }
        defer { load.cancel() }
        try await eventually(timeout: .seconds(30), "100 acknowledged enqueues") { await cluster.ledger.count >= 100 }
        let before = Array(await cluster.ledger.jobs.prefix(50))
        cluster.redis.kill()
        let down = await cluster.ledger.answered
        await awhile(.seconds(3)) { await cluster.ledger.answered >= down + 20 }
        try cluster.redis.restart()
        // Keys acknowledged before the loss still name their jobs, during the rebuild and after it.
        let replayed = await cluster.replay(before, to: server.base)
        await load.value
        let counts = await cluster.ledger.counts
        let report = try await InvariantChecker(cluster, journals: [server.journal], redisLost: true).check(
            extra: "answers=[\(counts.description)] replayedAsOtherJob=\(replayed.count)")
        finish(cluster, report)
        let answers = await cluster.ledger.summary
        #expect(counts.timeouts == 0, "enqueue never hangs")
        #expect(counts.refusals == 0, "every enqueue accepted: \(answers)")
        #expect(replayed.isEmpty, "a repeated idempotency key answers its first job: \(replayed.prefix(3))")
    }

    // MARK: 4. FLUSHALL under load

    @Test("FLUSHALL under load: the server rebuilds from the journal", .timeLimit(.minutes(2)))
    func flushall() async throws {
        let cluster = try FaultCluster("flushall")
        defer { cluster.cleanup() }
        let server = try await cluster.startServer()
        _ = try await cluster.startWorker(handlers: [cluster.handler(sleep: 0.05)])
        let load = Task { await cluster.load(0..<400, concurrency: 4, pace: .milliseconds(10), keyed: true) { server.base } }
        defer { load.cancel() }
        try await eventually(timeout: .seconds(30), "150 acknowledged enqueues") { await cluster.ledger.count >= 150 }
        let before = Array(await cluster.ledger.jobs.prefix(50))
        _ = try await cluster.redisCLI("FLUSHALL")
        // Keys acknowledged before the flush (most of their jobs completed) still name their jobs, during
        // the rebuild and after it.
        let replayed = await cluster.replay(before, to: server.base)
        await load.value
        let counts = await cluster.ledger.counts
        let report = try await InvariantChecker(cluster, journals: [server.journal], redisLost: true).check(
            extra: "answers=[\(counts.description)] replayedAsOtherJob=\(replayed.count)")
        finish(cluster, report)
        let answers = await cluster.ledger.summary
        #expect(counts.timeouts == 0 && counts.refusals == 0, "every enqueue accepted: \(answers)")
        #expect(replayed.isEmpty, "a repeated idempotency key answers its first job: \(replayed.prefix(3))")
    }

    // MARK: 5. Redis restarted from an older RDB

    @Test("Redis restarted from an older RDB: no completed job runs again", .timeLimit(.minutes(2)))
    func olderSnapshot() async throws {
        let cluster = try FaultCluster("older-rdb", appendOnly: false)
        defer { cluster.cleanup() }
        let server = try await cluster.startServer()
        _ = try await cluster.startWorker(concurrency: 2, handlers: [cluster.handler(sleep: 0.05)])
        await cluster.load(0..<100, concurrency: 8) { server.base }
        let early = await cluster.ledger.jobs.map(\.id)
        // The snapshot: most of these jobs still pending in it.
        let pending = Int(try await cluster.redisCLI("ZCARD", "docket:{default}:pending").first ?? "") ?? 0
        _ = try await cluster.redisCLI("SAVE")
        // They all complete and are journaled; then Redis comes back from the snapshot.
        let checker = InvariantChecker(cluster, journals: [server.journal], redisLost: true)
        try await checker.waitTerminal(early)
        cluster.redis.kill()
        try cluster.redis.restart()
        let restored = Int(try await cluster.redisCLI("ZCARD", "docket:{default}:pending").first ?? "") ?? 0
        await cluster.load(100..<150, concurrency: 4) { server.base }
        // Strict: no completed job runs again, not even one the history could explain (claims, promotion and reaping
        // wait until recovery vouched for the restarted Redis).
        var strict = checker
        strict.rerunAfterTerminalExplainedByHistory = false
        let report = try await strict.check(extra: "pendingInSnapshot=\(pending) pendingAfterRestart=\(restored)")
        finish(cluster, report)
        #expect(pending > 0, "the snapshot caught pending jobs (else this scenario tests nothing)")
        let answers = await cluster.ledger.summary
        #expect(report.acknowledged == 150, "every enqueue answered: \(answers)")
        #expect(report.conflicts == 0, "no stale copy ran before recovery set it back")
    }

    // MARK: 6. Redis frozen (SIGSTOP) 10 s

    @Test("Redis frozen by SIGSTOP for 10 s: the API answers in time, /health says 503, everything completes", .timeLimit(.minutes(2)))
    func redisFrozen() async throws {
        let cluster = try FaultCluster("redis-sigstop")
        defer { cluster.cleanup() }
        let server = try await cluster.startServer()
        _ = try await cluster.startWorker()
        await cluster.load(0..<50, concurrency: 4) { server.base }
        let before = await cluster.ledger.counts
        cluster.freezeRedis(true)
        let thaw = ContinuousClock.now + .seconds(10)
        async let health = delayed(.seconds(3)) { await HTTP.get(server.base, "/health") }
        await cluster.load(50..<10_000, concurrency: 2, pace: .milliseconds(200), until: thaw) { server.base }
        let frozenHealth = await health
        try await Task.sleep(until: thaw, clock: .continuous)
        cluster.freezeRedis(false)
        let during = await cluster.ledger.counts.since(before)
        await cluster.load(10_000..<10_050, concurrency: 4) { server.base }
        let report = try await InvariantChecker(cluster, journals: [server.journal]).check(
            extra: "whileFrozen=[\(during.description)] health=\(frozenHealth.status)")
        finish(cluster, report)
        let answers = await cluster.ledger.summary
        #expect(during.timeouts == 0, "no enqueue may hang while Redis is frozen (\(during.timeouts) took over 8 s)")
        #expect(during.refusals == 0, "enqueues are accepted (202 spooled) while Redis is frozen: \(answers)")
        #expect((during.statuses[201] ?? 0) + (during.statuses[202] ?? 0) > 0, "some enqueue answered while frozen")
        #expect(frozenHealth.status == 503, "GET /health while Redis is frozen: \(frozenHealth.summary)")
    }

    // MARK: 7. Redis down 10 s during enqueue and processing

    @Test("Redis down for 10 s: enqueues spool (202), one idempotency key gives one job, all complete later", .timeLimit(.minutes(2)))
    func redisDown() async throws {
        let cluster = try FaultCluster("redis-down", appendOnly: true)
        defer { cluster.cleanup() }
        let server = try await cluster.startServer()
        _ = try await cluster.startWorker(handlers: [cluster.handler(sleep: 0.05)])
        await cluster.load(0..<50, concurrency: 4) { server.base }
        let before = await cluster.ledger.counts
        cluster.redis.stop()
        let back = ContinuousClock.now + .seconds(10)
        let first = await cluster.enqueue(server.base, n: 5000, key: "down-key")
        let second = await cluster.enqueue(server.base, n: 5000, key: "down-key")
        await cluster.load(50..<10_000, concurrency: 2, pace: .milliseconds(100), until: back) { server.base }
        try await Task.sleep(until: back, clock: .continuous)
        let during = await cluster.ledger.counts.since(before)
        try cluster.redis.restart()
        await cluster.load(10_000..<10_050, concurrency: 4) { server.base }
        let report = try await InvariantChecker(cluster, journals: [server.journal]).check(extra: "whileDown=[\(during.description)]")
        finish(cluster, report)
        let answers = await cluster.ledger.summary
        #expect(during.timeouts == 0 && during.refusals == 0, "every enqueue accepted while Redis is down: \(answers)")
        #expect((during.statuses[202] ?? 0) > 0, "enqueues while Redis is down answer 202 spooled")
        #expect([200, 201, 202].contains(first.status) && [200, 201, 202].contains(second.status), "\(first.summary) / \(second.summary)")
        #expect(first.jobID != nil && first.jobID == second.jobID, "one idempotency key, one job: \(first.jobID ?? "-") vs \(second.jobID ?? "-")")
    }

    // MARK: 8. Two servers with their own journals, one joining late, one leaving

    @Test("a server that joined late rebuilds alone after the first left and Redis was flushed", .timeLimit(.minutes(2)))
    func lateJournal() async throws {
        let cluster = try FaultCluster("late-journal")
        defer { cluster.cleanup() }
        let a = try await cluster.startServer(journal: cluster.directory.appendingPathComponent("a/journal.sqlite").path)
        let quick = try await cluster.startWorker()
        await cluster.load(0..<300, concurrency: 8) { a.base }
        let onlyA = InvariantChecker(cluster, journals: [a.journal])
        try await onlyA.waitTerminal(await cluster.ledger.jobs.map(\.id))
        try await cluster.stopGracefully(quick)

        // Jobs the late server will first meet mid-life: 4 slow ones it will see start, 6 delayed ones it
        // will see promoted. A journals and trims their `enqueued` events before B exists.
        let seen = await cluster.ledger.count
        for i in 0..<4 { await cluster.enqueue(a.base, n: 1000 + i, type: "fault.slow") }
        for i in 0..<6 { await cluster.enqueue(a.base, n: 2000 + i, extra: #","delay":"5s""#) }
        let late = Array(await cluster.ledger.jobs.dropFirst(seen))
        let answers = await cluster.ledger.summary
        try #require(late.count == 10, "the late jobs were acknowledged: \(answers)")
        try await eventually(timeout: .seconds(20), "A to journal and trim the stream") {
            Int(try await cluster.redisCLI("XLEN", "docket:{default}:events").first ?? "") ?? 99 <= 1
        }

        let b = try await cluster.startServer(journal: cluster.directory.appendingPathComponent("b/journal.sqlite").path)
        try await eventually(timeout: .seconds(20), "B's journal to register") {
            Int(try await cluster.redisCLI("ZCARD", "docket:journals").first ?? "") ?? 0 >= 2
        }
        _ = try await cluster.startWorker(handlers: [cluster.handler(), cluster.handler(type: "fault.slow", sleep: 8, firstRunOnly: true)])
        let onlyB = InvariantChecker(cluster, journals: [b.journal])
        // B meets the slow jobs when they start and the delayed ones when they are promoted (on a slow
        // machine perhaps later, through another event: the scenario still holds).
        try await eventually(timeout: .seconds(30), "B to meet the late jobs mid-life") {
            guard let snapshot = try? await onlyB.readJournals().first else { return false }
            return late.allSatisfy { job in
                let events = (snapshot.events[job.id] ?? [:]).values.map(\.event)
                return job.type == "fault.slow" ? events.contains("started") : !events.isEmpty
            }
        }
        try await cluster.stopGracefully(a.process)
        _ = try await cluster.redisCLI("FLUSHALL")

        let report = try await InvariantChecker(cluster, journals: [a.journal, b.journal], redisLost: true).check()
        finish(cluster, report)
        #expect(report.acknowledged == 310)
    }

    // MARK: 9. The journal read-only

    @Test("journal read-only (chattr +i): enqueue answers 503 and acknowledges nothing it did not journal",
          .timeLimit(.minutes(2)), .enabled(if: FaultCluster.canMakeImmutable, "chattr +i does not work here"))
    func journalReadOnly() async throws {
        let cluster = try FaultCluster("journal-readonly")
        defer { cluster.cleanup() }
        let server = try await cluster.startServer()
        _ = try await cluster.startWorker()
        await cluster.load(0..<50, concurrency: 4) { server.base }
        let files = [server.journal, server.journal + "-wal"]
        try cluster.setImmutable(files, true)
        var refused = [HTTPAnswer]()
        for n in 50..<60 { refused.append(await cluster.enqueue(server.base, n: n)) }
        let health = await HTTP.get(server.base, "/health")
        try cluster.setImmutable(files, false)
        // Writable again: the journal takes enqueues again.
        let next = Counter(60)
        try await eventually(timeout: .seconds(20), "enqueues to succeed again") {
            [201, 202].contains(await cluster.enqueue(server.base, n: next.take()).status)
        }
        await cluster.load(100..<150, concurrency: 4) { server.base }
        let report = try await InvariantChecker(cluster, journals: [server.journal]).check(
            extra: "whileReadOnly=[\(refused.map { "\($0.status)" }.joined(separator: ","))] health=\(health.status)")
        finish(cluster, report)
        #expect(refused.allSatisfy { $0.status == 503 }, "enqueue refuses with 503 while the journal cannot be written: \(refused.map(\.summary).prefix(3))")
    }

    // MARK: 9b. The journal's disk full

    @Test("journal disk full (tmpfs): enqueue answers 503 and acknowledges nothing it did not journal",
          .timeLimit(.minutes(2)), .enabled(if: FaultCluster.canMount, "cannot mount a tmpfs here"))
    func journalDiskFull() async throws {
        let cluster = try FaultCluster("journal-full")
        defer { cluster.cleanup() }
        let disk = cluster.directory.appendingPathComponent("disk").path
        try await cluster.mountTmpfs(at: disk, size: "16m")
        let server = try await cluster.startServer(journal: disk + "/journal.sqlite")
        _ = try await cluster.startWorker()
        await cluster.load(0..<50, concurrency: 4) { server.base }
        let filler = try await cluster.fillDisk(besides: server.journal)
        // Big payloads, so no commit fits in what the WAL file already holds.
        let big = String(repeating: "x", count: 200_000)
        var answers = [HTTPAnswer]()
        for n in 50..<60 { answers.append(await cluster.enqueue(server.base, n: n, blob: big)) }
        let health = await HTTP.get(server.base, "/health")
        try FileManager.default.removeItem(atPath: filler)
        let next = Counter(60)
        try await eventually(timeout: .seconds(20), "enqueues to succeed again") {
            [201, 202].contains(await cluster.enqueue(server.base, n: next.take()).status)
        }
        await cluster.load(100..<150, concurrency: 4) { server.base }
        #expect(server.process.isRunning, "docket serve survives a full disk: \(server.process.stderr.suffix(500))")
        let report = try await InvariantChecker(cluster, journals: [server.journal]).check(
            extra: "whileFull=[\(answers.map { "\($0.status)" }.joined(separator: ","))] health=\(health.status)")
        finish(cluster, report)
        #expect(answers.allSatisfy { [201, 202, 503].contains($0.status) }, "only 503 or a journaled acknowledgement: \(answers.map(\.summary).prefix(3))")
        #expect(answers.contains { $0.status == 503 }, "a full journal disk refuses enqueues: \(answers.map(\.summary).prefix(3))")
    }
}
