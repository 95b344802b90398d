import Foundation
import Logging
import ServiceLifecycle

/// Runs the scheduler step (promote due jobs, reap expired leases) on a fixed tick until shutdown.
/// Any number of processes may run one: every step is atomic in Redis.
public struct QueueScheduler: Service {
    let driver: any QueueDriver
    let interval: Duration
    let logger: Logger

    public init(driver: any QueueDriver, interval: Duration = .milliseconds(200), logger: Logger) {
        self.driver = driver
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                _ = try await driver.runScheduler(now: Date())
                if failing { logger.info("Scheduler reached Redis again") }
                failing = false
            } catch {
                if !failing { logger.warning("Scheduler step failed; retrying", metadata: ["error": "\(error)"]) }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
