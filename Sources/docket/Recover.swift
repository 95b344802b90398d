import ArgumentParser
import DocketJournal
import DocketQueue
import Foundation
import Logging

extension Docket {
    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild Redis from the journal: non-terminal jobs, the dead-letter queue, live idempotency keys.",
            discussion: """
                Per job: one Redis lacks, or holds older than the journal (lower seq), is set back to the journal's state;
                finished jobs never run again. Jobs Redis holds as new as the journal are left alone, so it is safe to run
                while a server runs, or twice.
                """)

        @OptionGroup var global: GlobalOptions
        @Option(help: "Journal file (env DOCKET_JOURNAL, default <data-dir>/journal.sqlite).") var journal: String?
        @Option(help: "Data directory (env DOCKET_DATA_DIR, default ./.docket).") var dataDir: String?
        @Flag(help: "Only report what would be restored.") var dryRun = false
        @Option(help: "Rebuild the state as of this RFC 3339 time (e.g. 2026-11-23T12:00:00Z).") var asOf: String?

        func run() async throws {
            let logger = try global.logger("docket.recover")
            guard let url = try global.redisURL() else { throw ValidationError("--redis (or DOCKET_REDIS_URL) is required") }
            var when: Date?
            if let asOf {
                guard let date = Timestamp.parse(asOf) else { throw ValidationError("--as-of: \"\(asOf)\" is not an RFC 3339 time") }
                when = date
            }
            let dir = URL(fileURLWithPath: dataDir ?? env("DOCKET_DATA_DIR") ?? ".docket", isDirectory: true)
            let path = journal ?? env("DOCKET_JOURNAL") ?? dir.appendingPathComponent("journal.sqlite").path
            guard FileManager.default.fileExists(atPath: path) else { throw CLIError("no journal at \(path)") }
            let store = try Journal.open(path: path, logger: logger)
            let redis = try await connect(url, timeout: try global.redisDeadline(), logger: logger)
            defer { redis.shutdown() }
            var config = RedisQueueDriver.Configuration()
            config.keys = try global.keys()
            let driver = RedisQueueDriver(redis: redis, configuration: config, logger: logger)
            let runID = try await driver.markerState().runID
            if !dryRun { try await driver.clearMarker() }
            let report = try await Recovery(journal: store, driver: driver, logger: logger).run(dryRun: dryRun, asOf: when)
            if !dryRun { try await driver.setMarker(runID: runID) }
            print("\(dryRun ? "would restore" : "restored") \(report.restoredTotal) of \(report.candidates) journaled jobs (\(report.present) already in Redis, \(report.stale) of the restored were stale there)")
            for (state, n) in report.restored.sorted(by: { $0.key.rawValue < $1.key.rawValue }) { print("  \(state.rawValue): \(n)") }
            if report.undefined > 0 {
                print("\(report.undefined) live jobs were not restored: this journal never learned their type and payload")
            }
        }
    }
}
