import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The connections to one Redis server: a few pipelined connections shared by all non-blocking requests, plus
/// dedicated connections for blocking commands. Connections are made on first use and remade after a drop; while the
/// server is unreachable, requests fail at once with `connectionFailed` and a new connection is tried with exponential
/// backoff, so callers never hang on a dead server.
final class ConnectionPool: Sendable {
    let url: RedisURL
    private let configuration: RedisClient.Configuration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let slots: [Slot]
    private let next = Atomic<Int>(0)
    private let idleDedicated = Mutex<[RedisConnection]>([])
    private let isShutdown = Atomic<Bool>(false)
    private let latestRunID = Mutex<String?>(nil)

    init(url: RedisURL, configuration: RedisClient.Configuration, logger: Logger, group: any EventLoopGroup) {
        self.url = url
        self.configuration = configuration
        self.logger = logger
        self.group = group
        self.slots = (0..<max(1, configuration.poolSize)).map { _ in Slot() }
    }

    /// The `run_id` of the Redis process the newest connection reached.
    var serverRunID: String? { latestRunID.withLock { $0 } }

    /// Closes every connection without shutting down: the next requests connect again.
    func dropConnections() {
        for slot in slots { slot.close() }
        for connection in idleDedicated.withLock({ list in defer { list.removeAll() }; return list }) { connection.close() }
    }

    /// Closes every connection; later requests throw `shutdown`.
    func shutdown() {
        isShutdown.store(true, ordering: .relaxed)
        dropConnections()
    }

    /// Runs `body` with a connection no one else uses (for blocking commands). It goes back to a small
    /// idle list afterwards if it is still open.
    func withDedicatedConnection<T: Sendable>(_ body: (RedisConnection) async throws -> T) async throws -> T {
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
            to: url, on: group, timeout: configuration.connectTimeout, commandTimeout: configuration.commandTimeout)
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
                logger.debug("Connected to Redis", metadata: ["redis.url": "\(url)"])
                return connection
            } catch {
                let wrapped = error as? RedisClientError ?? RedisClientError(.connectionFailed, message: "\(error)")
                let backoff = slot.failed(wrapped, now: .now(), min: configuration.minBackoff, max: configuration.maxBackoff)
                logger.debug("Redis connect failed", metadata: ["redis.url": "\(url)", "error": "\(wrapped)", "retry.in": "\(backoff)"])
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
