import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A small pool of pipelined Redis connections, plus dedicated connections for blocking commands.
///
/// Connections are made on first use and remade after a drop. While Redis is unreachable, requests
/// fail at once with `connectionFailed` and a new connection is tried with exponential backoff, so
/// callers never hang on a dead server. As a `Service` it closes every connection on shutdown.
public final class RedisClient: Service, Sendable {
    public struct Configuration: Sendable {
        public var url: RedisURL
        /// Pipelined connections shared by all non-blocking requests.
        public var poolSize = 2
        public var connectTimeout: Duration = .seconds(2)
        /// Deadline for every command (`DOCKET_REDIS_TIMEOUT`): a Redis that does not answer within it is down,
        /// like one that refuses connections.
        public var commandTimeout: Duration = .seconds(2)
        /// First and longest wait between reconnect attempts.
        public var minBackoff: Duration = .milliseconds(50)
        public var maxBackoff: Duration = .seconds(2)
        public init(url: RedisURL) { self.url = url }
    }

    public let configuration: Configuration
    let logger: Logger
    private let group: any EventLoopGroup
    private let slots: [Slot]
    private let next = Atomic<Int>(0)
    private let idleDedicated = Mutex<[RedisConnection]>([])
    private let isShutdown = Atomic<Bool>(false)
    /// Script name → SHA1 as returned by SCRIPT LOAD.
    let scriptSHAs = Mutex<[String: String]>([:])
    private let latestRunID = Mutex<String?>(nil)

    /// The `run_id` of the Redis process the newest connection reached: it changes whenever Redis restarts,
    /// which may mean Redis came back with older data (see `RedisQueueDriver.dataVerified`).
    public var serverRunID: String? { latestRunID.withLock { $0 } }

    public init(configuration: Configuration, logger: Logger, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.logger = logger
        self.group = eventLoopGroup
        self.slots = (0..<max(1, configuration.poolSize)).map { _ in Slot() }
    }

    public convenience init(url: RedisURL, logger: Logger) {
        self.init(configuration: Configuration(url: url), logger: logger)
    }

    /// Waits for shutdown, then closes every connection. With a `redis+sentinel://` URL it meanwhile asks Sentinel for
    /// the master every `sentinelPoll` and, when the answer changes (a failover), drops every connection so the next
    /// requests reach the new master instead of the old one, which keeps accepting writes until Sentinel demotes it.
    public func run() async throws {
        if case .sentinel(let nodes, let master) = configuration.url.endpoint {
            await cancelWhenGracefulShutdown { await self.followSentinel(nodes, master) }
        } else {
            try? await gracefulShutdown()
        }
        shutdown()
    }

    /// How often a Sentinel-configured client asks which server is master.
    public static let sentinelPoll: Duration = .milliseconds(500)

    private func followSentinel(_ nodes: [RedisURL.SentinelNode], _ master: String) async {
        var known: String?
        while !Task.isCancelled {
            if let (host, port) = try? await RedisConnection.masterAddress(nodes, master, on: group, timeout: configuration.connectTimeout) {
                let address = "\(host):\(port)"
                if let known, known != address {
                    logger.warning("Sentinel switched master; reconnecting", metadata: ["redis.master": "\(address)", "redis.previous": "\(known)"])
                    dropConnections()
                }
                known = address
            }
            try? await Task.sleep(for: Self.sentinelPoll)
        }
    }

    /// Closes every connection without shutting down: the next requests connect again.
    func dropConnections() {
        for slot in slots { slot.close() }
        for connection in idleDedicated.withLock({ list in defer { list.removeAll() }; return list }) { connection.close() }
    }

    /// Closes every connection; later requests throw `shutdown`.
    public func shutdown() {
        isShutdown.store(true, ordering: .relaxed)
        for slot in slots { slot.close() }
        for connection in idleDedicated.withLock({ list in defer { list.removeAll() }; return list }) {
            connection.close()
        }
    }

