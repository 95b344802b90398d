import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization
import DocketJournal
import DocketQueue

/// Echoes or generates `X-Request-Id`, logs every request with structured metadata (never bodies),
/// renders every error as the API's JSON error, and times requests for `/metrics`.
struct RequestMiddleware: RouterMiddleware {
    typealias Context = DocketContext
    let metrics: HTTPMetrics

    func handle(_ request: Request, context: DocketContext, next: (Request, DocketContext) async throws -> Response) async throws -> Response {
        var context = context
        let given = request.headers[.init("X-Request-Id")!].flatMap { id in
            id.utf8.count <= 128 && id.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F } ? id : nil
        }
        context.requestID = given ?? "req-" + UUID().uuidString.lowercased().prefix(18)
        context.logger[metadataKey: "request.id"] = "\(context.requestID)"
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = try error.response(from: request, context: context)
        } catch is NIOTooManyBytesError {
            response = try APIError(.contentTooLarge, code: "body_too_large", message: "request body larger than the server's limit", field: "body")
                .response(from: request, context: context)
        } catch let error as RedisClientError {
            // Redis down, frozen past its deadline, or refusing writes: the client may retry soon. Never a 500.
            context.logger.warning("Redis unavailable", metadata: ["error": "\(error)"])
            var unavailable = APIError(.serviceUnavailable, code: "redis_unavailable", message: "Redis is unavailable; try again shortly")
            unavailable.headers[.retryAfter] = "1"
            response = try unavailable.response(from: request, context: context)
        } catch let error as JournalError where error.code == .unavailable {
            // The journal cannot commit: nothing is acknowledged that was not journaled.
            context.logger.error("Journal unavailable", metadata: ["error": "\(error)"])
            var unavailable = APIError(.serviceUnavailable, code: "journal_unavailable", message: "the journal cannot commit; nothing was accepted")
            unavailable.headers[.retryAfter] = "5"
            response = try unavailable.response(from: request, context: context)
        } catch let error as HTTPError where error.status == .notFound && !Self.allowed(request.uri.path).isEmpty {
            // A known path with another method: 405 naming the methods it has.
            let allowed = Self.allowed(request.uri.path)
            var notAllowed = APIError(.methodNotAllowed, code: "method_not_allowed",
                                      message: "\(request.method) is not allowed here; use \(allowed.joined(separator: ", "))")
            notAllowed.headers[.allow] = allowed.joined(separator: ", ")
            response = try notAllowed.response(from: request, context: context)
        } catch let error as HTTPError {
            let code = error.status == .contentTooLarge ? "body_too_large" : error.status == .notFound ? "not_found" : "http_error"
            response = try APIError(error.status, code: code, message: error.body ?? error.status.reasonPhrase).response(from: request, context: context)
        } catch {
            context.logger.error("Request failed", metadata: ["error": "\(error)"])
            response = try APIError(.internalServerError, code: "internal", message: "internal error").response(from: request, context: context)
        }
        // HEAD routes run their GET handler (health checks, link checkers); the answer keeps only the head.
        if request.method == .head { response.body = ResponseBody() }
        response.headers[.init("X-Request-Id")!] = context.requestID
        let elapsed = start.duration(to: .now)
        let route = context.endpointPath ?? "unmatched"
        metrics.record(method: request.method.rawValue, route: route, status: Int(response.status.code), seconds: Double(elapsed.milliseconds) / 1000)
        context.logger.debug("Request", metadata: [
            "http.method": "\(request.method)", "http.route": "\(route)", "http.status": "\(response.status.code)",
            "http.duration_ms": "\(elapsed.milliseconds)",
        ])
        return response
    }
}

extension RequestMiddleware {
    /// The methods the API serves at `path` (HEAD wherever GET is), from `DocketAPI.routes`.
    static func allowed(_ path: String) -> [String] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        var methods = Set<String>()
        for (method, template) in DocketAPI.routes {
            let pattern = template.split(separator: "/", omittingEmptySubsequences: false)
            guard pattern.count == parts.count else { continue }
            if zip(pattern, parts).allSatisfy({ p, part in p.hasPrefix("{") ? !part.isEmpty : p == part }) {
                methods.insert(method)
                if method == "GET" { methods.insert("HEAD") }
            }
        }
        return methods.sorted()
    }
}

