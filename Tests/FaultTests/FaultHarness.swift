import DocketTestSupport
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One scenario's world of real processes: a `redis-server` it started, `docket serve` and `docket work`
/// processes, a temp directory, and the runs file every exec handler appends to (the outside record of
/// handler runs). `cleanup()` (deferred by every test) kills whatever still runs and removes the files.
final class FaultCluster: Sendable {
    let name: String
    let directory: URL
    let redis: RedisServer
    /// One line per handler run: `JOB_ID ATTEMPT UNIX_MS`, appended when the handler starts.
    let runsFile: String
    let ledger = Ledger()
    private let children = Mutex<[ChildProcess]>([])
    private let immutable = Mutex<[String]>([])
    private let mounts = Mutex<[String]>([])

    /// Every enqueue in these tests: a job that retries fast, so a lost lease costs little time.
    static let jobOptions = #""maxAttempts":10,"backoff":{"base":"100ms","max":"500ms"}"#

    /// A Redis Cluster instead of one server (`redis` is then its first node), and the queues the load spreads over.
    let redisCluster: RedisCluster?
    /// A Sentinel setup instead of one server (`redis` is then its first master).
    let redisSentinel: RedisSentinel?
    let queues: [String]

    /// With `masters`, the scenario runs on a Redis Cluster of that many masters with `replicas` each, and the load
    /// spreads over `queues` queues (`q0`, `q1`, …).
    /// With `sentinels`, it runs on a master and a replica watched by that many Sentinels.
    init(_ name: String, appendOnly: Bool = false, masters: Int? = nil, replicas: Int = 0, queues: Int = 1, sentinels: Int? = nil) throws {
        self.name = name
        self.queues = queues == 1 ? ["default"] : (0..<queues).map { "q\($0)" }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("docket-fault-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        runsFile = directory.appendingPathComponent("runs.log").path
        _ = FileManager.default.createFile(atPath: runsFile, contents: nil)
        do {
            redisCluster = try masters.map { try RedisCluster(masters: $0, replicas: replicas) }
            redisSentinel = try sentinels.map { try RedisSentinel(sentinels: $0) }
            redis = try redisCluster?.nodes[0] ?? redisSentinel?.master ?? RedisServer.start(tcp: true, appendOnly: appendOnly)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    var redisURL: String { redisCluster?.urlString ?? redisSentinel?.urlString ?? "redis://127.0.0.1:\(redis.port!)" }

    // MARK: Processes

    /// A `docket` process with a clean `DOCKET_*` environment, output kept in the scenario directory.
    func docket(_ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        var env = ["DOCKET_LOG_LEVEL": "warning"].merging(environment) { $1 }
        for key in ProcessInfo.processInfo.environment.keys where key.hasPrefix("DOCKET_") && env[key] == nil { env[key] = "" }
        let child = try ChildProcess(DocketBinary.path, arguments, environment: env, outputDirectory: directory)
        children.withLock { $0.append(child) }
        return child
    }

    struct Server: Sendable {
        let process: ChildProcess
        let base: String
        let journal: String
    }

    /// `docket serve` (API only, no embedded workers) on a free port with the journal at `journal`.
    func startServer(journal: String? = nil, environment: [String: String] = [:]) async throws -> Server {
        let journal = journal ?? directory.appendingPathComponent("journal.sqlite").path
        let dataDir = directory.appendingPathComponent("serve-\(UUID().uuidString.prefix(4))").path
        var env = ["DOCKET_REDIS_TIMEOUT": "2s"]
        env.merge(environment) { $1 }
        let process = try docket(
            ["serve", "--redis", redisURL, "--port", "0", "--workers", "0", "--data-dir", dataDir, "--journal", journal], environment: env)
        var base = ""
        try await eventually(timeout: .seconds(30), "docket serve to listen") {
            if let line = process.stdout.split(separator: "\n").first(where: { $0.contains("listening on") }) {
                base = String(line.split(separator: " ").last ?? "")
                return true
            }
            if !process.isRunning { throw TestSupportError("docket serve exited: \(process.stderr.suffix(1500))") }
            return false
        }
        return Server(process: process, base: base, journal: journal)
    }

    /// The exec handler every worker runs for `fault.run` (and `fault.slow`): records the run, then
    /// optionally takes a while so jobs are in flight when the fault hits.
    /// `firstRunOnly`: only a job's first run sleeps (its re-runs are quick).
    func handler(type: String = "fault.run", sleep: Double? = nil, firstRunOnly: Bool = false) -> String {
        var command = #"echo "$DOCKET_JOB_ID $DOCKET_ATTEMPT $(date +%s%3N)" >> '\#(runsFile)'; cat >/dev/null"#
        if let sleep {
            if firstRunOnly {
                let mark = directory.appendingPathComponent("slept-").path
                command += #"; if [ ! -e '\#(mark)'"$DOCKET_JOB_ID" ]; then touch '\#(mark)'"$DOCKET_JOB_ID"; sleep \#(sleep); fi"#
            } else {
                command += "; sleep \(sleep)"
            }
        }
        return "\(type)=\(command)"
    }

    /// `docket work` on this Redis with a 2 s lease; `handlers` are `TYPE=COMMAND` specs. Returns once the
    /// worker has registered in Redis (a worker that cannot reach Redis at start exits, so a fault must
    /// not come before that).
    func startWorker(concurrency: Int = 4, handlers: [String]? = nil) async throws -> ChildProcess {
        var arguments = ["work", "--redis", redisURL, "--concurrency", "\(concurrency)", "--queues", queues.joined(separator: ",")]
        for spec in handlers ?? [handler()] { arguments += ["--handler", spec] }
        // Exec handlers keep their scratch files in TMPDIR: here, so a killed worker's leftovers go with the scenario.
        let scratch = directory.appendingPathComponent("tmp").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let worker = try docket(arguments, environment: ["DOCKET_LEASE": "2s", "DOCKET_SHUTDOWN_GRACE": "2s", "TMPDIR": scratch])
        try await eventually(timeout: .seconds(30), "docket work to register") {
            if !worker.isRunning { throw TestSupportError("docket work exited: \(worker.stderr.suffix(1500))") }
            let ids = try await redisCLI("ZRANGE", "docket:workers", "0", "-1")
            guard !ids.isEmpty else { return false }
            return try await redisCLI(ids.map { ["HGET", "docket:worker:\($0)", "pid"] }).contains("\(worker.pid)")
        }
        return worker
    }

    /// Sends SIGTERM and waits for the process to exit.
    func stopGracefully(_ process: ChildProcess) async throws {
        process.signal(SIGTERM)
        try await process.wait(timeout: .seconds(20))
    }

    /// SIGKILL, waited for.
    func crash(_ process: ChildProcess) async throws {
        process.signal(SIGKILL)
        try await process.wait(timeout: .seconds(10))
    }

    // MARK: Redis

    /// Runs `redis-cli` with one command per element of `commands` (fed on stdin, so nothing blocks the
    /// cooperative pool) and returns its output lines.
    func redisCLI(_ commands: [[String]], timeout: Duration = .seconds(10)) async throws -> [String] {
        let input = directory.appendingPathComponent("cli-\(UUID().uuidString.prefix(8)).txt")
        try commands.map { $0.map(Self.quote).joined(separator: " ") }.joined(separator: "\n").appending("\n")
            .write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        // On a cluster: any live node, following redirects (-c). With Sentinel: the master now.
        let target = redisCluster.map { ["-c", "-h", "127.0.0.1", "-p", "\($0.live.first?.port ?? redis.port!)"] }
            ?? ["-s", (redisSentinel?.currentMaster ?? redis).socketPath]
        let cli = try ChildProcess("/usr/bin/redis-cli", target, stdin: input.path, outputDirectory: directory)
        defer { cli.cleanup() }
        guard (try? await cli.wait(timeout: timeout)) == 0 else { throw TestSupportError("redis-cli failed: \(cli.stderr)") }
        let out = cli.stdout
        return out.isEmpty ? [] : out.split(separator: "\n", omittingEmptySubsequences: false).dropLast(out.hasSuffix("\n") ? 1 : 0).map(String.init)
    }

    func redisCLI(_ command: String...) async throws -> [String] { try await redisCLI([command]) }

    static func quote(_ word: String) -> String {
        word.allSatisfy({ $0.isLetter || $0.isNumber || "-_:{}.".contains($0) }) ? word : "\"" + word.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the Redis process.
    func freezeRedis(_ frozen: Bool) {
        if let pid = redis.pid { kill(pid, frozen ? SIGSTOP : SIGCONT) }
    }

    // MARK: Enqueue

    /// One `POST /jobs` of a `fault.run` job; acknowledged answers (201, 200, 202 with an id) go into the ledger.
    @discardableResult
    /// `blob` adds a string of that text to the payload (to make it big).
    func enqueue(_ base: String, n: Int, type: String = "fault.run", key: String? = nil, extra: String = "",
                 blob: String? = nil, timeout: Duration = .seconds(8)) async -> HTTPAnswer {
        let payload = #"{"n":\#(n),"scenario":"\#(name)"\#(blob.map { #","blob":"\#($0)""# } ?? "")}"#
        var body = #"{"type":"\#(type)","payload":\#(payload),\#(Self.jobOptions)"#
        if queues.count > 1 { body += #","queue":"\#(queues[n % queues.count])""# }
        if let key { body += #","idempotencyKey":"\#(key)""# }
        body += extra + "}"
        let answer = await HTTP.post(base, "/jobs", body, timeout: timeout)
        await ledger.record(answer, n: n, type: type, payload: payload, key: key)
        return answer
    }

    /// Sends the enqueues of `jobs` again, same body and idempotency key: each must answer its first id.
    /// Returns the answers that named another job (or none).
    func replay(_ jobs: [Ledger.Acknowledged], to base: String) async -> [String] {
        var wrong = [String]()
        for job in jobs {
            let answer = await enqueue(base, n: job.n, type: job.type, key: job.idempotencyKey)
            if answer.jobID != job.id { wrong.append("\(job.idempotencyKey ?? "-"): \(job.id) → \(answer.summary)") }
        }
        return wrong
    }

    /// Enqueues jobs `range` from `concurrency` parallel clients against `target()` (read per request, so a
    /// test can point the load at a restarted server), each pausing `pace` between requests, until the
    /// range is done or `until` passes. With `retryUnanswered`, a request that got no answer is sent again
    /// (same idempotency key) until `deadline`.
    func load(_ range: Range<Int>, concurrency: Int = 4, pace: Duration = .zero, until: ContinuousClock.Instant? = nil,
              keyed: Bool = false, retryUnanswered: Bool = false, deadline: Duration = .seconds(40),
              target: @escaping @Sendable () -> String) async {
        let next = Counter(range.lowerBound)
        let end = ContinuousClock.now + deadline
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while !Task.isCancelled {
                        if let until, ContinuousClock.now >= until { return }
                        let n = next.take()
                        guard n < range.upperBound else { return }
                        while !Task.isCancelled {
                            let answer = await self.enqueue(target(), n: n, key: keyed ? "\(self.name)-\(n)" : nil)
                            guard answer.status == 0, retryUnanswered, ContinuousClock.now < end else { break }
                            try? await Task.sleep(for: .milliseconds(100))
                        }
                        if pace > .zero { try? await Task.sleep(for: pace) }
                    }
                }
            }
        }
    }

    /// Handler runs recorded so far.
    var runCount: Int {
        ((try? String(contentsOfFile: runsFile, encoding: .utf8)) ?? "").reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
    }

    // MARK: Journal files

    /// Makes the journal's files immutable (`chattr +i`: even root cannot write them) or writable again.
    func setImmutable(_ paths: [String], _ on: Bool) throws {
        for path in paths where FileManager.default.fileExists(atPath: path) {
            let p = try ChildProcess("/usr/bin/chattr", [on ? "+i" : "-i", path], outputDirectory: directory)
            defer { p.cleanup() }
            guard p.waitBlocking(timeout: 10) == 0 else { throw TestSupportError("chattr failed on \(path): \(p.stderr)") }
            if on { immutable.withLock { $0.append(path) } } else { immutable.withLock { $0.removeAll { $0 == path } } }
        }
    }

    /// Whether `chattr +i` works here (root on a filesystem that supports it).
    static let canMakeImmutable: Bool = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("docket-fault-chattr-\(UUID().uuidString.prefix(8))").path
        guard FileManager.default.createFile(atPath: path, contents: Data("x".utf8)) else { return false }
        defer {
            if let p = try? ChildProcess("/usr/bin/chattr", ["-i", path]) { p.waitBlocking(timeout: 10); p.cleanup() }
            try? FileManager.default.removeItem(atPath: path)
        }
        guard let p = try? ChildProcess("/usr/bin/chattr", ["+i", path]) else { return false }
        defer { p.cleanup() }
        guard p.waitBlocking(timeout: 10) == 0 else { return false }
        // Immutable means an open for writing fails, even for root.
        return FileHandle(forWritingAtPath: path) == nil
    }()

    /// Fills the filesystem holding `path`'s directory (a file of zeros until ENOSPC); returns the filler.
    func fillDisk(besides path: String) async throws -> String {
        let filler = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("filler").path
        let dd = try ChildProcess("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"], outputDirectory: directory)
        defer { dd.cleanup() }
        try await dd.wait(timeout: .seconds(30))
        guard dd.stderr.contains("No space left") else { throw TestSupportError("dd did not fill the disk: \(dd.stderr)") }
        return filler
    }

    /// Mounts a tmpfs of `size` (e.g. "16m") at `path` (created), unmounted by `cleanup()`, or by a
    /// watchdog if the test process dies first.
    func mountTmpfs(at path: String, size: String) async throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let mount = try ChildProcess("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0700", "tmpfs", path], outputDirectory: directory)
        defer { mount.cleanup() }
        guard try await mount.wait(timeout: .seconds(10)) == 0 else { throw TestSupportError("mount failed: \(mount.stderr)") }
        mounts.withLock { $0.append(path) }
        let me = ProcessInfo.processInfo.processIdentifier
        let watchdog = try ChildProcess("/bin/sh", ["-c", #"while kill -0 \#(me) 2>/dev/null && mountpoint -q "$0"; do sleep 1; done; umount -l "$0" 2>/dev/null"#, path],
                                        outputDirectory: directory)
        children.withLock { $0.append(watchdog) }
    }

