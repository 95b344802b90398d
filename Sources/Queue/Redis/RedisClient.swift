import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The Redis client every part of Docket uses: a `ConnectionPool` to one server (`redis://`, `unix://`, or the master
/// Sentinel names), or with `redis+cluster://` a `ClusterRouter` that sends each command to the master serving its key.
/// As a `Service` it follows Sentinel or the cluster's slot map, and closes every connection on shutdown.
public final class RedisClient: Service, Sendable {
    public struct Configuration: Sendable {
        public var url: RedisURL
        /// Pipelined connections shared by all non-blocking requests (per node in a cluster).
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
    /// One server (nil in cluster mode).
    private let single: ConnectionPool?
    /// A cluster (nil otherwise).
    let router: ClusterRouter?
    private let isShutdown = Atomic<Bool>(false)
    /// Script name → SHA1 as returned by SCRIPT LOAD.
    let scriptSHAs = Mutex<[String: String]>([:])

    /// The `run_id` of the Redis process the newest connection reached: it changes whenever Redis restarts,
    /// which may mean Redis came back with older data (see `RedisQueueDriver.dataVerified`). Nil in cluster mode
    /// (each master has its own).
    public var serverRunID: String? { single?.serverRunID }

    /// True with a `redis+cluster://` URL.
    public var isCluster: Bool { router != nil }

    /// Cluster redirects this client followed (all zero outside a cluster).
    public struct Redirects: Sendable, Hashable {
        public var moved = 0, ask = 0, tryAgain = 0
    }
    public var redirects: Redirects { router?.redirects.withLock { $0 } ?? Redirects() }

    public init(configuration: Configuration, logger: Logger, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.logger = logger
        self.group = eventLoopGroup
        if case .cluster(let nodes) = configuration.url.endpoint {
            single = nil
            router = ClusterRouter(url: configuration.url, nodes: nodes, configuration: configuration, logger: logger, group: eventLoopGroup)
        } else {
            single = ConnectionPool(url: configuration.url, configuration: configuration, logger: logger, group: eventLoopGroup)
            router = nil
        }
    }

    public convenience init(url: RedisURL, logger: Logger) {
        self.init(configuration: Configuration(url: url), logger: logger)
    }

    /// Waits for shutdown, then closes every connection. With a `redis+sentinel://` URL it meanwhile asks Sentinel for
    /// the master every `sentinelPoll` and, when the answer changes (a failover), drops every connection so the next
    /// requests reach the new master instead of the old one, which keeps accepting writes until Sentinel demotes it.
    /// With a cluster it learns the slot map again every `clusterPoll`, so a promoted replica is used within it even
    /// before a request meets `MOVED`.
    public func run() async throws {
        if case .sentinel(let nodes, let master) = configuration.url.endpoint {
            await cancelWhenGracefulShutdown { await self.followSentinel(nodes, master) }
        } else if let router {
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try? await router.refresh(minAge: .zero)
                    try? await Task.sleep(for: Self.clusterPoll)
                }
            }
        } else {
            try? await gracefulShutdown()
        }
        shutdown()
    }

    /// How often a Sentinel-configured client asks which server is master.
    public static let sentinelPoll: Duration = .milliseconds(500)
    /// How often a cluster client reads the slot map.
    public static let clusterPoll: Duration = .seconds(1)

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
        single?.dropConnections()
        router?.dropConnections()
    }

    /// Closes every connection; later requests throw `shutdown`.
    public func shutdown() {
        isShutdown.store(true, ordering: .relaxed)
        single?.shutdown()
        router?.shutdown()
    }

    /// Sends one command on a pooled connection; error replies throw `serverError`.
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        guard let router else { return try await connection().send(command) }
        let reply = try await router.pipeline([command], fence: nil)[0]
        if case .error(let message) = reply { throw RedisClientError(.serverError, message: message) }
        return reply
    }

    public func send(_ name: String, _ arguments: RESPArgument...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments))
    }

    /// Sends commands back to back on one connection (in a cluster: one per node, all at once); replies (errors
    /// included) come back in order.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        guard let router else { return try await connection().pipeline(commands) }
        return try await router.pipeline(commands, fence: nil)
    }

    /// Sends commands on a pooled connection only if that connection reaches Redis process `runID` (a
    /// connection never outlives its Redis process); throws `serverChanged` otherwise, sending nothing.
    /// In a cluster `runID` lists the vouched masters' run ids, comma-separated, and every node the commands reach
    /// must be one of them.
    public func pipeline(_ commands: [RedisCommand], onRunID runID: String?) async throws -> [RESPValue] {
        if let router { return try await router.pipeline(commands, fence: runID.map { Set($0.split(separator: ",").map(String.init)) }) }
        let connection = try await connection()
        if let runID, connection.runID != runID {
            throw RedisClientError(.serverChanged, message: "redis restarted (run id \(connection.runID ?? "?"), expected \(runID))")
        }
        return try await connection.pipeline(commands)
    }

    /// Sends commands on a pooled connection and tells which Redis process (`run_id`) answered them (in a cluster the
    /// commands' keys must live on one master).
    public func pipelineReportingRunID(_ commands: [RedisCommand]) async throws -> (replies: [RESPValue], runID: String?) {
        if let router { return try await router.pipelineReportingRunID(commands) }
        let connection = try await connection()
        return (try await connection.pipeline(commands), connection.runID)
    }

    /// Sends `command` to every master of a cluster, or to the one server.
    public func sendToEachMaster(_ command: RedisCommand) async throws -> [RESPValue] {
        try await withEachMaster { try await $0.send(command) }
    }

    /// Runs `body` on a pooled connection to each master of a cluster in turn (keyless work: SCAN, INFO), or to the one
    /// server.
    public func withEachMaster<T: Sendable>(_ body: (RedisConnection) async throws -> T) async throws -> [T] {
        guard let router else { return [try await body(try await connection())] }
        var results = [T]()
        for (address, _) in try await router.masters() { results.append(try await body(try await router.pool(address).connection())) }
        return results
    }

    /// Each cluster master and a hash tag whose keys it serves; empty outside a cluster.
    public func clusterMasters() async throws -> [(address: String, tag: String)] {
        try await router?.masters() ?? []
    }

    /// True when a PING succeeds.
    public func ping() async -> Bool {
        (try? await send("PING"))?.string == "PONG"
    }

    /// Runs `body` with a connection no one else uses (for blocking commands). It goes back to a small
    /// idle list afterwards if it is still open. In a cluster the connection reaches the master serving `key`.
    public func withDedicatedConnection<T: Sendable>(for key: RedisKey? = nil, _ body: (RedisConnection) async throws -> T) async throws -> T {
        try checkNotShutdown()
        if let router {
            guard let key else { preconditionFailure("a dedicated cluster connection needs the key it serves") }
            return try await router.withDedicatedConnection(key: key, body)
        }
        return try await single!.withDedicatedConnection(body)
    }

    private func checkNotShutdown() throws {
        if isShutdown.load(ordering: .relaxed) { throw RedisClientError(.shutdown, message: "redis client is shut down") }
    }

    /// A live pooled connection to the one server (not in cluster mode).
    func connection() async throws -> RedisConnection {
        try checkNotShutdown()
        return try await single!.connection()
    }
}
