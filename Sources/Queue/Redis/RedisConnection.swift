import NIOCore
import NIOPosix
import Synchronization

/// One Redis connection. Requests from any task are pipelined in FIFO order; writes made in
/// the same event-loop tick share one flush.
public final class RedisConnection: Sendable {
    let channel: any Channel
    /// Every request must be answered within this, or the connection is closed and the request fails with
    /// `timedOut` (a frozen Redis never hangs a caller).
    let commandTimeout: Duration
    private let serverRunID = Mutex<String?>(nil)

    private init(channel: any Channel, commandTimeout: Duration) {
        self.channel = channel
        self.commandTimeout = commandTimeout
    }

    /// The `run_id` of the Redis process this connection reached (each Redis start has a new one).
    public var runID: String? { serverRunID.withLock { $0 } }

    /// Connects, then authenticates, selects the database named by `url` and learns the server's run id.
    /// The address Sentinel gives for `master`, from the first of `nodes` that answers.
    static func masterAddress(_ nodes: [RedisURL.SentinelNode], _ master: String, on group: any EventLoopGroup, timeout: Duration)
        async throws -> (String, Int)
    {
        var failures = [String]()
        for node in nodes {
            do {
                let sentinel = try await connect(to: RedisURL(endpoint: .tcp(host: node.host, port: node.port)), on: group, timeout: timeout, commandTimeout: timeout)
                defer { sentinel.close() }
                let reply = try await sentinel.send(RedisCommand("SENTINEL", ["get-master-addr-by-name", RESPArgument(master)]))
                if let pair = reply.array, pair.count == 2, let host = pair[0].string, let port = pair[1].string.flatMap({ Int($0) }) {
                    return (host, port)
                }
                failures.append("\(node.host):\(node.port) knows no master \(master)")
            } catch {
                failures.append("\(node.host):\(node.port): \(error)")
            }
        }
        throw RedisClientError(.connectionFailed, message: "no Sentinel gave master \(master): \(failures.joined(separator: "; "))")
    }

    public static func connect(
        to url: RedisURL,
        on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        timeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(2)
    ) async throws -> RedisConnection {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(RESPDecoder()),
                        RedisCommandHandler(),
                    ])
                }
            }
        if case .sentinel(let nodes, let master) = url.endpoint {
            // Sentinel: ask for the current master, connect to it, and make sure it still is one (a Sentinel can answer
            // with the old master for a moment during a failover; the caller's backoff then tries again).
            let (host, port) = try await masterAddress(nodes, master, on: group, timeout: timeout)
            let connection = try await connect(to: url.at(host: host, port: port), on: group, timeout: timeout, commandTimeout: commandTimeout)
            let role = try? await connection.send(RedisCommand("ROLE"))
            guard role?.array?.first?.string == "master" else {
                connection.close()
                throw RedisClientError(.connectionFailed, message: "\(url): \(host):\(port) is not master \(master) (yet)")
            }
            return connection
        }
        if case .cluster(let nodes) = url.endpoint {
            // A plain connection to the first seed that answers (the cluster client routes with `ClusterRouter`).
            var failure: (any Error)?
            for node in nodes {
                do { return try await connect(to: url.at(host: node.host, port: node.port), on: group, timeout: timeout, commandTimeout: commandTimeout) } catch {
                    failure = error
                }
            }
            throw failure ?? RedisClientError(.connectionFailed, message: "\(url): no node")
        }
        let channel: any Channel
        do {
            switch url.endpoint {
            case .tcp(let host, let port):
                channel = try await bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connect(host: host, port: port).get()
            case .unix(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            case .sentinel, .cluster:
                preconditionFailure("resolved above")
            }
        } catch {
            throw RedisClientError(.connectionFailed, message: "\(url): \(error)")
        }
        let connection = RedisConnection(channel: channel, commandTimeout: commandTimeout)
        do {
            if let password = url.password {
                let args: [RESPArgument] = url.username.map { [RESPArgument($0), RESPArgument(password)] } ?? [RESPArgument(password)]
                _ = try await connection.send(RedisCommand("AUTH", args))
            }
            if url.database != 0 {
                _ = try await connection.send(RedisCommand("SELECT", [RESPArgument(url.database)]))
            }
            let info = try await connection.send(RedisCommand("INFO", ["server"]))
            connection.serverRunID.withLock { $0 = RedisConnection.runID(fromInfo: info) }
        } catch {
            connection.close()
            throw RedisClientError(.connectionFailed, message: "\(url): \(error)")
        }
        return connection
    }

    public var isActive: Bool { channel.isActive }

    /// Sends one command; an error reply is thrown as `RedisClientError.serverError`.
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        let reply = try await pipeline([command])[0]
        if case .error(let message) = reply { throw RedisClientError(.serverError, message: message) }
        return reply
    }

    /// Sends commands back to back and returns their replies in order; error replies are returned, not thrown.
    /// Throws `timedOut` (and closes the connection, whose replies can no longer be matched) when Redis does not
    /// answer within the command deadline, plus `extra` for commands that block server-side.
    public func pipeline(_ commands: [RedisCommand], extra: Duration = .zero) async throws -> [RESPValue] {
        if commands.isEmpty { return [] }
        let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
        let request = RedisRequest(commands: commands, promise: promise)
        // Large pipelines get a little longer: Redis answers them one command at a time.
        let deadline = commandTimeout + extra + .milliseconds(commands.count / 10)
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(deadline.nanoseconds)) {
            promise.fail(RedisClientError(.timedOut, message: "no reply from redis within \(deadline)"))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        channel.writeAndFlush(request).whenFailure { error in
            promise.fail(RedisClientError(.connectionClosed, message: "\(error)"))
        }
        return try await promise.futureResult.get()
    }

    /// Runs a command that may block server-side up to `block` (BLPOP, …). Cancelling the task closes the
    /// connection, the only way to stop a blocked command; use a dedicated connection for this.
    public func sendBlocking(_ command: RedisCommand, block: Duration) async throws -> RESPValue {
        try await withTaskCancellationHandler {
            let reply = try await pipeline([command], extra: block)[0]
            if case .error(let message) = reply { throw RedisClientError(.serverError, message: message) }
            return reply
        } onCancel: {
            self.close()
        }
    }

    /// The `run_id:` line of an `INFO server` reply.
    static func runID(fromInfo info: RESPValue) -> String? {
        let text = info.string ?? ""
        return text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("run_id:") }.map { String($0.dropFirst(7)) }
    }

    public func close() {
        channel.close(promise: nil)
    }
}

