import ArgumentParser
import DocketJournal
import DocketQueue
import DocketWorker
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

extension Docket {
    /// The history tools at scale, measured the way users run them: a generated journal of --jobs jobs served by a
    /// real `docket serve` (its own process, this build), asked over HTTP.
    struct BenchHistory: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-history",
            abstract: "Measure search, replay, export, index builds and retention over a generated journal of --jobs jobs.",
            discussion: """
                Generates a journal (4 types in 4 queues over 29 days; 3 events per job; 2% dead; payloads with a customer \
                of 20,000, an order id, an amount and a region), then starts `docket serve --index-field /customer` on it \
                with a Redis of its own and measures over HTTP: the background build of the index (and enqueue latency \
                meanwhile), searches by the indexed field and by an unindexed one, a replay of --replay dead jobs, an \
                export of the whole journal, and a restart with --journal-retention 15d (size before and after).
                """)

        @OptionGroup var global: GlobalOptions
        @Option(help: "Jobs in the generated journal.") var jobs = 1_000_000
        @Option(help: "Dead jobs to replay (the journal has jobs / 50).") var replay = 10_000
        @Option(help: "Searches per kind (percentiles over them).") var searches = 400
        @Option(help: "Keep the generated journal here (and reuse it when it exists).") var journal: String?

        func run() async throws {
            var logger = try global.logger("docket.bench")
            logger.logLevel = .warning
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-hbench-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = journal ?? dir.appendingPathComponent("journal.sqlite").path
            if !FileManager.default.fileExists(atPath: path) { try await generate(path, logger: logger) }
            let children = try BenchChildren(directory: dir.appendingPathComponent("children"))
            let (url, managed) = try await global.redisOrManaged(directory: dir.appendingPathComponent("redis"), appendOnly: false, logger: logger)
            defer { managed?.stop() }
            let redis = try await connect(url, timeout: try global.redisDeadline(), logger: logger)
            defer { redis.shutdown() }
            let quiet = logger
            do {
                try await cancellingOnSignals { [self] in
                    try await measure(path, redisURL: url, redis: redis, children: children, logger: quiet)
                }
            } catch {
                await children.stopAll()
                throw error
            }
            await children.stopAll()
        }

        // MARK: The journal

        /// 50 jobs per customer, at most 20,000 customers.
        var customers: Int { max(1, min(20_000, jobs / 50)) }
        static let types: [(JobType, QueueName)] = [
            ("payment.charge", QueueName(rawValue: "payments")!), ("email.send", QueueName(rawValue: "emails")!),
            ("report.build", QueueName(rawValue: "reports")!), ("image.resize", .default),
        ]

        /// Jobs over the last 29 days (the newest an hour ago): enqueued, started, then completed (with a result) or
        /// dead (every 50th).
        private func generate(_ path: String, logger: Logger) async throws {
            let start = ContinuousClock.now
            let journal = try Journal.open(path: path, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [.init(service: journal.writer)], logger: logger))
            let regions = ["eu", "us", "apac", "latam"]
            let end = Date().addingTimeInterval(-3600)
            let span = 29.0 * 86400  // inside the default retention (30 days)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var made = 0
                while made < jobs {
                    var batch = [JournalEvent]()
                    batch.reserveCapacity(15_000)
                    for i in made..<min(jobs, made + 5000) {
                        let (type, queue) = Self.types[i % 4]
                        let at = end.addingTimeInterval(-span + span * Double(i) / Double(jobs))
                        let payload = #"{"customer":\#(i % customers),"order":"o-\#(i)","amount":\#(i % 997).5,"region":"\#(regions[(i / 4) % 4])"}"#
                        var job = Job(type: type, payload: payload, queue: queue, createdAt: at)
                        job.state = .pending
                        batch.append(JournalEvent.enqueued(job, actor: nil))
                        var started = JournalEvent(jobID: job.id, seq: 2, at: at.addingTimeInterval(0.05), event: "started", state: .active,
                                                   attempt: 1, queue: queue)
                        started.worker = "bench-worker"
                        batch.append(started)
                        let dead = i % 50 == 7
                        var finish = JournalEvent(jobID: job.id, seq: 3, at: at.addingTimeInterval(0.2), event: dead ? "dead" : "completed",
                                                  state: dead ? .dead : .completed, attempt: 1, queue: queue)
                        finish.runMs = Int64(150 + i % 100)
                        if dead { finish.error = "card declined" } else { finish.detail = #"{"status":"ok","fee":\#(i % 7)}"# }
                        batch.append(finish)
                    }
                    try await journal.writer.write([.events(batch)])
                    made = min(jobs, made + 5000)
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            let stats = try await JournalStats.read(journal, tables: false)
            print(String(format: "journal: generated %d jobs (%d events) in %.1f s: %.0f MB", stats.jobs, stats.events,
                         seconds(start.duration(to: .now)), Double(stats.bytes) / 1_048_576))
        }

        // MARK: Against docket serve

        private func measure(_ path: String, redisURL url: RedisURL, redis: RedisClient, children: BenchChildren, logger: Logger) async throws {
            let redisURL = "\(url)"
            let journal = try Journal.open(path: path, logger: logger)
            var (serve, port) = try await startServe(children, path: path, redisURL: redisURL, extra: ["--index-field", "/customer"], name: "serve")
            try await HTTPConnection.with(host: "127.0.0.1", port: port) { http in
                // The index of /customer, declared now: built in the background while the server takes enqueues.
                let buildStart = ContinuousClock.now
                var latencies = [Double]()
                var n = 0
                while try await FieldIndexer.status(journal).first?.state != "ready" {
                    try children.check()
                    n += 1
                    let body = ByteBuffer(string: #"{"type":"payment.charge","queue":"payments","payload":{"customer":\#(n % customers),"order":"new-\#(n)"}}"#)
                    let t = ContinuousClock.now
                    let answer = try await http.send(.POST, "/jobs", json: body)
                    guard answer.status == 201 else { throw CLIError("POST /jobs answered \(answer.status) during the build") }
                    latencies.append(seconds(t.duration(to: .now)) * 1000)
                }
                let rows = try await FieldIndexer.status(journal).first?.rows ?? 0
                print(String(format: "index build (/customer, %d rows) in the background: %.1f s; meanwhile %d enqueues, latency %@",
                             rows, seconds(buildStart.duration(to: .now)), latencies.count, percentiles(latencies)))

                try await search(http, "indexed: where=/customer=K (50 of 50 per customer)") { i in "/jobs?where=/customer=\((i * 7919) % customers)" }
                try await search(http, "indexed + state: where=/customer=K&state=dead") { i in "/jobs?where=/customer=\((i * 7919) % customers)&state=dead" }
                try await search(http, "indexed, second page (cursor)") { i in "/jobs?where=/customer=\(i)&limit=20&cursor=\(try await self.cursor(http, "/jobs?where=/customer=\(i)&limit=1"))" }
                let day = Date().addingTimeInterval(-3600 - 86400 * 3)
                let window = "since=\(Timestamp.format(day))&until=\(Timestamp.format(day.addingTimeInterval(86400)))"
                try await search(http, "unindexed in one day (~\(jobs / 30) jobs): where=/order=…", count: max(20, searches / 10)) { i in
                    "/jobs?where=/order=o-\((i * 104_729) % self.jobs)&\(window)"
                }
                // Past the default scan limit (200,000 jobs) a search on an unindexed field is refused with a message.
                let refused = jobs > 200_000
                try await search(http, "unindexed, whole journal\(refused ? ": refused at the scan limit (400)" : "")", count: max(10, searches / 40),
                                 status: refused ? 400 : 200) { i in
                    "/jobs?where=/order=o-\((i * 104_729) % self.jobs)"
                }
                try await search(http, "unindexed result field, whole journal\(refused ? ": refused (400)" : "")", count: max(10, searches / 40),
                                 status: refused ? 400 : 200) { i in
                    "/jobs?where=result/fee=\(100 + i)"
                }

                // Replay: dead jobs, by then long gone from Redis (this Redis never held them).
                let dry = try await timed(serve, redis) {
                    try await http.send(.POST, "/jobs/replay", json: ByteBuffer(string: #"{"filter":{"state":"dead"},"limit":\#(replay)}"#))
                }
                let real = try await timed(serve, redis) {
                    try await http.send(.POST, "/jobs/replay", json: ByteBuffer(string: #"{"filter":{"state":"dead"},"limit":\#(replay),"dryRun":false}"#),
                                        headers: [("X-Request-Id", "bench-\(UUID().uuidString)")])
                }
                let answer = (try? JSONSerialization.jsonObject(with: Data(real.value.body.readableBytesView))) as? [String: Any] ?? [:]
                let replayed = answer["replayed"] as? Int ?? 0
                guard real.value.status == 200, replayed == replay else {
                    throw CLIError("replay answered \(real.value.status): \(String(buffer: real.value.body).prefix(300))")
                }
                print(String(format: "replay dry run of %d of %d dead jobs: %.0f ms", replay, answer["matched"] as? Int ?? 0, dry.seconds * 1000))
                print(String(format: "replay of %d dead jobs: %.2f s = %.0f jobs/s; cpu µs/job: serve %.0f, redis %.0f", replayed, real.seconds,
                             Double(replayed) / real.seconds, real.serveCPU * 1e6 / Double(replayed), real.redisCPU * 1e6 / Double(replayed)))
                if let lpush = try await redisBenchmark(url, children) {
                    print(String(format: "  redis-benchmark LPUSH -P 1 -c 50 on the same Redis: %.0f/s; replay = %.3f of it", lpush, Double(replayed) / real.seconds / lpush))
                }

                // Export of the whole journal, streamed.
                var lines = 0, bytes = 0
                let export = try await timed(serve, redis) {
                    try await http.send(.GET, "/jobs/export") { chunk in
                        bytes += chunk.readableBytes
                        lines += chunk.withUnsafeReadableBytes { raw in
                            var n = 0
                            for byte in raw where byte == 10 { n += 1 }
                            return n
                        }
                    }
                }
                print(String(format: "export of every job with its events: %d jobs, %.0f MB in %.1f s = %.0f jobs/s, %.1f MB/s; serve cpu %.1f µs/job",
                             lines, Double(bytes) / 1_048_576, export.seconds, Double(lines) / export.seconds, Double(bytes) / 1_048_576 / export.seconds,
                             export.serveCPU * 1e6 / Double(max(lines, 1))))
            }

            // Retention: the same journal under --journal-retention 15d, returned to the file system by incremental vacuum.
            let before = try await JournalStats.read(journal, tables: false)
            children.expectExit(serve)
            serve.process.signal(SIGTERM)
            try await children.wait(for: "docket serve to stop", timeout: .seconds(30)) { serve.process.exitStatus() != nil }
            let retentionStart = ContinuousClock.now
            (serve, port) = try await startServe(children, path: path, redisURL: redisURL,
                                                 extra: ["--index-field", "/customer", "--journal-retention", "15d", "--vacuum-interval", "1s"], name: "serve-retention")
            var after = before
            // Enqueues all along: what pruning and vacuum cost the write path.
            var latencies = [Double]()
            try await HTTPConnection.with(host: "127.0.0.1", port: port) { http in
                let deadline = ContinuousClock.now + .seconds(600)
                var checked = ContinuousClock.now
                var n = 0
                while true {
                    n += 1
                    let body = ByteBuffer(string: #"{"type":"email.send","queue":"emails","payload":{"customer":\#(n % customers)}}"#)
                    let t = ContinuousClock.now
                    let answer = try await http.send(.POST, "/jobs", json: body)
                    guard answer.status == 201 else { throw CLIError("POST /jobs answered \(answer.status) during retention") }
                    latencies.append(seconds(t.duration(to: .now)) * 1000)
                    guard checked.duration(to: .now) > .seconds(2) else { continue }
                    checked = .now
                    try children.check()
                    // Cheap reads only (the stats' per-queue counts read every event).
                    let jobs = try await journal.reader.size().jobs
                    if jobs < before.jobs * 6 / 10, try await JournalVacuum.freePages(journal) <= 1024 { break }
                    guard ContinuousClock.now < deadline else { throw CLIError("retention and vacuum took more than 600 s") }
                }
            }
            after = try await JournalStats.read(journal, tables: false)
            print(String(format: "retention 15d of 29 days: %d → %d jobs, %.0f → %.0f MB on disk (%d pages free), pruned and vacuumed in %.1f s while serving",
                         before.jobs, after.jobs, Double(before.bytes) / 1_048_576, Double(after.bytes) / 1_048_576, after.freePages,
                         seconds(retentionStart.duration(to: .now))))
            print("  meanwhile \(latencies.count) enqueues, latency \(percentiles(latencies))")
        }

        /// `redis-benchmark -t lpush -P 1 -c 50` against the bench's Redis: requests per second (nil without the tool).
        private func redisBenchmark(_ url: RedisURL, _ children: BenchChildren) async throws -> Double? {
            guard let tool = BenchChildren.onPath("redis-benchmark") else { return nil }
            let target: [String]
            switch url.endpoint {
            case .tcp(let host, let port): target = ["-h", host, "-p", "\(port)"]
            case .unix(let path): target = ["-s", path]
            case .sentinel, .cluster: return nil  // the bench's own Redis is one server
            }
            let run = try children.spawn("redis-benchmark", tool, target + ["-t", "lpush", "-P", "1", "-c", "50", "-n", "200000", "-q"], exits: true)
            try await children.wait(for: "redis-benchmark", timeout: .seconds(120)) { run.process.exitStatus() != nil }
            let out = (try? String(contentsOfFile: run.stdout, encoding: .utf8)) ?? ""
            // "LPUSH: 109051.26 requests per second, p50=0.247 msec" (after carriage-return progress lines)
            let line = out.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).last { $0.hasPrefix("LPUSH:") }
            return line.flatMap { Double($0.dropFirst("LPUSH:".count).split(separator: " ").first ?? "") }
        }

        private func startServe(_ children: BenchChildren, path: String, redisURL: String, extra: [String], name: String) async throws
            -> (BenchChildren.Child, Int)
        {
            let serve = try children.spawn(name, BenchChildren.docketExecutable, [
                "serve", "--redis", redisURL, "--workers", "0", "--host", "127.0.0.1", "--port", "0", "--journal", path,
                "--data-dir", children.directory.appendingPathComponent("data").path, "--log-level", "warning",
            ] + extra)
            var port = 0
            try await children.wait(for: "docket serve to listen", timeout: .seconds(120)) {
                let out = (try? String(contentsOfFile: serve.stdout, encoding: .utf8)) ?? ""
                guard let line = out.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
                    let p = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
                else { return false }
                port = p
                return true
            }
            return (serve, port)
        }

        private func cursor(_ http: HTTPConnection, _ path: String) async throws -> String {
            let answer = try await http.send(.GET, path)
            let object = (try? JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView))) as? [String: Any] ?? [:]
            guard let cursor = object["nextCursor"] as? String else { throw CLIError("\(path): no next page") }
            return cursor.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? cursor
        }

        /// `count` sequential requests (after 3 to warm up): latency percentiles.
        private func search(_ http: HTTPConnection, _ what: String, count: Int? = nil, status: Int = 200,
                            _ path: (Int) async throws -> String) async throws {
            var samples = [Double]()
            for i in 0..<(count ?? searches) + 3 {
                let target = try await path(i)
                let t = ContinuousClock.now
                let answer = try await http.send(.GET, target)
                guard answer.status == status else { throw CLIError("\(target) answered \(answer.status): \(String(buffer: answer.body).prefix(300))") }
                if i >= 3 { samples.append(seconds(t.duration(to: .now)) * 1000) }
            }
            print("search, \(what): \(percentiles(samples)) over \(samples.count)")
        }

        private func percentiles(_ samples: [Double]) -> String {
            guard !samples.isEmpty else { return "-" }
            let s = samples.sorted()
            let at = { (q: Double) in s[min(s.count - 1, Int(Double(s.count) * q))] }
            return String(format: "p50 %.2f ms, p99 %.2f ms, max %.2f ms", at(0.5), at(0.99), s.last!)
        }

        struct Timed<T> {
            var value: T
            var seconds: Double
            var serveCPU: Double
            var redisCPU: Double
        }

        private func timed<T>(_ serve: BenchChildren.Child, _ redis: RedisClient, _ body: () async throws -> T) async throws -> Timed<T> {
            let serveBefore = CPUTime.process(serve.pid) ?? 0
            let redisBefore = try await CPUTime.redis(redis)
            let start = ContinuousClock.now
            let value = try await body()
            let wall = seconds(start.duration(to: .now))
            return Timed(value: value, seconds: wall, serveCPU: (CPUTime.process(serve.pid) ?? 0) - serveBefore,
                         redisCPU: try await CPUTime.redis(redis) - redisBefore)
        }

        private func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
    }
}