    /// Sends one command on a pooled connection; error replies throw `serverError`.
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        try await connection().send(command)
    }

    public func send(_ name: String, _ arguments: RESPArgument...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments))
    }

    /// Sends commands back to back on one connection; replies (errors included) come back in order.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await connection().pipeline(commands)
    }

    /// Sends commands on a pooled connection only if that connection reaches Redis process `runID` (a
    /// connection never outlives its Redis process); throws `serverChanged` otherwise, sending nothing.
    public func pipeline(_ commands: [RedisCommand], onRunID runID: String?) async throws -> [RESPValue] {
        let connection = try await connection()
        if let runID, connection.runID != runID {
            throw RedisClientError(.serverChanged, message: "redis restarted (run id \(connection.runID ?? "?"), expected \(runID))")
        }
        return try await connection.pipeline(commands)
    }

    /// Sends commands on a pooled connection and tells which Redis process (`run_id`) answered them.
    public func pipelineReportingRunID(_ commands: [RedisCommand]) async throws -> (replies: [RESPValue], runID: String?) {
        let connection = try await connection()
        return (try await connection.pipeline(commands), connection.runID)
    }

    /// True when a PING succeeds.
    public func ping() async -> Bool {
        (try? await send("PING"))?.string == "PONG"
    }

    /// Runs `body` with a connection no one else uses (for blocking commands). It goes back to a small
    /// idle list afterwards if it is still open.
    public func withDedicatedConnection<T: Sendable>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        try checkNotShutdown()
        let reused = idleDedicated.withLock { list -> RedisConnection? in
            while let c = list.popLast() { if c.isActive { return c } }
            return nil
        }
        let connection: RedisConnection
        if let reused {
            connection = reused
        } else {
            connection = try await open()
        }
        do {
            let result = try await body(connection)
            giveBack(connection)
            return result
        } catch {
            giveBack(connection)
            throw error
        }
    }

    private func giveBack(_ connection: RedisConnection) {
        guard connection.isActive, !isShutdown.load(ordering: .relaxed) else {
            connection.close()
            return
        }
        let kept = idleDedicated.withLock { list -> Bool in
            guard list.count < 16 else { return false }
            list.append(connection)
            return true
        }
        if !kept { connection.close() }
    }

    private func open() async throws -> RedisConnection {
        let connection = try await RedisConnection.connect(
            to: configuration.url, on: group, timeout: configuration.connectTimeout, commandTimeout: configuration.commandTimeout)
        if let runID = connection.runID { latestRunID.withLock { $0 = runID } }
        return connection
    }

    private func checkNotShutdown() throws {
        if isShutdown.load(ordering: .relaxed) { throw RedisClientError(.shutdown, message: "redis client is shut down") }
    }

    /// A live pooled connection, connecting (or reconnecting) if needed.
    func connection() async throws -> RedisConnection {
        try checkNotShutdown()
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        let slot = slots[index % slots.count]
        switch slot.acquire(now: .now()) {
        case .ready(let connection):
            return connection
        case .wait(let future):
            return try await future.get()
        case .unavailable(let error):
            throw error
        case .connect(let promise):
            do {
                let connection = try await open()
                if isShutdown.load(ordering: .relaxed) {
                    connection.close()
                    throw RedisClientError(.shutdown, message: "redis client is shut down")
                }
                slot.connected(connection)
                // Redis is reachable again: other slots need not wait out their backoff.
                for other in slots where other !== slot { other.resetBackoff() }
                promise.succeed(connection)
                logger.debug("Connected to Redis", metadata: ["redis.url": "\(configuration.url)"])
                return connection
            } catch {
                let wrapped = error as? RedisClientError ?? RedisClientError(.connectionFailed, message: "\(error)")
                let backoff = slot.failed(wrapped, now: .now(), min: configuration.minBackoff, max: configuration.maxBackoff)
                logger.debug("Redis connect failed", metadata: ["redis.url": "\(configuration.url)", "error": "\(wrapped)", "retry.in": "\(backoff)"])
                promise.fail(wrapped)
                throw wrapped
            }
        }
    }

    /// One pooled connection's state machine: disconnected (until a backoff deadline) → connecting → connected.
    private final class Slot: Sendable {
        enum State {
            case disconnected(retryAt: NIODeadline, failures: Int, lastError: RedisClientError?)
            case connecting(EventLoopFuture<RedisConnection>, failures: Int)
            case connected(RedisConnection)
        }
        enum Action {
            case ready(RedisConnection)
            case wait(EventLoopFuture<RedisConnection>)
            case connect(EventLoopPromise<RedisConnection>)
            case unavailable(RedisClientError)
        }
        private let state = Mutex<State>(.disconnected(retryAt: .uptimeNanoseconds(0), failures: 0, lastError: nil))
        private let loop = MultiThreadedEventLoopGroup.singleton.any()

        func acquire(now: NIODeadline) -> Action {
            state.withLock { state in
                switch state {
                case .connected(let connection):
                    if connection.isActive { return .ready(connection) }
                    // Dropped: the first reconnect is immediate.
                    let promise = loop.makePromise(of: RedisConnection.self)
                    state = .connecting(promise.futureResult, failures: 0)
                    return .connect(promise)
                case .connecting(let future, _):
                    return .wait(future)
                case .disconnected(let retryAt, let failures, let lastError):
                    if let lastError, now < retryAt { return .unavailable(lastError) }
                    let promise = loop.makePromise(of: RedisConnection.self)
                    state = .connecting(promise.futureResult, failures: failures)
                    return .connect(promise)
                }
            }
        }

        func resetBackoff() {
            state.withLock { state in
                if case .disconnected(_, let failures, let error) = state, error != nil {
                    state = .disconnected(retryAt: .uptimeNanoseconds(0), failures: failures, lastError: error)
                }
            }
        }

        func connected(_ connection: RedisConnection) {
            state.withLock { $0 = .connected(connection) }
        }

        /// Records a failed attempt; returns the wait before the next one (doubling up to `max`).
        func failed(_ error: RedisClientError, now: NIODeadline, min: Duration, max: Duration) -> Duration {
            state.withLock { state in
                var failures = 1
                if case .connecting(_, let previous) = state { failures = previous + 1 }
                let backoff = Swift.min(max, min * (1 << Swift.min(failures - 1, 20)))
                state = .disconnected(retryAt: now + .nanoseconds(backoff.nanoseconds), failures: failures, lastError: error)
                return backoff
            }
        }

        func close() {
            state.withLock { state in
                if case .connected(let connection) = state { connection.close() }
                state = .disconnected(retryAt: .uptimeNanoseconds(0), failures: 0, lastError: nil)
            }
        }
    }
}