    /// Whether tmpfs mounts work here (root with CAP_SYS_ADMIN).
    static let canMount: Bool = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-fault-mount-\(UUID().uuidString.prefix(8))").path
        guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { return false }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let mount = try? ChildProcess("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]) else { return false }
        defer { mount.cleanup() }
        guard mount.waitBlocking(timeout: 10) == 0 else { return false }
        if let umount = try? ChildProcess("/usr/bin/umount", ["-l", dir]) { umount.waitBlocking(timeout: 10); umount.cleanup() }
        return true
    }()

    // MARK: Teardown

    /// Kills every child still running (a frozen Redis is thawed first), makes files writable again and
    /// removes the scenario directory. Safe to call twice. `DOCKET_FAULT_KEEP=1` keeps the directory.
    func cleanup() {
        freezeRedis(false)
        for child in children.withLock({ $0 }) { child.cleanup() }
        redis.remove()
        redisCluster?.remove()
        redisSentinel?.remove()
        try? setImmutable(immutable.withLock { $0 }, false)
        for path in mounts.withLock({ $0 }) {
            if let umount = try? ChildProcess("/usr/bin/umount", ["-l", path], outputDirectory: directory) {
                umount.waitBlocking(timeout: 10)
                umount.cleanup()
            }
        }
        if ProcessInfo.processInfo.environment["DOCKET_FAULT_KEEP"] == nil {
            try? FileManager.default.removeItem(at: directory)
        } else {
            print("FAULT \(name): kept \(directory.path)")
        }
    }

