import DocketQueue
import DocketTestSupport
import Foundation
import Testing

/// The real `docket work` binary: start-up errors, SIGKILL mid-job, SIGTERM within and past the grace.
@Suite("docket work (end to end)", .serialized)
struct WorkCommandTests {
    func worker(_ t: TestQueue, _ extra: [String] = [], env: [String: String] = [:]) throws -> ChildProcess {
        try DocketBinary.spawn(
            ["work", "--redis", "unix://\(t.server.socketPath)", "--prefix", t.keys.prefix, "--log-level", "debug"] + extra,
            environment: env)
    }

    func state(_ t: TestQueue, _ id: JobID, is expected: JobState, timeout: Duration = .seconds(30)) async throws {
        try await eventually(timeout: timeout, "job \(id) to be \(expected)") { try await t.driver.job(id)?.state == expected }
    }

    @Test func badFlagsAndUnreachableRedisExitWithAMessage() async throws {
        let cases: [([String], String)] = [
            (["work", "--redis", "redis://127.0.0.1:1", "--concurrency", "0"], "--concurrency"),
            (["work", "--redis", "redis://127.0.0.1:1", "--lease", "soon"], "--lease"),
            (["work", "--redis", "redis://127.0.0.1:1", "--queues", "a,b c"], "--queues"),
            (["work", "--redis", "redis://127.0.0.1:1", "--handler", "no-equals"], "--handler"),
            (["work", "--redis", "ftp://x"], "--redis"),
            (["work", "--redis", "redis://127.0.0.1:1"], "cannot reach Redis"),
            (["work"], "--redis"),
        ]
        for (args, needle) in cases {
            let p = try DocketBinary.spawn(args)
            defer { p.cleanup() }
            let status = try await p.wait(timeout: .seconds(30))
            #expect(status != 0, "\(args)")
            #expect(p.stderr.contains(needle), "\(args): \(p.stderr)")
        }
        // The environment is read too.
        let p = try DocketBinary.spawn(["work", "--redis", "redis://127.0.0.1:1"], environment: ["DOCKET_CONCURRENCY": "-3"])
        defer { p.cleanup() }
        #expect(try await p.wait() != 0)
        #expect(p.stderr.contains("--concurrency"))
    }

    @Test func sigkilledWorkersJobRunsAgainElsewhere() async throws {
        try await withTestQueue { t in
            let a = try worker(t, ["--lease", "1s"])
            defer { a.cleanup() }
            let job = try await t.driver.enqueue(
                Job(type: "docket.sleep", payload: #"{"ms":1500}"#, maxAttempts: 3, backoff: Backoff(base: .milliseconds(50), max: .milliseconds(50))),
                actor: nil
            ).job!
            try await state(t, job.id, is: .active)
            a.signal(SIGKILL)
            #expect(try await a.wait() == 128 + SIGKILL)
            let b = try worker(t, ["--lease", "5s"])
            defer { b.cleanup() }
            try await state(t, job.id, is: .completed)
            let done = try #require(try await t.driver.job(job.id))
            #expect(done.attempts == 2 && done.lastError == "lease expired")
            let events = try await t.driver.events(of: .default).filter { $0.jobID == job.id }.map(\.event)
            #expect(events.contains("lease_expired"))
            b.signal(SIGTERM)
            #expect(try await b.wait() == 0)
        }
    }

    @Test func sigtermLetsAShortJobFinish() async throws {
        try await withTestQueue { t in
            let a = try worker(t, ["--shutdown-grace", "10s"])
            defer { a.cleanup() }
            let job = try await t.driver.enqueue(Job(type: "docket.sleep", payload: #"{"ms":700}"#), actor: nil).job!
            try await state(t, job.id, is: .active)
            a.signal(SIGTERM)
            #expect(try await a.wait() == 0, "clean exit: \(a.stderr)")
            let done = try #require(try await t.driver.job(job.id))
            #expect(done.state == .completed && done.attempts == 1)
            #expect(try await t.driver.workers().isEmpty)
        }
    }

    @Test func sigtermPastTheGraceReleasesTheJob() async throws {
        try await withTestQueue { t in
            let a = try worker(t, ["--shutdown-grace", "300ms"])
            defer { a.cleanup() }
            let job = try await t.driver.enqueue(Job(type: "docket.sleep", payload: #"{"ms":2500}"#), actor: nil).job!
            try await state(t, job.id, is: .active)
            let stop = ContinuousClock.now
            a.signal(SIGTERM)
            #expect(try await a.wait() == 0)
            let took = ContinuousClock.now - stop
            #expect(took < .seconds(5), "exited \(took) after SIGTERM with a 300ms grace")
            let released = try #require(try await t.driver.job(job.id))
            #expect(released.state == .pending && released.attempts == 0)
            let events = try await t.driver.events(of: .default).filter { $0.jobID == job.id }.map(\.event)
            #expect(events == ["enqueued", "started", "released"])
            // Another worker picks it up and finishes it.
            let b = try worker(t)
            defer { b.cleanup() }
            try await state(t, job.id, is: .completed)
            #expect(try await t.driver.job(job.id)?.attempts == 1)
            b.signal(SIGINT)
            #expect(try await b.wait() == 0)
        }
    }

    @Test func aRedisOutageMakesTheWorkerWaitNotExit() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            let a = try worker(t)
            defer { a.cleanup() }
            try await eventually("the worker to register") { try await t.driver.workers().count == 1 }
            server.kill()
            // Down for a while: the worker keeps running and does not spin.
            let cpuBefore = Self.cpuTicks(a.pid)
            try await Task.sleep(for: .seconds(2))
            #expect(a.isRunning, "the worker must not exit: \(a.stderr.suffix(500))")
            let cpuTicks = Self.cpuTicks(a.pid) - cpuBefore
            #expect(cpuTicks < 50, "no busy loop while Redis is down (\(cpuTicks) ticks in 2 s)")
            try server.restart()
            try await eventually("the client to reconnect") { await t.redis.ping() }
            let job = try await t.driver.enqueue(Job(type: "docket.echo", payload: "1"), actor: nil).job!
            try await state(t, job.id, is: .completed)
            a.signal(SIGTERM)
            #expect(try await a.wait() == 0)
        }
    }

    /// User + system CPU ticks of a process (from /proc/PID/stat).
    static func cpuTicks(_ pid: pid_t) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    @Test func execHandlerFlagRunsShellCommands() async throws {
        try await withTestQueue { t in
            let a = try worker(t, ["--handler", #"upper=tr a-z A-Z"#, "--concurrency", "2"])
            defer { a.cleanup() }
            let job = try await t.driver.enqueue(Job(type: "upper", payload: #"{"word":"docket"}"#), actor: nil).job!
            try await state(t, job.id, is: .completed)
            #expect(try await t.driver.job(job.id)?.result == #"{"WORD":"DOCKET"}"#)
            a.signal(SIGTERM)
            #expect(try await a.wait() == 0)
        }
    }
}
