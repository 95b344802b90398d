import DocketJournal
import DocketQueue
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// `docket bench` in system mode: the system the way users run it. A redis-server on loopback TCP (or `--redis`),
/// `docket serve --workers 0` journaling every job, and W `docket work` processes, all children of this one and
/// all the same build. Each phase is measured alone: the next starts only once the journal holds everything
/// the last one did.
struct SystemBench: Sendable {
    enum Phase: String, CaseIterable, Sendable {
        case enqueue, enqueueBatch = "enqueue-batch", http, httpBatch = "http-batch", process, latency

        /// The queues a phase's jobs go to, round robin: its queue, or `count` queues named after it.
        func queues(_ count: Int) -> [QueueName] {
            count == 1 ? [queue] : (0..<count).map { QueueName(rawValue: "\(queue.rawValue)-\($0)")! }
        }

        /// The queue a phase's jobs go to. Only `process` and `latency` jobs are run (the workers claim from
        /// that queue alone); the enqueue phases' jobs stay pending, so Redis' counts check the journal's.
        var queue: QueueName {
            switch self {
            case .enqueue: "bench-enqueue"
            case .enqueueBatch: "bench-enqueue-batch"
            case .http: "bench-http"
            case .httpBatch: "bench-http-batch"
            case .process, .latency: "bench-process"
            }
        }
    }

    struct Options: Sendable {
        var jobs: Int
        var workers: Int
        var concurrency: Int
        var connections: Int
        var batch: Int
        var batchConnections: Int
        var rate: Int
        var rateSeconds: Int
        var payloadBytes: Int
        /// Queues per phase (`--queues`).
        var queues: Int
        /// Limits in force during the run (`--limit`).
        var limits: [Limit]
        var phases: [Phase]
        /// wrk's path, or nil for the built-in HTTP load generator.
        var wrk: String?
        /// `--redis` as given (children get it verbatim), and whether this run started that Redis.
        var redis: String
        var managedRedis: Bool
        var prefix: String
    }

    let options: Options
    let children: BenchChildren
    let logger: Logger

    func run() async throws -> SystemBenchReport {
        let session = try await Session(options: options, children: children, logger: logger)
        defer { session.redis.shutdown() }
        return try await session.run()
    }
}

/// Every figure of a system-mode run; `--json` prints it as is (key names are stable).
struct SystemBenchReport: Codable, Sendable {
    struct Config: Codable, Sendable {
        var jobs, workers, concurrency, connections, batch, batchConnections, rate, rateSeconds, payloadBytes: Int
        var queues: Int?
        var limits: [String]?
        var phases: [String]
        var httpClient: String
        var redis: String
        var cores: Int
        var date: String
    }

    /// CPU microseconds per job of each process: the client (this process, or wrk), `docket serve`,
    /// redis-server and the `docket work` processes (sum), from the phase's start until the journal held it all.
    struct CPU: Codable, Sendable {
        var client: Double?
        var serve: Double
        var redis: Double
        var work: Double
        var total: Double
    }

    struct Phase: Codable, Sendable {
        var jobs: Int
        var seconds: Double
        var jobsPerSecond: Double
        /// Library calls or HTTP requests, their rate and their latency (ms, measured by the client).
        var calls: Int?
        var callsPerSecond: Double?
        var callLatencyMs: Percentiles?
        /// From the last job's completion (process, latency) or the phase's end (enqueue phases) until the journal
        /// had every event of the phase.
        var journaledAfterSeconds: Double
        var cpuMicrosPerJob: CPU
        /// process and latency: from the jobs' Redis timestamps (whole milliseconds).
        var enqueueToStartMs: Percentiles?
        var enqueueToCompleteMs: Percentiles?
        var startToCompleteMs: Percentiles?
        /// `journalLag` of GET /health, sampled every 100 ms while the phase ran (ms).
        var journalLagMs: Percentiles?
        /// latency: the rate actually offered.
        var offeredRate: Double?
        /// process: what the backlog cost while it waited, per pending job: Redis memory (`used_memory`) and journal
        /// file bytes (database and WAL), each the growth from before the backlog to after it was journaled.
        var redisBytesPerPendingJob: Double?
        var journalBytesPerJob: Double?
    }

