import Hummingbird
import Logging
import NIOCore

/// Per-request context: the request id (echoed as `X-Request-Id`) and who made the request.
public struct DocketContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID = ""
    /// The actor recorded in events: the request id, plus the API key's name when keys are on.
    public var actor: String { apiKeyName.map { "\(requestID) (\($0))" } ?? requestID }
    public var apiKeyName: String?
    /// The peer's address, for per-client rate limits.
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
