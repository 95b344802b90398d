import Hummingbird

/// Keeps web pages from driving the API (SPEC §4): a state-changing request whose `Origin` is not the server's own
/// (or listed) answers 403, and a server on loopback answers 403 to a `Host` that is not a loopback name (or listed),
/// which defeats DNS rebinding. Requests without `Origin` (curl, SDKs, the CLI) are not browsers' and pass.
struct BrowserGuard: RouterMiddleware {
    typealias Context = DocketContext
    struct Configuration: Sendable {
        /// The server listens on loopback only: then `Host` must name it as loopback (or be listed).
        var loopback = true
        /// Extra names `Host` may carry (`DOCKET_ALLOWED_HOSTS`), lowercased, without port.
        var allowedHosts: Set<String> = []
        /// Extra origins allowed to change state (`DOCKET_ALLOWED_ORIGINS`), e.g. `https://admin.example.com`.
        var allowedOrigins: Set<String> = []
    }
    let configuration: Configuration

    static let loopbackNames: Set<String> = ["localhost", "127.0.0.1", "[::1]"]

    func handle(_ request: Request, context: DocketContext, next: (Request, DocketContext) async throws -> Response) async throws -> Response {
        // HTTP/1's Host header becomes the authority; a client that builds requests itself may send a plain field.
        let host = request.headers[.init("Host")!] ?? request.head.authority
        if configuration.loopback, let host, !Self.loopbackNames.contains(Self.name(of: host)), !configuration.allowedHosts.contains(Self.name(of: host)) {
            throw APIError(.forbidden, code: "forbidden_host", message: "Host \"\(host.prefix(100))\" is not this server's (set DOCKET_ALLOWED_HOSTS to allow it)", field: "Host")
        }
        if Self.changesState(request.method), let origin = request.headers[.origin] {
            let own = host.map { ["http://\($0.lowercased())", "https://\($0.lowercased())"] } ?? []
            guard own.contains(origin.lowercased()) || configuration.allowedOrigins.contains(origin.lowercased()) else {
                throw APIError(.forbidden, code: "forbidden_origin", message: "requests from origin \"\(origin.prefix(100))\" may not change anything (set DOCKET_ALLOWED_ORIGINS to allow it)", field: "Origin")
            }
        }
        return try await next(request, context)
    }

    static func changesState(_ method: HTTPRequest.Method) -> Bool {
        method != .get && method != .head && method != .options
    }

    /// The host name of a `Host` value, lowercased and without its port: `[::1]:8080` → `[::1]`.
    static func name(of host: String) -> String {
        let lower = host.lowercased()
        if lower.hasPrefix("[") { return lower.firstIndex(of: "]").map { String(lower[...$0]) } ?? lower }
        return lower.split(separator: ":", maxSplits: 1).first.map(String.init) ?? lower
    }
}
