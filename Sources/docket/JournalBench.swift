import ArgumentParser
import DocketJournal
import DocketQueue
import DocketWorker
import Foundation
import Logging
import ServiceLifecycle

extension Docket {
    struct BenchJournal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-journal",
            abstract: "Measure the journal: group-commit append rate, ingestion lag under load, bytes per job, history queries.",
            discussion: "Uses a throwaway journal in a temp dir and, without --redis, a throwaway redis-server.")

        @OptionGroup var global: GlobalOptions

        @Option(help: "Events appended in the append phase.")
        var events = 200_000

        @Option(help: "Concurrent appenders (each waits for its commit).")
        var writers = 64

        @Option(help: "Jobs run through a --concurrency 16 worker pool while the ingestor drains the streams.")
        var jobs = 30_000

        @Option(help: "Jobs in the history-query phase (synthesized straight into the journal).")
        var historyJobs = 1_000_000

        func run() async throws {
            var logger = try global.logger("docket.bench")
            logger.logLevel = .warning
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-jbench-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: dir) }
            let (url, managed) = try await global.redisOrManaged(directory: dir.appendingPathComponent("redis"), appendOnly: false, logger: logger)
            defer { managed?.stop() }

            let journal = try Journal.open(path: dir.appendingPathComponent("append.sqlite").path, logger: logger)
            try await running([journal.writer], logger: logger) {
                try await appendPhase(journal)
            }
            let redis = try await connect(url, timeout: try global.redisDeadline(), logger: logger)
            defer { redis.shutdown() }
            var config = RedisQueueDriver.Configuration()
            config.keys = RedisKeys(prefix: "jbench-\(UUID().uuidString.prefix(6).lowercased())")
            let driver = RedisQueueDriver(redis: redis, configuration: config, logger: logger)
            let ingestJournal = try Journal.open(path: dir.appendingPathComponent("ingest.sqlite").path, logger: logger)
            try await ingestPhase(ingestJournal, driver: driver, logger: logger)
            let history = try Journal.open(path: dir.appendingPathComponent("history.sqlite").path, logger: logger)
            try await running([history.writer], logger: logger) {
                try await historyPhase(history)
            }
        }

        private func running(_ services: [any Service], logger: Logger, _ body: () async throws -> Void) async throws {
            let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                do { try await body() } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }

        private func appendPhase(_ journal: Journal) async throws {
            let perWriter = events / writers
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<writers {
                    group.addTask {
                        for _ in 0..<perWriter {
                            let job = Job(type: "bench", payload: #"{"n":1}"#)
                            try await journal.writer.write([.events([JournalEvent.enqueued(job, actor: nil)])])
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seconds = seconds(since: start)
            let commits = await journal.writer.commits
            print(String(format: "journal append: %.0f events/s durable (%d writers each awaiting its commit; %d events in %d commits, %.2fs)",
                         Double(perWriter * writers) / seconds, writers, perWriter * writers, commits, seconds))
        }

        private func ingestPhase(_ journal: Journal, driver: RedisQueueDriver, logger: Logger) async throws {
            let ingestor = JournalIngestor(journal: journal, driver: driver, logger: logger)
            var handlers = HandlerRegistry()
            Builtins.register(into: &handlers)
            var poolConfig = WorkerPool.Configuration()
            poolConfig.concurrency = 16
            let pool = WorkerPool(driver: driver, handlers: handlers, configuration: poolConfig, logger: logger)
            var lags = [Double]()
            let start = ContinuousClock.now
            try await running([journal.writer, ingestor, pool], logger: logger) {
                for chunk in stride(from: 0, to: jobs, by: 500) {
                    _ = try await driver.enqueue((chunk..<min(jobs, chunk + 500)).map { _ in Job(type: "docket.noop") }, actor: nil)
                }
                while try await driver.counts(.default).completed < jobs {
                    lags.append(try await streamLag(driver))
                    try await Task.sleep(for: .milliseconds(20))
                }
                while ingestor.ingestedCount < jobs * 3 {
                    lags.append(try await streamLag(driver))
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let seconds = seconds(since: start)
            lags.sort()
            let p99 = lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count) * 0.99))]
            let p50 = lags.isEmpty ? 0 : lags[lags.count / 2]
            let size = try await journal.reader.size()
            print(String(format: "ingestion under a 16-wide no-op worker: %d jobs (%d events) processed and journaled in %.2fs; journal lag p50 %.0f ms, p99 %.0f ms, max %.0f ms",
                         jobs, size.events, seconds, p50, p99, lags.last ?? 0))
            print(String(format: "journal bytes per completed job: %.0f (%d bytes for %d jobs, %d events)",
                         Double(size.bytes) / Double(max(1, size.jobs)), size.bytes, size.jobs, size.events))
        }

        /// Age of the oldest event still in the stream beyond the journal's committed cursor.
        private func streamLag(_ driver: RedisQueueDriver) async throws -> Double {
            // Trimming keeps the committed entry itself, so the second entry is the oldest not yet journaled.
            let pending = try await driver.events(of: .default, after: "0", count: 2)
            guard pending.count == 2 else { return 0 }
            return max(0, Date().timeIntervalSince(pending[1].at) * 1000)
        }

        private func historyPhase(_ journal: Journal) async throws {
            let start = ContinuousClock.now
            let types: [JobType] = ["email.send", "report.build", "image.resize", "payment.capture"]
            let base = Date().addingTimeInterval(-30 * 86400)
            var made = 0
            while made < historyJobs {
                var batch = [JournalEvent]()
                for i in made..<min(historyJobs, made + 5000) {
                    let at = base.addingTimeInterval(Double(i) * 30 * 86400 / Double(historyJobs))
                    var job = Job(type: types[i % types.count], payload: #"{"i":\#(i)}"#, createdAt: at)
                    job.state = .pending
                    batch.append(JournalEvent.enqueued(job, actor: nil))
                    let failed = i % 50 == 0
                    var end = JournalEvent(jobID: job.id, seq: 2, at: at.addingTimeInterval(0.2), event: failed ? "dead" : "completed",
                                           state: failed ? .dead : .completed, attempt: 1, queue: .default)
                    end.runMs = Int64(i % 400)
                    batch.append(end)
                }
                try await journal.writer.write([.events(batch)])
                made = min(historyJobs, made + 5000)
            }
            print(String(format: "history: synthesized %d jobs (%d events) in %.1fs", historyJobs, historyJobs * 2, seconds(since: start)))
            var filter = JournalReader.Filter()
            filter.limit = 50
            try await time("newest 50 jobs") { _ = try await journal.reader.list(filter) }
            filter.state = .dead
            try await time("newest 50 dead jobs") { _ = try await journal.reader.list(filter) }
            filter.state = nil
            filter.type = "payment.capture"
            filter.since = base.addingTimeInterval(10 * 86400)
            filter.until = base.addingTimeInterval(11 * 86400)
            let page = try await journal.reader.list(filter)
            try await time("50 payment.capture jobs in one day") { _ = try await journal.reader.list(filter) }
            filter.cursor = page.nextCursor
            try await time("next page of that (keyset cursor)") { _ = try await journal.reader.list(filter) }
            try await time("hourly stats over one day") {
                _ = try await journal.reader.stats(since: base.addingTimeInterval(86400), until: base.addingTimeInterval(2 * 86400), bucket: .hour)
            }
            try await time("daily stats over 30 days, one type") {
                _ = try await journal.reader.stats(since: base, until: base.addingTimeInterval(31 * 86400), bucket: .day, type: "payment.capture")
            }
            let jobID = try await journal.reader.list(JournalReader.Filter()).jobs[0].id
            try await time("one job by id + its events") {
                _ = try await journal.reader.job(jobID)
                _ = try await journal.reader.events(jobID)
            }
        }

        private func time(_ name: String, _ body: () async throws -> Void) async throws {
            try await body()  // warm
            var samples = [Double]()
            for _ in 0..<5 {
                let start = ContinuousClock.now
                try await body()
                samples.append(seconds(since: start) * 1000)
            }
            samples.sort()
            print(String(format: "  %-40@ median %8.2f ms   max %8.2f ms", name as NSString, samples[2], samples[4]))
        }

        private func seconds(since start: ContinuousClock.Instant) -> Double {
            Double((ContinuousClock.now - start).nanoseconds) / 1e9
        }
    }
}
