import DocketQueue
import DocketTestSupport
import Foundation
import Testing

/// The real `docket work` binary: start-up errors, SIGKILL mid-job, SIGTERM within and past the grace, a Redis
/// outage. Jobs that must still be running when a signal arrives use an exec handler that cannot finish before
/// the test lets it (a `go` file), so no test depends on how fast the machine is.
@Suite("docket work (end to end)", .serialized, .timeLimit(.minutes(2)))
struct WorkCommandTests {
    func worker(_ t: TestQueue, _ extra: [String] = [], env: [String: String] = [:]) throws -> ChildProcess {
        try DocketBinary.spawn(
            ["work", "--redis", "unix://\(t.server.socketPath)", "--prefix", t.keys.prefix, "--log-level", "debug"] + extra,
            environment: env)
    }

    func state(_ t: TestQueue, _ id: JobID, is expected: JobState, timeout: Duration = .seconds(60)) async throws {
        try await eventually(timeout: timeout, "job \(id) to be \(expected)") { try await t.driver.job(id)?.state == expected }
    }

    /// A job type whose runs are visible from outside and end only when the test says so.
    struct Held {
        let directory: URL
        var log: String { directory.appendingPathComponent("runs.log").path }
        var go: String { directory.appendingPathComponent("go").path }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("docket-held-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        /// `--handler` for type `held`: logs "start ATTEMPT PID", waits for the go file (giving up if its
        /// worker is gone, so a killed worker leaves no shell behind), then logs "finish ATTEMPT".
        var handler: String {
            #"held=echo "start $DOCKET_ATTEMPT $$" >> \#(log); while [ ! -e \#(go) ]; do kill -0 $PPID 2>/dev/null || exit 1; sleep 0.05; done; echo "finish $DOCKET_ATTEMPT" >> \#(log)"#
        }

        var lines: [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// Pids of the shells that started a run.
        var shells: [Int32] { lines.filter { $0.hasPrefix("start ") }.compactMap { $0.split(separator: " ").last.flatMap { Int32($0) } } }

        /// Waits until every shell that started a run has exited (gone, or a zombie left for init).
        func shellsGone() async throws {
            for pid in shells {
                try await eventually("run shell \(pid) to exit") {
                    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                    return stat.isEmpty || stat.contains(") Z ")
                }
            }
        }

        func letFinish() { _ = FileManager.default.createFile(atPath: go, contents: Data()) }
        func remove() { try? FileManager.default.removeItem(at: directory) }
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
            let held = try Held()
            defer { held.remove() }
            // This test is about a lease running out, so worker A's is short; the job cannot end on its own.
            let a = try worker(t, ["--lease", "2s", "--handler", held.handler])
            defer { a.cleanup() }
            let job = try await t.driver.enqueue(
                Job(type: "held", maxAttempts: 5, timeout: .seconds(600), backoff: Backoff(base: .milliseconds(50), max: .milliseconds(50))),
                actor: nil
            ).job!
            try await eventually("the job to start on worker A") { held.lines.count == 1 }
            let running = try #require(try await t.driver.job(job.id))
            #expect(running.state == .active)
            let workerA = try #require(running.worker)
            a.signal(SIGKILL)
            #expect(try await a.wait() == 128 + SIGKILL)
            try await held.shellsGone()
            #expect(!held.lines.contains { $0.hasPrefix("finish") }, "the killed run never finished: \(held.lines)")
            held.letFinish()
            let b = try worker(t, ["--lease", "30s", "--handler", held.handler])
            defer { b.cleanup() }
            try await state(t, job.id, is: .completed)
            let done = try #require(try await t.driver.job(job.id))
            #expect(done.attempts >= 2 && done.lastError == "lease expired")
            let events = try await t.driver.events(of: .default).filter { $0.jobID == job.id }
            #expect(events.contains { $0.event == "lease_expired" && $0.worker == workerA.rawValue }, "A's lease expired")
            let completed = try #require(events.last)
            #expect(completed.event == "completed" && completed.worker != nil && completed.worker != workerA.rawValue, "finished elsewhere")
            #expect(held.lines.last == "finish \(done.attempts)", "\(held.lines)")
            #expect(held.lines.filter { $0.hasPrefix("finish") }.count == 1, "one run finished: \(held.lines)")
            b.signal(SIGTERM)
            #expect(try await b.wait(timeout: .seconds(60)) == 0)
        }
    }