    /// The journal against Redis at the end, per bench queue: every job enqueued and completed is journaled once.
    struct JournalCheck: Codable, Sendable {
        var enqueuedInRedis: Int
        var enqueuedInJournal: Int
        var completedInRedis: Int
        var completedInJournal: Int
        var conflicts: Int
        var complete: Bool
    }

    var config: Config
    var phases: [String: Phase]
    var journal: JournalCheck
}

/// One run's state: the children, the client, the journal (read-only here), the figures so far.
private final class Session {
    typealias Phase = SystemBench.Phase
    let options: SystemBench.Options
    let children: BenchChildren
    let logger: Logger
    let redis: RedisClient
    let driver: RedisQueueDriver
    let payload: String
    var serve: BenchChildren.Child?
    var port = 0
    var workers = [BenchChildren.Child]()
    var phases = [String: SystemBenchReport.Phase]()

    init(options: SystemBench.Options, children: BenchChildren, logger: Logger) async throws {
        self.options = options
        self.children = children
        self.logger = logger
        redis = try await connect(try RedisURL(options.redis), timeout: .seconds(10), logger: logger)
        var config = RedisQueueDriver.Configuration()
        config.keys = RedisKeys(prefix: options.prefix)
        driver = RedisQueueDriver(redis: redis, configuration: config, logger: logger)
        payload = "\"" + String(repeating: "x", count: max(0, options.payloadBytes - 2)) + "\""
    }

    func run() async throws -> SystemBenchReport {
        let journal = try await startServe()
        for limit in options.limits { _ = try await driver.addLimit(limit) }
        for phase in Phase.allCases where options.phases.contains(phase) {
            switch phase {
            case .enqueue, .enqueueBatch: try await enqueuePhase(phase, journal)
            case .http, .httpBatch: try await httpPhase(phase, journal)
            case .process: try await processPhase(journal)
            case .latency: try await latencyPhase(journal)
            }
        }
        return SystemBenchReport(config: config, phases: phases, journal: try await journalCheck(journal))
    }

    private var config: SystemBenchReport.Config {
        let o = options
        return .init(
            jobs: o.jobs, workers: o.workers, concurrency: o.concurrency, connections: o.connections, batch: o.batch,
            batchConnections: o.batchConnections, rate: o.rate, rateSeconds: o.rateSeconds, payloadBytes: o.payloadBytes, queues: o.queues,
            limits: o.limits.isEmpty ? nil : o.limits.map(\.name),
            phases: o.phases.map(\.rawValue), httpClient: o.wrk == nil ? "builtin" : "wrk",
            redis: o.managedRedis ? "managed, loopback TCP" : redis.isCluster ? "external cluster" : "external", cores: ProcessInfo.processInfo.activeProcessorCount,
            date: ISO8601DateFormatter().string(from: Date()))
    }

    // MARK: Children

    /// Starts `docket serve --workers 0` and waits for its "listening on" line; opens its journal to read it.
    private func startServe() async throws -> Journal {
        let data = children.directory.appendingPathComponent("data")
        // A batch body must fit the server's body limit.
        let batchBody = options.batch * (options.payloadBytes + 64) + 4096
        let serve = try children.spawn("serve", BenchChildren.docketExecutable, [
            "serve", "--redis", options.redis, "--prefix", options.prefix, "--workers", "0", "--host", "127.0.0.1", "--port", "0",
            "--data-dir", data.path, "--log-level", "warning", "--max-body", "\(min(64 << 20, max(1 << 20, batchBody)))",
        ])
        self.serve = serve
        try await children.wait(for: "docket serve to listen", timeout: .seconds(60)) {
            // docket serve: listening on http://127.0.0.1:PORT
            let out = (try? String(contentsOfFile: serve.stdout, encoding: .utf8)) ?? ""
            guard let line = out.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
                let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
            else { return false }
            self.port = port
            return true
        }
        return try Journal.open(path: data.appendingPathComponent("journal.sqlite").path, logger: logger)
    }

