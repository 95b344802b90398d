import ArgumentParser
import DocketQueue
import Foundation
import Logging

extension Docket {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure enqueue and claim+complete throughput and latency through Docket's Redis client.",
            discussion: "Without --redis it starts a throwaway redis-server on a unix socket in a temp dir.")

        @OptionGroup var global: GlobalOptions

        @Option(help: "Jobs per phase.")
        var jobs = 20_000

        @Option(help: "Requests in flight at once (enqueuers, or claimers).")
        var concurrency = 50

        @Option(help: "Payload size in bytes.")
        var payloadBytes = 64

        @Option(help: "Jobs per batch in the batch-enqueue phase.")
        var batch = 100

        @Flag(help: "Only enqueue --jobs jobs of --type to --queue under --prefix and keep them (to load `docket work`).")
        var enqueueOnly = false

        @Option(help: "Job type for --enqueue-only.")
        var type = "docket.noop"

        @Option(help: "Queue for --enqueue-only.")
        var queue = "default"

        func validate() throws {
            guard (1...10_000_000).contains(jobs) else { throw ValidationError("--jobs must be 1...10000000") }
            guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1...10000") }
            guard (0...512 * 1024).contains(payloadBytes) else { throw ValidationError("--payload-bytes must be 0...524288") }
            guard (1...1000).contains(batch) else { throw ValidationError("--batch must be 1...1000") }
        }

        func run() async throws {
            let logger = try global.logger("docket.bench")
            var managed: ManagedRedis?
            let url: RedisURL
            if let given = try global.redisURL() {
                url = given
            } else {
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-bench-\(UUID().uuidString.prefix(8))")
                managed = try await ManagedRedis.start(directory: dir, appendOnly: false, logger: logger)
                url = managed!.url
            }
            defer {
                managed?.stop()
                if let dir = managed?.directory { try? FileManager.default.removeItem(at: dir) }
            }
            let redis = try await connect(url, timeout: try global.redisDeadline(), logger: logger)
            defer { redis.shutdown() }
            var config = RedisQueueDriver.Configuration()
            config.keys = RedisKeys(prefix: "bench-\(UUID().uuidString.prefix(6).lowercased())")
            let payload = "\"" + String(repeating: "x", count: max(0, payloadBytes - 2)) + "\""
            if enqueueOnly {
                guard let jobType = JobType(rawValue: type), let queueName = QueueName(rawValue: queue) else {
                    throw ValidationError("--type / --queue: not a valid job type or queue name")
                }
                config.keys = try global.keys()
                let driver = RedisQueueDriver(redis: redis, configuration: config, logger: logger)
                print(try await measure("enqueue \(type) → \(queue)", total: jobs) { _ in
                    _ = try await driver.enqueue(Job(type: jobType, payload: payload, queue: queueName), actor: nil)
                    return 1
                })
                return
            }
            let driver = RedisQueueDriver(redis: redis, configuration: config, logger: logger)
            print("docket bench: \(jobs) jobs per phase, \(concurrency) in flight, \(payloadBytes)-byte payloads, redis \(url)")

            // 1. Single enqueues, `concurrency` at a time.
            let enqueue = try await measure("enqueue", total: jobs) { _ in
                _ = try await driver.enqueue(Job(type: "bench", payload: payload, queue: "bench"), actor: nil)
                return 1
            }
            // 2. Claim + complete of those jobs, `concurrency` claimers.
            let process = try await measure("claim+complete", total: jobs) { n in
                let worker = WorkerID(rawValue: "bench-\(n)")
                guard let lease = try await driver.claim(from: ["bench"], worker: worker, lease: .seconds(60), wait: .zero) else { return 0 }
                try await driver.complete(lease, result: nil)
                return 1
            }
            // 3. Batches.
            let batches = try await measure("batch enqueue (\(batch)/call)", total: jobs) { _ in
                let list = (0..<batch).map { _ in Job(type: "bench", payload: payload, queue: "bench2") }
                _ = try await driver.enqueue(list, actor: nil)
                return batch
            }
            for result in [enqueue, process, batches] { print(result) }
            _ = try? await redis.send(RedisCommand("EVAL", [
                "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end", "0", RESPArgument("\(config.keys.prefix):*"),
            ]))
        }

        /// Runs `operation` from `concurrency` tasks until `total` units are done; returns a printable line.
        private func measure(_ name: String, total: Int, _ operation: @escaping @Sendable (Int) async throws -> Int) async throws -> String {
            let progress = Progress(name: name, total: total)
            let start = ContinuousClock.now
            let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                for n in 0..<concurrency {
                    group.addTask {
                        var mine = [Double]()
                        while progress.claim() {
                            let t0 = ContinuousClock.now
                            let done = try await operation(n)
                            mine.append(Double((ContinuousClock.now - t0).nanoseconds) / 1e6)
                            if done == 0 { break }
                            progress.advance(done)
                        }
                        return mine
                    }
                }
                var all = [Double]()
                for try await part in group { all += part }
                return all.sorted()
            }
            progress.finish()
            let seconds = Double((ContinuousClock.now - start).nanoseconds) / 1e9
            func pct(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
            return String(format: "%-28@ %9.0f jobs/s   p50 %6.2f ms   p99 %6.2f ms   (%d jobs in %.2fs)",
                          name as NSString, Double(progress.done) / seconds, pct(0.5), pct(0.99), progress.done, seconds)
        }
    }
}

/// Shared counters and a one-line progress bar on stderr.
private final class Progress: @unchecked Sendable {  // counters guarded by `lock`
    let name: String
    let total: Int
    private let lock = NSLock()
    private var issued = 0
    private(set) var done = 0
    private var lastDraw = 0

    init(name: String, total: Int) {
        self.name = name
        self.total = total
    }

    /// Reserves one more operation; false once enough were issued.
    func claim() -> Bool {
        lock.withLock {
            guard issued < total else { return false }
            issued += 1
            return true
        }
    }

    func advance(_ n: Int) {
        let draw: Int? = lock.withLock {
            done += n
            issued += n - 1
            guard min(40, done * 40 / total) != lastDraw else { return nil }
            lastDraw = min(40, done * 40 / total)
            return lastDraw
        }
        if let draw {
            FileHandle.standardError.write(Data("\r\(name) [\(String(repeating: "#", count: draw))\(String(repeating: ".", count: 40 - draw))]".utf8))
        }
    }

    func finish() { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
}