    @Test func sigtermLetsARunningJobFinishWithinTheGrace() async throws {
        try await withTestQueue { t in
            let held = try Held()
            defer { held.remove() }
            let a = try worker(t, ["--shutdown-grace", "10m", "--handler", held.handler])
            defer { a.cleanup() }
            let job = try await t.driver.enqueue(Job(type: "held", timeout: .seconds(600)), actor: nil).job!
            try await eventually("the job to start") { held.lines.count == 1 }
            #expect(try await t.driver.job(job.id)?.state == .active)
            a.signal(SIGTERM)
            // (ServiceLifecycle logs this at debug once it acts on the signal.)
            try await eventually("the worker to begin shutting down") { a.stderr.contains("Signal caught") }
            // Shutdown has begun and the job is still running: the worker waits for it.
            #expect(a.isRunning)
            #expect(try await t.driver.job(job.id)?.state == .active)
            #expect(held.lines.count == 1, "\(held.lines)")
            held.letFinish()
            #expect(try await a.wait(timeout: .seconds(60)) == 0, "clean exit: \(a.stderr.suffix(1000))")
            let done = try #require(try await t.driver.job(job.id))
            #expect(done.state == .completed && done.attempts == 1)
            #expect(held.lines.last == "finish 1", "\(held.lines)")
            let events = try await t.driver.events(of: .default).filter { $0.jobID == job.id }.map(\.event)
            #expect(events == ["enqueued", "started", "completed"], "finished within the grace, not released")
            #expect(try await t.driver.workers().isEmpty)
        }
    }

    @Test func sigtermPastTheGraceReleasesTheJob() async throws {
        try await withTestQueue { t in
            let held = try Held()
            defer { held.remove() }
            let a = try worker(t, ["--shutdown-grace", "300ms", "--handler", held.handler])
            defer { a.cleanup() }
            let job = try await t.driver.enqueue(Job(type: "held", timeout: .seconds(600)), actor: nil).job!
            try await eventually("the job to start") { held.lines.count == 1 }
            #expect(try await t.driver.job(job.id)?.state == .active)
            a.signal(SIGTERM)
            #expect(try await a.wait(timeout: .seconds(60)) == 0, "clean exit: \(a.stderr.suffix(1000))")
            // The job could not finish: past the grace it was cancelled and given back, not failed.
            let released = try #require(try await t.driver.job(job.id))
            #expect(released.state == .pending && released.attempts == 0 && released.lastError == nil)
            let events = try await t.driver.events(of: .default).filter { $0.jobID == job.id }.map(\.event)
            #expect(events == ["enqueued", "started", "released"])
            try await held.shellsGone()
            #expect(held.lines.count == 1, "the run was stopped, not finished: \(held.lines)")
            // Another worker picks it up and finishes it, as attempt 1 again.
            held.letFinish()
            let b = try worker(t, ["--handler", held.handler])
            defer { b.cleanup() }
            try await state(t, job.id, is: .completed)
            #expect(try await t.driver.job(job.id)?.attempts == 1)
            #expect(held.lines.last == "finish 1", "\(held.lines)")
            b.signal(SIGINT)
            #expect(try await b.wait(timeout: .seconds(60)) == 0)
        }
    }

    @Test func aRedisOutageMakesTheWorkerWaitNotExit() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            let a = try worker(t)
            defer { a.cleanup() }
            try await eventually("the worker to register") { try await t.driver.workers().count == 1 }
            let failure = "Redis connect failed"
            let failuresBefore = a.stderr.components(separatedBy: failure).count - 1
            server.kill()
            let cpuBefore = Self.cpuTicks(a.pid)
            let since = ContinuousClock.now
            // Down for a while: the worker goes through several rounds of reconnect backoff (logged at debug)
            // and keeps running.
            try await eventually(timeout: .seconds(60), "the worker to retry connecting a dozen times") {
                #expect(a.isRunning, "the worker must not exit: \(a.stderr.suffix(500))")
                return !a.isRunning || a.stderr.components(separatedBy: failure).count - 1 - failuresBefore >= 12
            }
            #expect(a.isRunning, "the worker must not exit: \(a.stderr.suffix(500))")
            // No busy loop: waiting costs a small share of one CPU, however long the wait took.
            let cpu = Double(Self.cpuTicks(a.pid) - cpuBefore) / 100
            let wall = Double(since.duration(to: .now).milliseconds) / 1000
            #expect(cpu <= 0.25 * wall + 0.25, "no busy loop while Redis is down (\(cpu) s of CPU in \(wall) s)")
            try server.restart()
            try await eventually("the client to reconnect") { await t.redis.ping() }
            let job = try await t.driver.enqueue(Job(type: "docket.echo", payload: "1"), actor: nil).job!
            try await state(t, job.id, is: .completed)
            a.signal(SIGTERM)
            #expect(try await a.wait(timeout: .seconds(60)) == 0)
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