    /// Starts the `docket work` processes (claiming from the process queue only) and waits until each registered.
    private func startWorkers() async throws {
        guard workers.isEmpty else { return }
        for n in 0..<options.workers {
            workers.append(try children.spawn("work-\(n + 1)", BenchChildren.docketExecutable, [
                "work", "--redis", options.redis, "--prefix", options.prefix, "--queues", Phase.process.queues(options.queues).map(\.rawValue).joined(separator: ","),
                "--concurrency", "\(options.concurrency)", "--log-level", "warning",
            ]))
        }
        try await children.wait(for: "\(options.workers) docket work processes to register", timeout: .seconds(60)) {
            try await driver.workers().count >= options.workers
        }
    }

    // MARK: Measuring

    private struct CPUSample {
        var client: Double
        var serve: Double
        var redis: Double
        var work: Double
    }

    private func cpu() async throws -> CPUSample {
        CPUSample(
            client: CPUTime.own() + CPUTime.own(children: true), serve: serve.flatMap { CPUTime.process($0.pid) } ?? 0,
            redis: try await CPUTime.redis(redis), work: workers.reduce(0) { $0 + (CPUTime.process($1.pid) ?? 0) })
    }

    /// Redis' `used_memory` in bytes.
    private func redisMemory() async throws -> Int {
        Int(try await redis.sendToEachMaster(RedisCommand("INFO", ["memory"])).reduce(0) { $0 + CPUTime.info($1, ["used_memory"]) })
    }

    /// Counts summed over `queues`.
    private func total(_ queues: [QueueName], _ field: any KeyPath<QueueCounts, Int> & Sendable) async throws -> Int {
        try await Self.total(driver, queues, field)
    }

    private static func total(_ driver: RedisQueueDriver, _ queues: [QueueName], _ field: any KeyPath<QueueCounts, Int> & Sendable) async throws -> Int {
        var sum = 0
        for queue in queues { sum += try await driver.counts(queue)[keyPath: field] }
        return sum
    }

    /// `count` jobs spread round robin over `queues`.
    private func makeJobs(_ count: Int, _ queues: [QueueName]) -> [Job] { (0..<count).map { makeJob(queues[$0 % queues.count]) } }

    /// The journal's files (database and WAL) in bytes.
    private func journalSize() -> Int {
        let base = children.directory.appendingPathComponent("data").appendingPathComponent("journal.sqlite").path
        return ["", "-wal"].reduce(0) { sum, suffix in
            sum + (((try? FileManager.default.attributesOfItem(atPath: base + suffix))?[.size] as? Int) ?? 0)
        }
    }

    /// µs per job from `before` to `after`; the client's and the workers' own end samples when given.
    private func perJob(_ jobs: Int, _ before: CPUSample, _ after: CPUSample, client: Double?, work: Double? = nil) -> SystemBenchReport.CPU {
        let scale = 1e6 / Double(max(1, jobs))
        let serve = (after.serve - before.serve) * scale
        let redis = (after.redis - before.redis) * scale
        let work = ((work ?? after.work) - before.work) * scale
        let client = client.map { $0 * scale }
        return .init(client: client?.rounded(to: 1), serve: serve.rounded(to: 1), redis: redis.rounded(to: 1), work: work.rounded(to: 1),
                     total: (serve + redis + work + (client ?? 0)).rounded(to: 1))
    }

    /// Waits until the journal has committed every stream entry of `queues` (its cursor reached each stream's
    /// newest entry); returns when that was seen.
    @discardableResult
    private func waitForJournal(_ journal: Journal, _ queues: [QueueName]) async throws -> Date {
        try await children.wait(for: "the journal to catch up", timeout: .seconds(600), interval: .milliseconds(10)) {
            let cursors = try await journal.reader.cursors()
            for queue in queues {
                let newest = try await driver.lastStreamID(of: queue)
                guard newest != "0-0", let last = StreamID(newest) else { continue }
                guard let cursor = cursors[queue].flatMap(StreamID.init), cursor >= last else { return false }
            }
            return true
        }
        return Date()
    }

