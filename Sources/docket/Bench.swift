import ArgumentParser
import DocketQueue
import DocketServer
import Foundation
import Logging

extension Docket {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure Docket: the whole system (default) or its Redis client alone (--mode client).",
            discussion: """
                --mode system (default) starts a redis-server on loopback TCP (or uses --redis), `docket serve --workers 0` \
                with its journal, and --workers `docket work` processes, all from this binary, then measures each phase \
                alone: library enqueues (single, batch), REST enqueues (POST /jobs, POST /jobs/batch; wrk when it is on \
                PATH, else a built-in load generator), processing of a backlog of no-op jobs, and latency at a fixed \
                --rate, with CPU µs per job per process and the journal's lag. It prints a table, or one JSON object \
                with --json. Every child and the Redis it started are stopped on exit, Ctrl-C included. The journal \
                and the children's logs live in a temp dir under $TMPDIR (keep it on a real disk: fsync is part of the cost).

                --mode client measures enqueue and claim+complete through Docket's Redis client alone (no server, no \
                journal); without --redis it starts a throwaway redis-server on a unix socket.
                """)

        enum Mode: String, ExpressibleByArgument, CaseIterable {
            case system, client
        }

        enum HTTPClient: String, ExpressibleByArgument, CaseIterable {
            case auto, wrk, builtin
        }

        @OptionGroup var global: GlobalOptions

        @Option(help: "system (the whole system, default) or client (Docket's Redis client alone).")
        var mode: Mode = .system

        @Option(help: "Jobs per phase (default 50000; client mode 20000).")
        var jobs: Int?

        @Option(help: "system: docket work processes.")
        var workers = 1

        @Option(help: "system: jobs each docket work runs at once (default 16). client: requests in flight (default 50).")
        var concurrency: Int?

        @Option(help: "system: library calls, or HTTP connections, in flight for single enqueues.")
        var connections = 50

        @Option(help: "Jobs per batch call and per POST /jobs/batch (default 1000; client mode 100).")
        var batch: Int?

        @Option(help: "system: batch calls, or batch HTTP requests, in flight.")
        var batchConnections = 4

        @Option(help: "system: jobs per second offered in the latency phase.")
        var rate = 500

        @Option(help: "system: seconds the latency phase offers --rate.")
        var rateSeconds = 5

        @Option(help: "Payload size in bytes (a JSON string).")
        var payloadBytes = 64

        @Option(help: "system: comma-separated phases to run, of \(SystemBench.Phase.allCases.map(\.rawValue).joined(separator: ", ")) (default all).")
        var phases: String?

        @Option(help: "system: queues each phase spreads its jobs over (default 1; more spread them over a cluster's masters).")
        var queues = 1

        @Option(name: .customLong("limit"), help: "system: a limit (a POST /limits body) created before the phases, to measure its cost; repeatable.")
        var limits: [String] = []

        @Option(help: "system: HTTP load generator: auto (wrk when on PATH, else built-in), wrk or builtin.")
        var httpClient: HTTPClient = .auto

        @Flag(help: "system: print one JSON object with every figure instead of the table.")
        var json = false

        @Flag(help: "Only enqueue --jobs jobs of --type to --queue under --prefix and keep them (to load `docket work`).")
        var enqueueOnly = false

        @Option(help: "Job type for --enqueue-only.")
        var type = "docket.noop"

        @Option(help: "Queue for --enqueue-only.")
        var queue = "default"

        private var system: Bool { mode == .system && !enqueueOnly }

        func validate() throws {
            if let jobs { guard (1...10_000_000).contains(jobs) else { throw ValidationError("--jobs must be 1...10000000") } }
            if let concurrency { guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1...10000") } }
            if let batch { guard (1...1000).contains(batch) else { throw ValidationError("--batch must be 1...1000") } }
            guard (0...512 * 1024).contains(payloadBytes) else { throw ValidationError("--payload-bytes must be 0...524288") }
            guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1...64") }
            guard (1...1000).contains(connections) else { throw ValidationError("--connections must be 1...1000") }
            guard (1...100).contains(batchConnections) else { throw ValidationError("--batch-connections must be 1...100") }
            guard (1...100_000).contains(rate) else { throw ValidationError("--rate must be 1...100000 (jobs/s)") }
            guard (1...600).contains(rateSeconds) else { throw ValidationError("--rate-seconds must be 1...600") }
            guard (1...256).contains(queues) else { throw ValidationError("--queues must be 1...256") }
            for text in limits {
                do { _ = try DocketAPI.limit(json: text) } catch let error as APIError { throw ValidationError("--limit: \(error.message)") }
            }
            guard (batch ?? 1000) * (payloadBytes + 64) <= 60 << 20 else {
                throw ValidationError("--batch × --payload-bytes: a batch request would exceed docket serve's largest body (64 MiB)")
            }
            _ = try selectedPhases()
            if httpClient == .wrk, BenchChildren.onPath("wrk") == nil { throw ValidationError("--http-client wrk: wrk is not on PATH") }
        }

        private func selectedPhases() throws -> [SystemBench.Phase] {
            guard let phases else { return SystemBench.Phase.allCases }
            return try phases.split(separator: ",").map { name in
                let trimmed = name.trimmingCharacters(in: .whitespaces)
                guard let phase = SystemBench.Phase(rawValue: trimmed) else {
                    throw ValidationError("--phases: unknown phase \"\(trimmed)\"; the phases are \(SystemBench.Phase.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return phase
            }
        }

        func run() async throws {
            system ? try await runSystem() : try await runClient()
        }

        // MARK: System mode

        private func runSystem() async throws {
            let logger = try {
                var logger = try global.logger("docket.bench")
                logger.logLevel = max(logger.logLevel, .warning)
                return logger
            }()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("docket-bench-\(UUID().uuidString.prefix(8))")
            let children = try BenchChildren(directory: directory)
            let given = global.redis ?? env("DOCKET_REDIS_URL")
            _ = try global.redisURL()  // validates --redis
            _ = try global.keys()  // validates --prefix
            let options = SystemBench.Options(
                jobs: jobs ?? 50_000, workers: workers, concurrency: concurrency ?? 16, connections: connections, batch: batch ?? 1000,
                batchConnections: batchConnections, rate: rate, rateSeconds: rateSeconds, payloadBytes: payloadBytes,
                queues: queues, limits: try limits.map { try DocketAPI.limit(json: $0) }, phases: try selectedPhases(), wrk: httpClient == .builtin ? nil : BenchChildren.onPath("wrk"), redis: given ?? "",
                managedRedis: given == nil,
                // A prefix of its own, so a shared Redis keeps its data (and the run's keys are removed after).
                prefix: global.prefix ?? "bench-\(UUID().uuidString.prefix(6).lowercased())")
            let report: SystemBenchReport
            do {
                report = try await cancellingOnSignals {
                    var options = options
                    if options.managedRedis {
                        let managed = try await ManagedRedis.start(
                            directory: directory.appendingPathComponent("redis"), appendOnly: false, tcp: true, logger: logger)
                        children.adopt("redis-server", managed.process, log: managed.directory.appendingPathComponent("redis.log").path)
                        options.redis = "\(managed.url)"
                    }
                    return try await SystemBench(options: options, children: children, logger: logger).run()
                }
            } catch {
                await cleanUp(children, options, logger: logger)
                if error is CancellationError {
                    FileHandle.standardError.write(Data("docket bench: interrupted; every process it started is stopped\n".utf8))
                    throw ExitCode(130)
                }
                throw error
            }
            await cleanUp(children, options, logger: logger)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                report.printTables()
            }
        }

        /// Stops every child (workers, server, then Redis), removes the run's keys from a Redis it did not start
        /// (unless --prefix named them), and deletes the temp dir.
        private func cleanUp(_ children: BenchChildren, _ options: SystemBench.Options, logger: Logger) async {
            await children.stopAll()
            if !options.managedRedis, global.prefix == nil, let url = try? RedisURL(options.redis), let redis = try? await connect(url, logger: logger) {
                try? await deleteKeys(redis, prefix: options.prefix)
                redis.shutdown()
            }
            try? FileManager.default.removeItem(at: children.directory)
        }

        // MARK: Client mode

        private func runClient() async throws {
            let jobs = self.jobs ?? 20_000
            let concurrency = self.concurrency ?? 50
            let batch = self.batch ?? 100
            let logger = try global.logger("docket.bench")
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-bench-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: dir) }
            let (url, managed) = try await global.redisOrManaged(directory: dir, appendOnly: false, logger: logger)
            defer { managed?.stop() }
            let redis = try await connect(url, timeout: try global.redisDeadline(), logger: logger)
            defer { redis.shutdown() }
            var config = RedisQueueDriver.Configuration()
            config.keys = RedisKeys(prefix: "bench-\(UUID().uuidString.prefix(6).lowercased())")
            let payload = "\"" + String(repeating: "x", count: max(0, payloadBytes - 2)) + "\""
            func line(_ name: String, _ m: Measured) -> String {
                name.padding(toLength: max(28, name.count), withPad: " ", startingAt: 0)
                    + String(format: " %9.0f jobs/s   p50 %6.2f ms   p99 %6.2f ms   (%d jobs in %.2fs)",
                             m.perSecond, m.latency?.p50 ?? 0, m.latency?.p99 ?? 0, m.units, m.seconds)
            }
            if enqueueOnly {
                guard let jobType = JobType(rawValue: type), let queueName = QueueName(rawValue: queue) else {
                    throw ValidationError("--type / --queue: not a valid job type or queue name")
                }
                config.keys = try global.keys()
                let driver = RedisQueueDriver(redis: redis, configuration: config, logger: logger)
                let name = "enqueue \(type) → \(queue)"
                let progress = BenchProgress(name, total: jobs)
                print(line(name, try await measure(progress, inFlight: concurrency) { _ in
                    try await timedCalls(progress) {
                        _ = try await driver.enqueue(Job(type: jobType, payload: payload, queue: queueName), actor: nil)
                        return 1
                    }
                }))
                return
            }
            let driver = RedisQueueDriver(redis: redis, configuration: config, logger: logger)
            print("docket bench --mode client: \(jobs) jobs per phase, \(concurrency) in flight, \(payloadBytes)-byte payloads, redis \(url)")
            func phase(_ name: String, units: Int = 1, _ operation: @escaping @Sendable (Int) async throws -> Int) async throws -> String {
                let progress = BenchProgress(name, total: jobs)
                return line(name, try await measure(progress, inFlight: concurrency) { n in
                    try await timedCalls(progress, units: units) { try await operation(n) }
                })
            }
            // 1. Single enqueues, `concurrency` at a time.
            let enqueue = try await phase("enqueue") { _ in
                _ = try await driver.enqueue(Job(type: "bench", payload: payload, queue: "bench"), actor: nil)
                return 1
            }
            // 2. Claim + complete of those jobs, `concurrency` claimers.
            let process = try await phase("claim+complete") { n in
                let worker = WorkerID(rawValue: "bench-\(n)")
                guard let lease = try await driver.claim(from: ["bench"], worker: worker, lease: .seconds(60), wait: .zero) else { return 0 }
                try await driver.complete(lease, result: nil)
                return 1
            }
            // 3. Batches.
            let batches = try await phase("batch enqueue (\(batch)/call)", units: batch) { _ in
                let list = (0..<batch).map { _ in Job(type: "bench", payload: payload, queue: "bench2") }
                _ = try await driver.enqueue(list, actor: nil)
                return batch
            }
            for result in [enqueue, process, batches] { print(result) }
            try? await deleteKeys(redis, prefix: config.keys.prefix)
        }
    }
}

/// Deletes every key under `prefix` (SCAN + UNLINK, 10,000 at a time, on every master of a cluster): a benchmark's
/// leftovers in a shared Redis.
func deleteKeys(_ redis: RedisClient, prefix: String) async throws {
    let found = try await redis.withEachMaster { connection in
        var keys = [String]()
        var cursor = "0"
        repeat {
            let reply = try await connection.send(RedisCommand("SCAN", [RESPArgument(cursor), "MATCH", RESPArgument("\(prefix):*"), "COUNT", "10000"]))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else { break }
            keys += (parts[1].array ?? []).compactMap(\.string)
            cursor = next
        } while cursor != "0"
        return keys
    }
    // One UNLINK per key: a cluster takes no multi-key command across slots (each is routed to its master).
    let all = Array(found.joined())
    for start in stride(from: 0, to: all.count, by: 10_000) {
        _ = try await redis.pipeline(all[start..<min(start + 10_000, all.count)].map { RedisCommand("UNLINK", [RESPArgument($0)]) })
    }
}