/// API keys (`DOCKET_API_KEY`, comma-separated): `Authorization: Bearer KEY` or `X-API-Key: KEY`,
/// compared in constant time over their whole length. `/health`, `/metrics` and the dashboard shell stay open.
/// A failed authentication costs the client (its address) a token of the rate limit, checked before the key is.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = DocketContext
    let keys: [[UInt8]]
    let limiter: RateLimiter

    func handle(_ request: Request, context: DocketContext, next: (Request, DocketContext) async throws -> Response) async throws -> Response {
        // The dashboard page is static; the data it fetches is guarded like any other call.
        if keys.isEmpty || ["/health", "/metrics", "/"].contains(request.uri.path) { return try await next(request, context) }
        let address = "addr:" + limiter.clientAddress(request, context)
        try limiter.check(address)  // a client that keeps failing is stopped before its keys are even compared
        // A credential that is present is the one judged: a bad Authorization header is never passed over for a
        // good X-API-Key (or the other way round).
        var presented: String?
        if let auth = request.headers[.authorization] {
            presented = auth.lowercased().hasPrefix("bearer ") ? String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces) : nil
        } else if let key = request.headers[.init("X-API-Key")!] {
            presented = key
        }
        guard let presented, let index = Self.match(Array(presented.utf8), keys) else {
            try limiter.take(address)
            var error = APIError(.unauthorized, code: "unauthorized", message: "missing or invalid API key (Authorization: Bearer KEY or X-API-Key)")
            error.headers[.wwwAuthenticate] = "Bearer"
            throw error
        }
        var context = context
        context.apiKeyName = "key\(index + 1)"
        return try await next(request, context)
    }

    /// The index of the matching key. Every key is compared over the longer of the two lengths, and a length
    /// difference counts in full (not folded into a byte), so neither timing nor a suffix reveals anything.
    static func match(_ presented: [UInt8], _ keys: [[UInt8]]) -> Int? {
        var found: Int?
        for (i, key) in keys.enumerated() {
            var diff = key.count ^ presented.count
            for j in 0..<max(key.count, presented.count) {
                diff |= Int((j < key.count ? key[j] : 0) ^ (j < presented.count ? presented[j] : 0))
            }
            if diff == 0 && found == nil { found = i }
        }
        return found
    }
}

/// `DOCKET_RATE_LIMIT` requests per minute per client (API key, else address): a token bucket; past it, 429 with
/// `Retry-After`. Failed authentications draw from the address's bucket (see `AuthMiddleware`).
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = DocketContext
    let limiter: RateLimiter

    func handle(_ request: Request, context: DocketContext, next: (Request, DocketContext) async throws -> Response) async throws -> Response {
        guard limiter.perMinute > 0, request.uri.path != "/health", request.uri.path != "/metrics" else { return try await next(request, context) }
        try limiter.take(context.apiKeyName.map { "key:" + $0 } ?? "addr:" + limiter.clientAddress(request, context))
        return try await next(request, context)
    }
}

/// Token buckets per client, at most `capacity` of them: past it, idle buckets (refilled to full, which is the
/// same as having none) are dropped first, then those with the most tokens, least recently used first.
public final class RateLimiter: Sendable {
    let perMinute: Int
    let capacity: Int
    /// Peers whose `X-Forwarded-For` is believed (`DOCKET_TRUSTED_PROXIES`): the client is then the last address
    /// in that header that is not itself a trusted proxy.
    let trustedProxies: Set<String>
    private let buckets = Mutex<[String: (tokens: Double, at: ContinuousClock.Instant)]>([:])

    public init(perMinute: Int, capacity: Int = 10_000, trustedProxies: Set<String> = []) {
        self.perMinute = perMinute
        self.capacity = max(1, capacity)
        self.trustedProxies = trustedProxies
    }

    /// Buckets held now.
    public var count: Int { buckets.withLock { $0.count } }

    func clientAddress(_ request: Request, _ context: DocketContext) -> String {
        let peer = context.remoteAddress?.ipAddress ?? "unknown"
        guard trustedProxies.contains(peer), let forwarded = request.headers[.init("X-Forwarded-For")!] else { return peer }
        let hops = forwarded.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return hops.last { !trustedProxies.contains($0) } ?? peer
    }