/// Commands and the promise for their replies.
struct RedisRequest {
    let commands: [RedisCommand]
    let promise: EventLoopPromise<[RESPValue]>
}

/// Matches replies to requests in FIFO order and coalesces flushes.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct InFlight {
        let expected: Int
        let promise: EventLoopPromise<[RESPValue]>
    }

    private var inFlight = CircularBuffer<InFlight>(initialCapacity: 64)
    /// Replies so far to the oldest request in flight. Kept here, not in `InFlight`: appending through the
    /// buffer's subscript copied the whole array on every reply (quadratic in a pipeline's length).
    private var replies: [RESPValue] = []
    private var flushPending = false
    private var closed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if closed {
            let error = RedisClientError(.connectionClosed, message: "connection closed")
            request.promise.fail(error)
            promise?.fail(error)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        for command in request.commands { RESPEncoder.encode(command, into: &buffer) }
        inFlight.append(InFlight(expected: request.commands.count, promise: request.promise))
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        // Many tasks write in the same tick: flush once, after the writes already queued on the loop.
        guard !flushPending else { return }
        flushPending = true
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.assumeIsolated().execute {
            self.flushPending = false
            loopBound.value.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        guard !inFlight.isEmpty else {
            // A reply nobody asked for: the stream is out of step, so the connection can't be trusted.
            context.fireErrorCaught(RedisClientError(.protocolError, message: "unexpected reply"))
            context.close(promise: nil)
            return
        }
        let head = inFlight[inFlight.startIndex]
        if replies.isEmpty { replies.reserveCapacity(head.expected) }
        replies.append(value)
        if replies.count == head.expected {
            inFlight.removeFirst()
            let done = replies
            replies = []
            head.promise.succeed(done)
        }
        // A master demoted to replica (a failover): drop the connection so the next request connects again, through
        // Sentinel to the new master when the URL names Sentinels.
        if case .error(let message) = value, message.hasPrefix("READONLY") { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisClientError(.connectionClosed, message: "connection to redis lost"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error as? RedisClientError ?? RedisClientError(.connectionClosed, message: "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisClientError) {
        closed = true
        replies = []
        while let request = inFlight.popFirst() { request.promise.fail(error) }
    }
}