    /// Runs `body` while another task reads GET /health's `journalLag` every 100 ms; returns the samples (ms) too.
    private func sampleLag<T: Sendable>(_ body: () async throws -> T) async throws -> (T, Percentiles?) {
        let port = self.port
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            group.addTask {
                var samples = [Double]()
                try? await HTTPConnection.with(host: "127.0.0.1", port: port) { connection in
                    while !Task.isCancelled {
                        let (_, body) = try await connection.send(.GET, "/health")
                        let object = try? JSONSerialization.jsonObject(with: Data(String(buffer: body).utf8)) as? [String: Any]
                        if let lag = (object?["journalLag"] as? String).flatMap(DurationText.parse) { samples.append(Double(lag.milliseconds)) }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                return samples
            }
            let result = try await body()
            group.cancelAll()
            let samples = try await group.next() ?? []
            return (result, Percentiles(samples))
        }
    }

    private func makeJob(_ queue: QueueName) -> Job { Job(type: "docket.noop", payload: payload, queue: queue) }

    /// Enqueues `jobs` through the library, `batch` per call, `inFlight` calls at once.
    private func enqueue(_ progress: BenchProgress, _ jobs: [Job], batch: Int, inFlight: Int) async throws -> Measured {
        let driver = self.driver
        let batches = Dispenser(stride(from: 0, to: jobs.count, by: batch).map { Array(jobs[$0..<min($0 + batch, jobs.count)]) })
        return try await measure(progress, inFlight: inFlight) { _ in
            try await timedCalls(progress, units: batch) {
                guard let calls = batches.next() else { return 0 }
                if calls.count == 1 {
                    _ = try await driver.enqueue(calls[0], actor: nil)
                } else {
                    _ = try await driver.enqueue(calls, actor: nil)
                }
                return calls.count
            }
        }
    }

    // MARK: Phases

    /// Library enqueues: one job per call (`--connections` in flight) or `--batch` per call (`--batch-connections`).
    private func enqueuePhase(_ phase: Phase, _ journal: Journal) async throws {
        let single = phase == .enqueue
        let queues = phase.queues(options.queues)
        let jobs = makeJobs(options.jobs, queues)
        let before = try await cpu()
        let progress = BenchProgress(phase.rawValue, total: jobs.count)
        let measured = try await enqueue(progress, jobs, batch: single ? 1 : options.batch, inFlight: single ? options.connections : options.batchConnections)
        let client = try await cpu().client - before.client
        let end = Date()
        let journaled = try await waitForJournal(journal, queues)
        phases[phase.rawValue] = figures(
            jobs: measured.units, seconds: measured.seconds, calls: measured.calls, latency: measured.latency,
            journaled: journaled.timeIntervalSince(end), cpu: perJob(measured.units, before, try await cpu(), client: client))
    }

    /// REST enqueues: POST /jobs (`--connections`) or POST /jobs/batch with `--batch` jobs (`--batch-connections`).
    private func httpPhase(_ phase: Phase, _ journal: Journal) async throws {
        let single = phase == .http
        // A batch spreads its jobs over the phase's queues; a single POST /jobs (one fixed body) goes to the first.
        let queues = phase.queues(single ? 1 : options.queues)
        func item(_ i: Int) -> String { #"{"type":"docket.noop","queue":"\#(queues[i % queues.count].rawValue)","payload":\#(payload)}"# }
        let perRequest = single ? 1 : options.batch
        let body = single ? item(0) : #"{"jobs":["# + (0..<perRequest).map(item).joined(separator: ",") + "]}"
        let load = HTTPLoad(
            port: port, path: single ? "/jobs" : "/jobs/batch", body: body, connections: single ? options.connections : options.batchConnections,
            jobsPerRequest: perRequest)
        let requests = max(1, options.jobs / perRequest)
        let progress = BenchProgress(phase.rawValue, total: requests * perRequest)
        let before = try await cpu()
        let result: HTTPLoad.Result
        if let wrk = options.wrk {
            let driver = self.driver
            result = try await load.wrk(wrk, progress, children: children, name: "wrk-\(phase.rawValue)") {
                try await Self.total(driver, queues, \.pending)
            }
        } else {
            result = try await load.builtin(progress)
        }
        let end = Date()
        let journaled = try await waitForJournal(journal, queues)
        // The jobs the server took: wrk counts only the answers it read, not the requests its threads left in
        // flight when they stopped, which the server still did (and spent CPU on).
        let jobs = try await total(queues, \.pending)
        phases[phase.rawValue] = figures(
            jobs: jobs, seconds: result.seconds, calls: result.requests, latency: result.latency,
            journaled: journaled.timeIntervalSince(end), cpu: perJob(jobs, before, try await cpu(), client: result.clientCPU))
    }

    /// Processing: `--jobs` no-op jobs wait in a paused queue (the workers already started and idle, the journal
    /// caught up), then the queue resumes; timed until Redis counts them all completed, then until the journal has.
    private func processPhase(_ journal: Journal) async throws {
        let queues = Phase.process.queues(options.queues)
        for queue in queues { try await driver.pause(queue) }
        try await startWorkers()
        let jobs = makeJobs(options.jobs, queues)
        let (memory, journalBytes) = (try await redisMemory(), journalSize())
        _ = try await enqueue(BenchProgress("process: enqueue the backlog", total: jobs.count), jobs, batch: options.batch, inFlight: options.batchConnections)
        try await waitForJournal(journal, queues)
        let redisPerJob = Double(try await redisMemory() - memory) / Double(jobs.count)
        let journalPerJob = Double(journalSize() - journalBytes) / Double(jobs.count)
        let baseline = try await total(queues, \.completed)
        let before = try await cpu()
        let resumed = Date()
        for queue in queues { try await driver.resume(queue) }
        let progress = BenchProgress("process", total: jobs.count)
        let (journaled, lag) = try await sampleLag {
            try await progress.show {
                try await children.wait(for: "\(jobs.count) jobs to complete", timeout: .seconds(max(300, jobs.count / 50)), interval: .milliseconds(10)) {
                    progress.observe(try await self.total(queues, \.completed) - baseline)
                    return progress.done >= jobs.count
                }
            }
            let work = try await cpu().work
            return (try await waitForJournal(journal, queues), work)
        }
        let after = try await cpu()
        let timing = try await timestamps(jobs.map { ($0.id, $0.queue) })
        let seconds = timing.lastFinish.timeIntervalSince(resumed)
        var result = figures(
            jobs: jobs.count, seconds: seconds, journaled: journaled.0.timeIntervalSince(timing.lastFinish),
            cpu: perJob(jobs.count, before, after, client: nil, work: journaled.1))
        result.startToCompleteMs = timing.startToComplete
        result.journalLagMs = lag
        result.redisBytesPerPendingJob = redisPerJob.rounded(to: 1)
        result.journalBytesPerJob = journalPerJob.rounded(to: 1)
        phases[Phase.process.rawValue] = result
    }

    /// Latency at a fixed offered rate: `--rate` jobs/s, one per call, for `--rate-seconds`, on an otherwise idle
    /// system (the workers running, nothing else queued); times from the jobs' Redis timestamps.
    private func latencyPhase(_ journal: Journal) async throws {
        let queues = Phase.latency.queues(options.queues)
        try await startWorkers()
        let count = options.rate * options.rateSeconds
        let baseline = try await total(queues, \.completed)
        let progress = BenchProgress("latency at \(options.rate)/s", total: count)
        let before = try await cpu()
        let driver = self.driver
        var ids = [(JobID, QueueName)]()
        var offered = 0.0
        let (journaled, lag) = try await sampleLag {
            try await progress.show {
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<count {
                        try await Task.sleep(until: start + .nanoseconds(Int64(Double(i) * 1e9 / Double(options.rate))), clock: .continuous)
                        let job = makeJob(queues[i % queues.count])
                        ids.append((job.id, job.queue))
                        group.addTask {
                            _ = try await driver.enqueue(job, actor: nil)
                            progress.advance(1)
                        }
                    }
                    offered = Double(count - 1) / max(1e-9, Double(start.duration(to: .now).nanoseconds) / 1e9)
                    try await group.waitForAll()
                }
                try await children.wait(for: "\(count) jobs to complete", timeout: .seconds(300), interval: .milliseconds(10)) {
                    progress.observe(try await self.total(queues, \.completed) - baseline)
                    return progress.done >= count
                }
            }
            return try await waitForJournal(journal, queues)
        }
        let after = try await cpu()
        let timing = try await timestamps(ids)
        let seconds = timing.lastFinish.timeIntervalSince(timing.firstEnqueue)
        var result = figures(
            jobs: count, seconds: seconds, journaled: journaled.timeIntervalSince(timing.lastFinish), cpu: perJob(count, before, after, client: nil))
        result.enqueueToStartMs = timing.enqueueToStart
        result.enqueueToCompleteMs = timing.enqueueToComplete
        result.startToCompleteMs = timing.startToComplete
        result.journalLagMs = lag
        result.offeredRate = offered.rounded(to: 1)
        phases[Phase.latency.rawValue] = result
    }

    /// A phase's figures, rounded for print (rates to 0.1/s, times to 1 ms).
    private func figures(jobs: Int, seconds: Double, calls: Int? = nil, latency: Percentiles? = nil, journaled: Double,
                         cpu: SystemBenchReport.CPU) -> SystemBenchReport.Phase {
        .init(
            jobs: jobs, seconds: seconds.rounded(to: 3), jobsPerSecond: (Double(jobs) / seconds).rounded(to: 1), calls: calls,
            callsPerSecond: calls.map { (Double($0) / seconds).rounded(to: 1) }, callLatencyMs: latency,
            journaledAfterSeconds: journaled.rounded(to: 3), cpuMicrosPerJob: cpu)
    }

    // MARK: Job timestamps and the journal check

    private struct Timing {
        var firstEnqueue = Date.distantFuture
        var lastFinish = Date.distantPast
        var enqueueToStart: Percentiles?
        var enqueueToComplete: Percentiles?
        var startToComplete: Percentiles?
    }

    /// createdAt, startedAt and finishedAt of each job as Redis has them (ms), 1000 jobs per pipeline.
    private func timestamps(_ ids: [(JobID, QueueName)]) async throws -> Timing {
        var timing = Timing()
        var toStart = [Double](), toComplete = [Double](), run = [Double]()
        for chunk in stride(from: 0, to: ids.count, by: 1000) {
            for job in try await driver.jobs(Array(ids[chunk..<min(chunk + 1000, ids.count)])) {
                guard let job, let started = job.startedAt, let finished = job.finishedAt else {
                    throw CLIError("a benchmark job is missing or unfinished in Redis: \(String(describing: job?.id))")
                }
                timing.firstEnqueue = min(timing.firstEnqueue, job.createdAt)
                timing.lastFinish = max(timing.lastFinish, finished)
                toStart.append(started.timeIntervalSince(job.createdAt) * 1000)
                toComplete.append(finished.timeIntervalSince(job.createdAt) * 1000)
                run.append(finished.timeIntervalSince(started) * 1000)
            }
        }
        timing.enqueueToStart = Percentiles(toStart.map { $0.rounded() })
        timing.enqueueToComplete = Percentiles(toComplete.map { $0.rounded() })
        timing.startToComplete = Percentiles(run.map { $0.rounded() })
        return timing
    }

    /// Redis' counts against the journal's events, over every queue the run used.
    private func journalCheck(_ journal: Journal) async throws -> SystemBenchReport.JournalCheck {
        var check = SystemBenchReport.JournalCheck(
            enqueuedInRedis: 0, enqueuedInJournal: 0, completedInRedis: 0, completedInJournal: 0,
            conflicts: try await journal.reader.conflictCount(), complete: false)
        for queue in Set(options.phases.flatMap { $0.queues(options.queues) }) {
            let counts = try await driver.counts(queue)
            check.enqueuedInRedis += counts.pending + counts.active + counts.completed
            check.completedInRedis += counts.completed
            let buckets = try await journal.reader.stats(since: Date(timeIntervalSince1970: 0), until: Date().addingTimeInterval(86_400),
                                                         bucket: .day, queue: queue)
            check.enqueuedInJournal += buckets.reduce(0) { $0 + $1.enqueued }
            check.completedInJournal += buckets.reduce(0) { $0 + $1.completed }
        }
        check.complete = check.enqueuedInJournal == check.enqueuedInRedis && check.completedInJournal == check.completedInRedis
            && check.conflicts == 0
        return check
    }
}

/// Hands out `items` in order to concurrent tasks, each once.
private final class Dispenser<Item: Sendable>: Sendable {
    private let items: [Item]
    private let index = Atomic<Int>(0)