    /// Throws 429 if `client` has no token left (takes none).
    func check(_ client: String) throws {
        guard perMinute > 0 else { return }
        if let wait = buckets.withLock({ refill(&$0, client, now: .now).wait }) { throw Self.limited(perMinute, wait) }
    }

    /// Takes a token from `client`'s bucket, or throws 429 with the wait until the next one.
    public func take(_ client: String) throws {
        guard perMinute > 0 else { return }
        let wait: Double? = buckets.withLock { buckets in
            let now = ContinuousClock.now
            var (bucket, wait) = refill(&buckets, client, now: now)
            if wait == nil { bucket.tokens -= 1 }
            buckets[client] = bucket
            if buckets.count > capacity { evict(&buckets, now: now) }
            return wait
        }
        if let wait { throw Self.limited(perMinute, wait) }
    }

    private var rate: Double { Double(perMinute) / 60 }

    private func refill(_ buckets: inout [String: (tokens: Double, at: ContinuousClock.Instant)], _ client: String, now: ContinuousClock.Instant)
        -> (bucket: (tokens: Double, at: ContinuousClock.Instant), wait: Double?)
    {
        var bucket = buckets[client] ?? (Double(perMinute), now)
        let elapsed = Double(bucket.at.duration(to: now).milliseconds) / 1000
        bucket.tokens = min(Double(perMinute), bucket.tokens + elapsed * rate)
        bucket.at = now
        return (bucket, bucket.tokens >= 1 ? nil : (1 - bucket.tokens) / rate)
    }

    private func evict(_ buckets: inout [String: (tokens: Double, at: ContinuousClock.Instant)], now: ContinuousClock.Instant) {
        let full = Double(perMinute) / rate  // seconds for an empty bucket to refill
        buckets = buckets.filter { Double($0.value.at.duration(to: now).milliseconds) / 1000 < full }
        guard buckets.count > capacity else { return }
        // Still too many: keep the most limited clients (fewest tokens now), the most recently seen among equals, so a
        // flood of new addresses cannot evict a client that is being held back.
        let keep = buckets.map { ($0.key, $0.value, $0.value.tokens + Double($0.value.at.duration(to: now).milliseconds) / 1000 * rate) }
            .sorted { $0.2 != $1.2 ? $0.2 < $1.2 : $0.1.at > $1.1.at }
            .prefix(capacity * 9 / 10).map { ($0.0, $0.1) }
        buckets = Dictionary(uniqueKeysWithValues: keep)
    }

    private static func limited(_ perMinute: Int, _ wait: Double) -> APIError {
        var error = APIError(.tooManyRequests, code: "rate_limited", message: "more than \(perMinute) requests per minute")
        error.headers[.retryAfter] = "\(max(1, Int(wait.rounded(.up))))"
        return error
    }
}

/// Request counts and latency sums by method, route and status, for `/metrics`.
final class HTTPMetrics: Sendable {
    private struct Key: Hashable { let method: String, route: String, status: Int }
    private let table = Mutex<[Key: (count: Int, seconds: Double)]>([:])

    func record(method: String, route: String, status: Int, seconds: Double) {
        table.withLock { t in
            let k = Key(method: method, route: route, status: status)
            let v = t[k] ?? (0, 0)
            t[k] = (v.count + 1, v.seconds + seconds)
        }
    }

    func prometheus() -> String {
        var lines = [
            "# HELP docket_http_requests_total HTTP requests by method, route and status.", "# TYPE docket_http_requests_total counter",
        ]
        var sums = ["# HELP docket_http_request_seconds_sum Total time spent answering.", "# TYPE docket_http_request_seconds_sum counter"]
        for (k, v) in table.withLock({ $0 }).sorted(by: { ($0.key.route, $0.key.status) < ($1.key.route, $1.key.status) }) {
            let labels = "method=\"\(k.method)\",route=\"\(k.route)\",status=\"\(k.status)\""
            lines.append("docket_http_requests_total{\(labels)} \(v.count)")
            sums.append("docket_http_request_seconds_sum{\(labels)} \(v.seconds)")
        }
        return (lines + sums).joined(separator: "\n")
    }
}
