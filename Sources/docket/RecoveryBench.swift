import ArgumentParser
import DocketJournal
import DocketQueue
import Foundation
import Logging
import ServiceLifecycle

extension Docket {
    struct BenchRecovery: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-recovery",
            abstract: "Measure recovery: rebuild an emptied Redis from a journal of --jobs live jobs (plus finished ones).",
            discussion: """
                Synthesizes a journal in a temp dir (live jobs across 4 queues, and --finished completed jobs with idempotency
                keys), then times: the rebuild of an empty Redis, a second pass over an intact Redis (all present), and the
                rebuild of a Redis holding a stale copy of every job. Without --redis it starts a throwaway redis-server.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: "Live (pending) jobs in the journal.")
        var jobs = 100_000

        @Option(help: "Completed jobs with idempotency keys in the journal (their keys are rebuilt; they never run).")
        var finished = 20_000

        func run() async throws {
            var logger = try global.logger("docket.bench")
            logger.logLevel = .warning
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-rbench-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: dir) }
            let (url, managed) = try await global.redisOrManaged(directory: dir.appendingPathComponent("redis"), appendOnly: false, logger: logger)
            defer { managed?.stop() }
            let redis = try await connect(url, timeout: try global.redisDeadline(), logger: logger)
            defer { redis.shutdown() }
            var config = RedisQueueDriver.Configuration()
            config.keys = RedisKeys(prefix: "rbench-\(UUID().uuidString.prefix(6).lowercased())")
            let driver = RedisQueueDriver(redis: redis, configuration: config, logger: logger)
            let journal = try Journal.open(path: dir.appendingPathComponent("journal.sqlite").path, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [.init(service: journal.writer)], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                defer { tasks.cancelAll() }
                let live = try await synthesize(journal)
                let recovery = Recovery(journal: journal, driver: driver, logger: logger)
                print("journal: \(jobs) live jobs, \(finished) completed jobs with idempotency keys")
                let empty = try await timed(redis) { try await recovery.run(dryRun: false) }
                print(line("rebuild of an empty Redis", empty, jobs))
                let intact = try await timed(redis) { try await recovery.run(dryRun: false) }
                print(line("second pass, Redis intact", intact, jobs))
                // Every live job one event ahead in the journal than in Redis: a stale snapshot.
                try await advance(journal, live)
                let stale = try await timed(redis) { try await recovery.run(dryRun: false) }
                print(line("stale copies set back", stale, jobs))
                await group.triggerGracefulShutdown()
            }
        }

        struct Timing {
            var report: Recovery.Report
            var wall: Duration
            /// CPU seconds of this process and of redis-server during the phase.
            var cpu: Double
            var redisCPU: Double
        }

        private func line(_ what: String, _ t: Timing, _ n: Int) -> String {
            let seconds = Double(t.wall.milliseconds) / 1000
            let rate = seconds > 0 ? Int(Double(n) / seconds) : 0
            return String(format: "%-28@ %6.2f s %7d jobs/s  cpu: docket %5.2f s, redis %5.2f s (%4.1f µs/job)  restored %d (stale %d), present %d",
                          what as NSString, seconds, rate, t.cpu, t.redisCPU, t.redisCPU * 1e6 / Double(max(n, 1)),
                          t.report.restoredTotal, t.report.stale, t.report.present)
        }

        private func timed(_ redis: RedisClient, _ body: () async throws -> Recovery.Report) async throws -> Timing {
            let redisBefore = try await CPUTime.redis(redis)
            let cpuBefore = CPUTime.own()
            let start = ContinuousClock.now
            let report = try await body()
            let wall = start.duration(to: .now)
            return Timing(report: report, wall: wall, cpu: CPUTime.own() - cpuBefore, redisCPU: try await CPUTime.redis(redis) - redisBefore)
        }

        /// Writes the journal; returns the live jobs.
        private func synthesize(_ journal: Journal) async throws -> [(JobID, QueueName)] {
            var live = [(JobID, QueueName)]()
            let queues: [QueueName] = ["default", "mail", "billing", "reports"]
            let payload = #"{"customer":42,"note":"\#(String(repeating: "x", count: 40))"}"#
            for start in stride(from: 0, to: jobs + finished, by: 5000) {
                var events = [JournalEvent]()
                for i in start..<min(start + 5000, jobs + finished) {
                    let done = i >= jobs
                    var job = Job(type: "bench.job", payload: payload, queue: queues[i % queues.count], idempotencyKey: done ? "k-\(i)" : nil)
                    job.state = .pending
                    var enqueued = JournalEvent.enqueued(job, actor: nil)
                    enqueued.state = .pending
                    events.append(enqueued)
                    if !done { live.append((job.id, job.queue)) }
                    if done {
                        var completed = JournalEvent(jobID: job.id, seq: 2, at: Date(), event: "completed", state: .completed, attempt: 1, queue: job.queue)
                        completed.worker = "w-bench"
                        events.append(completed)
                    }
                }
                try await journal.writer.write([.events(events)])
            }
            return live
        }

        /// Journals one more event (`released`, still pending) for every live job, so Redis' copies are older.
        /// (Redis holds each at seq 2 after the rebuild's `restored` event; the journal now says seq 3.)
        private func advance(_ journal: Journal, _ live: [(JobID, QueueName)]) async throws {
            for start in stride(from: 0, to: live.count, by: 5000) {
                let events = live[start..<min(start + 5000, live.count)].map { id, queue in
                    JournalEvent(jobID: id, seq: 3, at: Date(), event: "released", state: .pending, attempt: 0, queue: queue)
                }
                try await journal.writer.write([.events(events)])
            }
        }
    }
}