    init(_ items: [Item]) { self.items = items }

    func next() -> Item? {
        let i = index.add(1, ordering: .relaxed).oldValue
        return i < items.count ? items[i] : nil
    }
}

extension SystemBenchReport {
    /// The figures as aligned tables on stdout.
    func printTables() {
        let c = config
        print("docket bench: \(c.jobs) no-op jobs per phase, \(c.payloadBytes)-byte payloads; \(c.workers) docket work × \(c.concurrency); "
              + "docket serve --workers 0 (journal on); redis \(c.redis); HTTP load by \(c.httpClient); \(c.cores) cores")
        print("(CPU µs per job, by process: from the phase's start until the journal held all of it; CLIENT is this process or wrk)")
        print()
        func f(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
        let rows = SystemBench.Phase.allCases.compactMap { phase -> [String]? in
            guard let p = phases[phase.rawValue] else { return nil }
            let cpu = p.cpuMicrosPerJob
            return [
                phase.rawValue, "\(p.jobs)", f(p.seconds, 2), f(p.jobsPerSecond, 0), p.callsPerSecond.map { f($0, 0) } ?? "-",
                p.callLatencyMs.map { f($0.p50, 2) } ?? "-", p.callLatencyMs.map { f($0.p99, 2) } ?? "-", f(p.journaledAfterSeconds, 2),
                cpu.client.map { f($0, 0) } ?? "-", f(cpu.serve, 0), f(cpu.redis, 0), f(cpu.work, 0), f(cpu.total, 0),
            ]
        }
        printTable(["PHASE", "JOBS", "SECONDS", "JOBS/S", "CALLS/S", "CALL P50 MS", "CALL P99 MS", "JOURNALED +S",
                    "CLIENT µs", "SERVE µs", "REDIS µs", "WORK µs", "TOTAL µs"], rows)
        var latency = [[String]]()
        func add(_ label: String, _ p: Percentiles?) {
            if let p { latency.append([label, f(p.p50, 0), f(p.p95, 0), f(p.p99, 0), f(p.max, 0)]) }
        }
        if let l = phases[SystemBench.Phase.latency.rawValue] {
            let at = "at \(Int((l.offeredRate ?? 0).rounded())) jobs/s"
            add("enqueue → start, \(at)", l.enqueueToStartMs)
            add("enqueue → complete, \(at)", l.enqueueToCompleteMs)
            add("start → complete, \(at)", l.startToCompleteMs)
            add("journal lag, \(at)", l.journalLagMs)
        }
        if let p = phases[SystemBench.Phase.process.rawValue] {
            add("start → complete, saturated (process)", p.startToCompleteMs)
            add("journal lag, saturated (process)", p.journalLagMs)
        }
        if !latency.isEmpty {
            print()
            printTable(["LATENCY MS (job times from Redis, 1 ms resolution; lag from GET /health every 100 ms)", "P50", "P95", "P99", "MAX"], latency)
        }
        if let p = phases[SystemBench.Phase.process.rawValue], let memory = p.redisBytesPerPendingJob, let disk = p.journalBytesPerJob {
            print()
            print("storage, \(p.jobs) pending no-op jobs: redis \(f(memory, 0)) bytes per job (used_memory), journal \(f(disk, 0)) bytes per job "
                  + "(database + WAL, after enqueue)")
        }
        let j = journal
        print()
        print("journal: \(j.enqueuedInJournal) of \(j.enqueuedInRedis) enqueued jobs and \(j.completedInJournal) of \(j.completedInRedis) completed "
              + "journaled, \(j.conflicts) conflicts: \(j.complete ? "complete" : "INCOMPLETE")")
    }
}

extension Double {
    /// Rounded to `places` decimal places.
    func rounded(to places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
