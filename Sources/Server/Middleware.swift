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
        } catch let error as HTTPError {
            let code = error.status == .contentTooLarge ? "body_too_large" : error.status == .notFound ? "not_found" : "http_error"
            response = try APIError(error.status, code: code, message: error.body ?? error.status.reasonPhrase).response(from: request, context: context)
        } catch {
            context.logger.error("Request failed", metadata: ["error": "\(error)"])
            response = try APIError(.internalServerError, code: "internal", message: "internal error").response(from: request, context: context)
        }
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

/// API keys (`DOCKET_API_KEY`, comma-separated): `Authorization: Bearer KEY` or `X-API-Key: KEY`,
/// compared in constant time. `/health` and `/metrics` stay open.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = DocketContext
    let keys: [[UInt8]]

    func handle(_ request: Request, context: DocketContext, next: (Request, DocketContext) async throws -> Response) async throws -> Response {
        // The dashboard page is static; the data it fetches is guarded like any other call.
        if keys.isEmpty || ["/health", "/metrics", "/"].contains(request.uri.path) { return try await next(request, context) }
        var presented: String?
        if let auth = request.headers[.authorization], auth.lowercased().hasPrefix("bearer ") {
            presented = String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        } else if let key = request.headers[.init("X-API-Key")!] {
            presented = key
        }
        guard let presented, let index = match(Array(presented.utf8)) else {
            var error = APIError(.unauthorized, code: "unauthorized", message: "missing or invalid API key (Authorization: Bearer KEY or X-API-Key)")
            error.headers[.wwwAuthenticate] = "Bearer"
            throw error
        }
        var context = context
        context.apiKeyName = "key\(index + 1)"
        return try await next(request, context)
    }

    /// The index of the matching key; every key is compared in full so timing reveals nothing.
    private func match(_ presented: [UInt8]) -> Int? {
        var found: Int?
        for (i, key) in keys.enumerated() {
            var diff = UInt8(truncatingIfNeeded: key.count ^ presented.count)
            for j in 0..<key.count { diff |= key[j] ^ (j < presented.count ? presented[j] : 0) }
            if diff == 0 && found == nil { found = i }
        }
        return found
    }
}

/// `DOCKET_RATE_LIMIT` requests per minute per client (API key, else remote address): a token bucket;
/// past it, 429 with `Retry-After`.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = DocketContext
    let perMinute: Int
    let state = RateLimitState()

    func handle(_ request: Request, context: DocketContext, next: (Request, DocketContext) async throws -> Response) async throws -> Response {
        guard perMinute > 0, request.uri.path != "/health", request.uri.path != "/metrics" else { return try await next(request, context) }
        let client = context.apiKeyName ?? context.remoteAddress.map { "\($0.ipAddress ?? "?")" } ?? "unknown"
        let now = ContinuousClock.now
        let rate = Double(perMinute) / 60
        let wait: Double? = state.buckets.withLock { buckets in
            if buckets.count > 100_000 { buckets.removeAll() }  // bounded memory under address churn
            var bucket = buckets[client] ?? (Double(perMinute), now)
            let elapsed = Double(bucket.at.duration(to: now).milliseconds) / 1000
            bucket.tokens = min(Double(perMinute), bucket.tokens + elapsed * rate)
            bucket.at = now
            defer { buckets[client] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return (1 - bucket.tokens) / rate
        }
        if let wait {
            var error = APIError(.tooManyRequests, code: "rate_limited", message: "more than \(perMinute) requests per minute")
            error.headers[.retryAfter] = "\(max(1, Int(wait.rounded(.up))))"
            throw error
        }
        return try await next(request, context)
    }
}

final class RateLimitState: Sendable {
    let buckets = Mutex<[String: (tokens: Double, at: ContinuousClock.Instant)]>([:])
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
