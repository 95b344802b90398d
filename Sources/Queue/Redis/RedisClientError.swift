/// An error from the Redis client: the connection, the protocol, or an error reply.
public struct RedisClientError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case connectionClosed, connectionFailed, protocolError, serverError, invalidURL, shutdown, unexpectedReply, timedOut, serverChanged
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// The connection dropped while the request was in flight or queued; it may or may not have run.
        public static var connectionClosed: Self { .init(.connectionClosed) }
        /// No connection could be made (Redis down or unreachable); the request was not sent.
        public static var connectionFailed: Self { .init(.connectionFailed) }
        /// Redis did not answer within the command deadline (frozen, stalled network); the connection is closed,
        /// and the request may or may not have run.
        public static var timedOut: Self { .init(.timedOut) }
        /// The request required a given Redis process (`run_id`) and the connection reached another: Redis
        /// restarted. Nothing was sent.
        public static var serverChanged: Self { .init(.serverChanged) }
        /// Redis sent bytes that are not RESP.
        public static var protocolError: Self { .init(.protocolError) }
        /// Redis answered with an error reply (`message` holds it).
        public static var serverError: Self { .init(.serverError) }
        public static var invalidURL: Self { .init(.invalidURL) }
        /// The client has shut down.
        public static var shutdown: Self { .init(.shutdown) }
        /// A reply of a shape the caller did not expect.
        public static var unexpectedReply: Self { .init(.unexpectedReply) }
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, message: String = "") {
        self.code = code
        self.message = message
    }

    /// True when the request never reached Redis or the connection broke: the caller may retry later.
    public var isConnectionError: Bool {
        code == .connectionClosed || code == .connectionFailed || code == .shutdown || code == .timedOut
    }

    /// A cluster redirect or a slot in flux (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) from a command sent on a connection of
    /// its own (the pooled requests follow these themselves).
    public var isClusterRedirect: Bool {
        code == .serverError && ["MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"].contains { message.hasPrefix($0) }
    }

    public var description: String { message.isEmpty ? "redis: \(code)" : "redis: \(code): \(message)" }
}