    /// The end of every child's stderr, for a failing scenario's report.
    func diagnostics() -> String {
        children.withLock { $0 }.map { child in
            let status = child.exitStatus().map { "exited \($0)" } ?? "running"
            return "\(child.pid) (\(status)) \(URL(fileURLWithPath: child.stderrPath).lastPathComponent): \(child.stderr.suffix(800))"
        }.joined(separator: "\n")
    }
}

/// A value tests change while background tasks read it (the server the load goes to).
final class Shared<Value: Sendable>: Sendable {
    private let box: Mutex<Value>
    init(_ value: Value) { box = Mutex(value) }
    var value: Value {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}

/// A shared counter handing out job numbers to parallel clients.
final class Counter: Sendable {
    private let value: Mutex<Int>
    init(_ start: Int) { value = Mutex(start) }
    func take() -> Int { value.withLock { n in defer { n += 1 }; return n } }
}

/// Every enqueue answer of a scenario: the acknowledged jobs (what the checker holds the system to) and
/// the rest, counted by outcome.
actor Ledger {
    struct Acknowledged: Sendable, Hashable {
        let id: String
        let n: Int
        let type: String
        let payload: String
        let idempotencyKey: String?
        let status: Int
    }

    private(set) var acknowledged: [String: Acknowledged] = [:]
    private(set) var order: [String] = []
    private(set) var statuses: [Int: Int] = [:]
    private(set) var timeouts = 0
    private(set) var unanswered = 0
    private(set) var slowest: Duration = .zero
    /// Answers that were neither acknowledgements nor "no answer" (4xx/5xx), for reports.
    private(set) var refusals: [String] = []

    func record(_ answer: HTTPAnswer, n: Int, type: String, payload: String, key: String?) {
        statuses[answer.status, default: 0] += 1
        slowest = max(slowest, answer.elapsed)
        if answer.timedOut { timeouts += 1 }
        if answer.status == 0 { unanswered += 1; return }
        guard [200, 201, 202].contains(answer.status), let id = answer.jobID else {
            refusals.append(answer.summary)
            return
        }
        if acknowledged[id] == nil {
            acknowledged[id] = Acknowledged(id: id, n: n, type: type, payload: payload, idempotencyKey: key, status: answer.status)
            order.append(id)
        }
    }

    var jobs: [Acknowledged] { order.compactMap { acknowledged[$0] } }
    var answered: Int { statuses.filter { $0.key != 0 }.values.reduce(0, +) }

    /// The counters, to compare before and after a phase.
    struct Counts: Sendable {
        var statuses: [Int: Int]
        var timeouts: Int
        var refusals: Int
        func since(_ earlier: Counts) -> Counts {
            Counts(statuses: statuses.merging(earlier.statuses.mapValues { -$0 }) { $0 + $1 }.filter { $0.value != 0 },
                   timeouts: timeouts - earlier.timeouts, refusals: refusals - earlier.refusals)
        }
        var description: String { statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ") }
    }
    var counts: Counts { Counts(statuses: statuses, timeouts: timeouts, refusals: refusals.count) }
    /// Answers by status and the first refusals, for assertion messages.
    var summary: String { "[\(counts.description)] " + refusals.prefix(3).joined(separator: " | ") }
    var count: Int { order.count }
    var spooled: Int { statuses[202] ?? 0 }
    func answers(_ status: Int) -> Int { statuses[status] ?? 0 }
}
