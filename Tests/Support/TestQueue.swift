import DocketQueue
import Foundation
import Logging

/// A driver on a real Redis with a key prefix of its own, so tests never see each other's keys.
public struct TestQueue: Sendable {
    public let redis: RedisClient
    public let driver: RedisQueueDriver
    public let server: RedisServer
    public var keys: RedisKeys { driver.keys }

    public static let logger: Logger = {
        var logger = Logger(label: "docket.test")
        logger.logLevel = ProcessInfo.processInfo.environment["DOCKET_TEST_LOG"] == nil ? .critical : .debug
        return logger
    }()

    /// A fresh prefix on `server` (the shared one by default); `configure` adjusts the driver's settings.
    public init(server: RedisServer = .shared, configure: (inout RedisQueueDriver.Configuration) -> Void = { _ in }) {
        var configuration = RedisQueueDriver.Configuration()
        configuration.keys = RedisKeys(prefix: "t-\(UUID().uuidString.prefix(8).lowercased())")
        configure(&configuration)
        self.server = server
        self.redis = RedisClient(url: server.url, logger: Self.logger)
        self.driver = RedisQueueDriver(redis: redis, configuration: configuration, logger: Self.logger)
    }

    /// Another client and driver on the same server and prefix (another process, as far as Redis can tell).
    public func sibling() -> RedisQueueDriver {
        RedisQueueDriver(redis: RedisClient(url: server.url, logger: Self.logger), configuration: driver.configuration, logger: Self.logger)
    }

    public func close() { redis.shutdown() }

    /// Marks this Redis as holding the journal's data (what `RecoveryService` does after its first check), so
    /// journaled enqueues are not fenced.
    public func vouch() async throws {
        try await driver.setMarker(runID: try await driver.markerState().runID)
    }
}

/// Runs `body` with a fresh test queue and closes its client afterwards.
public func withTestQueue<T>(
    server: RedisServer = .shared,
    configure: (inout RedisQueueDriver.Configuration) -> Void = { _ in },
    _ body: (TestQueue) async throws -> T
) async throws -> T {
    let queue = TestQueue(server: server, configure: configure)
    defer { queue.close() }
    return try await body(queue)
}

/// Polls `condition` until it holds or `timeout` passes (then fails with `message`).
public func eventually(
    timeout: Duration = .seconds(20), _ message: String = "condition", _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestSupportError("timed out waiting for \(message)")
}

extension TestQueue {
    /// Waits until the job reaches a terminal state and returns it.
    public func finished(_ id: JobID, timeout: Duration = .seconds(20)) async throws -> Job {
        var last: Job?
        try await eventually(timeout: timeout, "job \(id) to finish") {
            last = try await driver.job(id)
            return last?.state.isTerminal == true
        }
        return last!
    }
}
