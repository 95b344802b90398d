import DocketQueue
import DocketServer
import DocketTestSupport
import Foundation
import Hummingbird
import Testing

/// Malformed and hostile requests: each gets a 4xx naming the field, changes nothing, and the server stays healthy.
@Suite("Bad input", .timeLimit(.minutes(1)))
struct BadInputTests {
    struct Case: Sendable, CustomStringConvertible {
        let method: HTTPRequest.Method
        let uri: String
        let body: [UInt8]?
        let contentType: String?
        let status: Int
        let field: String?
        var description: String { "\(method) \(uri) \(body.map { String(decoding: $0.prefix(60), as: UTF8.self) } ?? "")" }

        init(_ body: String, _ field: String) {
            self.init(method: .post, uri: "/jobs", body: body, status: 400, field: field)
        }
        init(_ body: String, _ status: Int, _ field: String, contentType: String = "application/json") {
            self.init(method: .post, uri: "/jobs", body: body, status: status, field: field, contentType: contentType)
        }
        init(_ method: HTTPRequest.Method, _ uri: String, _ body: String?, _ field: String) {
            self.init(method: method, uri: uri, body: body, status: 400, field: field)
        }
        init(method: HTTPRequest.Method, uri: String, body: String?, status: Int, field: String?, contentType: String? = "application/json") {
            self.method = method
            self.uri = uri
            self.body = body.map { Array($0.utf8) }
            self.contentType = contentType
            self.status = status
            self.field = field
        }
        init(bytes: [UInt8], _ status: Int, _ field: String?) {
            method = .post
            uri = "/jobs"
            body = bytes
            contentType = "application/json"
            self.status = status
            self.field = field
        }
    }

    static let cases: [Case] = [
        Case(#"{}"#, "type"),
        Case(#"{"type":""}"#, "type"),
        Case(#"{"type":5}"#, "type"),
        Case(#"{"type":null}"#, "type"),
        Case(#"{"type":"has space"}"#, "type"),
        Case(#"{"type":"tab\there"}"#, "type"),
        Case(#"{"type":"nul\u0000"}"#, "type"),
        Case(#"{"type":"\#(String(repeating: "a", count: 129))"}"#, "type"),
        Case(#"{"type":"../../etc/passwd"}"#, "type"),
        Case(#"{"type":"a","queue":""}"#, "queue"),
        Case(#"{"type":"a","queue":"{tag}"}"#, "queue"),
        Case(#"{"type":"a","queue":["x"]}"#, "queue"),
        Case(#"{"type":"a","queue":"\#(String(repeating: "q", count: 65))"}"#, "queue"),
        Case(#"{"type":"a","priority":"urgent"}"#, "priority"),
        Case(#"{"type":"a","priority":1}"#, "priority"),
        Case(#"{"type":"a","maxAttempts":0}"#, "maxAttempts"),
        Case(#"{"type":"a","maxAttempts":101}"#, "maxAttempts"),
        Case(#"{"type":"a","maxAttempts":2.5}"#, "maxAttempts"),
        Case(#"{"type":"a","maxAttempts":"3"}"#, "maxAttempts"),
        Case(#"{"type":"a","maxAttempts":true}"#, "maxAttempts"),
        Case(#"{"type":"a","maxAttempts":1e300}"#, "maxAttempts"),
        Case(#"{"type":"a","maxAttempts":99999999999999999999999}"#, "maxAttempts"),
        Case(#"{"type":"a","timeout":"forever"}"#, "timeout"),
        Case(#"{"type":"a","timeout":"25h"}"#, "timeout"),
        Case(#"{"type":"a","timeout":-5}"#, "timeout"),
        Case(#"{"type":"a","timeout":0}"#, "timeout"),
        Case(#"{"type":"a","timeout":{"s":1}}"#, "timeout"),
        Case(#"{"type":"a","delay":"-1s"}"#, "delay"),
        Case(#"{"type":"a","delay":"1s","runAt":"2030-01-01T00:00:00Z"}"#, "runAt"),
        Case(#"{"type":"a","runAt":"tomorrow"}"#, "runAt"),
        Case(#"{"type":"a","runAt":"2026-13-01T00:00:00Z"}"#, "runAt"),
        Case(#"{"type":"a","backoff":"fast"}"#, "backoff"),
        Case(#"{"type":"a","backoff":{"base":"1s","min":"1s"}}"#, "backoff.min"),
        Case(#"{"type":"a","backoff":{"base":"10s","max":"1s"}}"#, "backoff.base"),
        Case(#"{"type":"a","backoff":{"base":"0ms"}}"#, "backoff.base"),
        Case(#"{"type":"a","idempotencyKey":""}"#, "idempotencyKey"),
        Case(#"{"type":"a","idempotencyKey":"\#(String(repeating: "k", count: 257))"}"#, "idempotencyKey"),
        Case(#"{"type":"a","idempotencyKey":"line\nbreak"}"#, "idempotencyKey"),
        Case(#"{"type":"a","extra":1}"#, "extra"),
        Case(#"{"type":"a","Type":"b"}"#, "Type"),
        Case(#"["type","a"]"#, "body"),
        Case(#""just a string""#, "body"),
        Case(#"{"type":"a""#, "body"),
        Case(#"{"type":"a",}"#, "body"),
        Case("", "body"),
        Case("null", "body"),
        Case(String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000), "body"),
        Case(#"{"type":"a","payload":\#(String(repeating: "{\"a\":", count: 100))1\#(String(repeating: "}", count: 100))}"#, "body"),
        Case(bytes: Array(#"{"type":"a","payload":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8), 400, "body"),
        Case(#"{"type":"a","type":"b"}"#, "type"),
        Case(#"{"type":"a","payload":{"k":1,"k":2}}"#, "payload.k"),
        Case(.post, "/jobs/batch", #"{"jobs":[{"type":"a"},{"type":"b","queue":"x","queue":"y"}]}"#, "jobs[1].queue"),
        Case(#"{"type":"a","payload":01}"#, "payload"),
        Case(#"{"type":"a","payload":1.}"#, "payload"),
        Case(#"{"type":"a","payload":-}"#, "payload"),
        Case(#"{"type":"a","payload":"\ud800"}"#, "payload"),
        Case(#"{"type":"a","payload":"\x"}"#, "payload"),
        Case(#"{"type":"a","payload":"tab\#there"}"#, "payload"),
        Case(#"{"type":"a","payload":tru}"#, "payload"),
        Case(#"{"type":"a","payload":[1,]}"#, "payload[1]"),
        Case(#"{"type":"a"} {}"#, "body"),
        Case(#"{'type':'a'}"#, "body"),
        Case(#"{"type":"a"}"#, 415, "Content-Type", contentType: "text/plain"),
        Case(#"{"type":"a","payload":"\#(String(repeating: "x", count: 600_000))"}"#, 413, "payload"),
        Case(.post, "/jobs/batch", #"{"jobs":[]}"#, "jobs"),
        Case(.post, "/jobs/batch", #"{"jobs":{}}"#, "jobs"),
        Case(.post, "/jobs/batch", #"{"jobs":[{"type":"a"}],"more":1}"#, "more"),
        Case(.post, "/jobs/batch", #"{"jobs":[\#(Array(repeating: #"{"type":"a"}"#, count: 1001).joined(separator: ","))]}"#, "jobs"),
        Case(.post, "/jobs/batch", #"{"jobs":[{"type":"a"},"x"]}"#, "jobs[1]"),
        Case(.get, "/jobs?queue=x%27%20OR%201%3D1--", nil, "queue"),
        Case(.get, "/jobs?type=%3Cscript%3Ealert(1)%3C%2Fscript%3E", nil, "type"),
        Case(.get, "/jobs?cursor=1%3Ax%27%3BDROP%20TABLE%20job--", nil, "cursor"),
        Case(.get, "/jobs?cursor=-5%3Aabc", nil, "cursor"),
        Case(.get, "/dlq?queue=%7Btag%7D", nil, "queue"),
        Case(.post, "/queues/%2e%2e%2fadmin/pause", nil, "queue"),
        Case(.get, "/jobs?limit=1e3", nil, "limit"),
        Case(.get, "/jobs?since=2026-11-30T00:00:00Z%00", nil, "since"),
        Case(.get, "/jobs?state=happy", nil, "state"),
        Case(.get, "/jobs?limit=0", nil, "limit"),
        Case(.get, "/jobs?limit=1001", nil, "limit"),
        Case(.get, "/jobs?limit=abc", nil, "limit"),
        Case(.get, "/jobs?since=yesterday", nil, "since"),
        Case(.get, "/jobs?cursor=garbage", nil, "cursor"),
        Case(.get, "/jobs?sort=asc", nil, "sort"),
        Case(.get, "/dlq?cursor=1:2:3", nil, "cursor"),
        Case(.get, "/stats/history?bucket=1w", nil, "bucket"),
        Case(.get, "/stats/history?bucket=1m&since=2000-01-01T00:00:00Z", nil, "bucket"),
        Case(.post, "/dlq/requeue", #"{"queue":5}"#, "queue"),
        Case(.post, "/dlq/requeue", #"{"everything":true}"#, "everything"),
        Case(.post, "/dlq/requeue", #"{"limit":0}"#, "limit"),
        Case(.post, "/dlq/requeue", #"{"limit":"all"}"#, "limit"),
        Case(.post, "/dlq/requeue", #"{"limit":10001}"#, "limit"),
        Case(.post, "/admin/recover", #"{"dryRun":"yes"}"#, "dryRun"),
        Case(.post, "/admin/recover", #"{"asOf":"last tuesday"}"#, "asOf"),
        Case(#"{"type":"t","unique":"k"}"#, "unique"),
        Case(#"{"type":"t","unique":{}}"#, "unique.key"),
        Case(#"{"type":"t","unique":{"key":"k","scope":"all"}}"#, "unique.scope"),
        // Schedules (SPEC §8).
        Case(.post, "/schedules", #"{"cron":"* * * * *","job":{"type":"t"}}"#, "name"),
        Case(.post, "/schedules", #"{"name":"a b","cron":"* * * * *","job":{"type":"t"}}"#, "name"),
        Case(.post, "/schedules", #"{"name":"n","job":{"type":"t"}}"#, "cron"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","every":"5m","job":{"type":"t"}}"#, "every"),
        Case(.post, "/schedules", #"{"name":"n","cron":"61 * * * *","job":{"type":"t"}}"#, "cron"),
        Case(.post, "/schedules", #"{"name":"n","cron":"0 0 30 2 *","job":{"type":"t"}}"#, "cron"),
        Case(.post, "/schedules", #"{"name":"n","every":"0s","job":{"type":"t"}}"#, "every"),
        Case(.post, "/schedules", #"{"name":"n","every":"soon","job":{"type":"t"}}"#, "every"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","timezone":"Mars/Olympus","job":{"type":"t"}}"#, "timezone"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *"}"#, "job"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","job":{"type":"t","idempotencyKey":"k"}}"#, "job.idempotencyKey"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","job":{"type":"t","delay":"5s"}}"#, "job.delay"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","job":{"type":"bad type"}}"#, "job.type"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","job":{"type":"t"},"catchUp":"some"}"#, "catchUp"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","job":{"type":"t"},"catchUpLimit":0}"#, "catchUpLimit"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","job":{"type":"t"},"paused":"no"}"#, "paused"),
        Case(.post, "/schedules", #"{"name":"n","cron":"* * * * *","job":{"type":"t"},"owner":"me"}"#, "owner"),
        Case(.patch, "/schedules/n", #"{"paused":1}"#, "paused"),
        Case(.patch, "/schedules/n", #"{"cron":"* * * * *"}"#, "cron"),
        Case(.get, "/schedules/n/events?limit=0", nil, "limit"),
        Case(.post, "/limits", #"{"concurrency":2}"#, "name"),
        Case(.post, "/limits", #"{"name":"l"}"#, "rate"),
        Case(.post, "/limits", #"{"name":"l","concurrency":0}"#, "concurrency"),
        Case(.post, "/limits", #"{"name":"l","rate":{"limit":10}}"#, "rate.per"),
        Case(.post, "/limits", #"{"name":"l","rate":{"limit":0,"per":"1s"}}"#, "rate.limit"),
        Case(.post, "/limits", #"{"name":"l","rate":{"limit":5,"per":"2d"}}"#, "rate.per"),
        Case(.post, "/limits", #"{"name":"l","concurrency":1,"key":"customer"}"#, "key"),
        Case(.post, "/limits", #"{"name":"l","concurrency":1,"queue":"a b"}"#, "queue"),
        Case(.post, "/limits", #"{"name":"l","concurrency":1,"scope":"all"}"#, "scope"),
    ]

    @Test func everyBadRequestIsRejectedAndChangesNothing() async throws {
        #expect(Self.cases.count >= 40)
        try await withAPI { api in
            let before = try await api.call(.get, "/stats").text
            let journaled = try await api.journal.reader.size()
            for c in Self.cases {
                var headers = HTTPFields()
                if let type = c.contentType, c.body != nil { headers[.contentType] = type }
                let reply = try await api.call(c.method, c.uri, headers: headers, raw: c.body)
                #expect(reply.status == c.status, "\(c): \(reply.status) \(reply.text.prefix(200))")
                if let field = c.field { #expect(reply.error.field == field, "\(c): \(reply.text.prefix(200))") }
                #expect(!reply.error.code.isEmpty, "\(c) renders the error shape")
            }
            #expect(try await api.call(.get, "/stats").text == before, "nothing was enqueued")
            // Nothing reached Redis (no queue, no event to ingest) nor the journal, which enqueue writes first.
            #expect(try await api.t.driver.queues().isEmpty, "no queue was registered")
            #expect(try await api.t.driver.events(of: .default).isEmpty, "no transition was streamed")
            let after = try await api.journal.reader.size()
            #expect(after.jobs == journaled.jobs && after.events == journaled.events, "journal: \(journaled) then \(after)")
            #expect(after.jobs == 0 && after.events == 0, "the journal holds no job and no event")
            #expect(try await api.call(.get, "/health").status == 200)
            #expect(try await api.t.driver.schedules().isEmpty, "no schedule was created")
            #expect(try await api.t.driver.limits().isEmpty, "no limit was created")
        }
    }

    @Test func bodiesOverTheLimitAre413() async throws {
        try await withAPI(configure: { $0.maxBody = 4096 }) { api in
            let reply = try await api.call(.post, "/jobs", json: #"{"type":"a","payload":"\#(String(repeating: "x", count: 5000))"}"#)
            #expect(reply.status == 413 && reply.error.code == "body_too_large", "\(reply.status) \(reply.text)")
        }
    }

    @Test func apiKeysGuardEverythingButHealthAndMetrics() async throws {
        try await withAPI(configure: { $0.apiKeys = ["alpha", "beta"] }) { api in
            #expect(try await api.call(.get, "/stats").status == 401)
            #expect(try await api.call(.get, "/stats", headers: [.authorization: "Bearer wrong"]).status == 401)
            #expect(try await api.call(.get, "/stats", headers: [.authorization: "Bearer alph"]).status == 401)
            #expect(try await api.call(.get, "/stats", headers: [.authorization: "Bearer beta"]).status == 200)
            #expect(try await api.call(.get, "/stats", headers: hdr(["X-API-Key": "alpha"])).status == 200)
            #expect(try await api.call(.get, "/health").status == 200)
            #expect(try await api.call(.get, "/metrics").status == 200)
            let created = try await api.call(.post, "/jobs", json: #"{"type":"a"}"#, headers: hdr(["Authorization": "Bearer alpha", "X-Request-Id": "r-1"]))
            #expect(created.status == 201)
            let id = created.json["id"] as? String ?? ""
            try await eventually("the actor to be journaled") {
                let events = try await api.call(.get, "/jobs/\(id)/events", headers: [.authorization: "Bearer alpha"])
                return (events.json["events"] as? [[String: Any]])?.first?["actor"] as? String == "r-1 (key1)"
            }
        }
    }

    @Test func rateLimitAnswers429WithRetryAfter() async throws {
        try await withAPI(configure: { $0.rateLimit = 5 }) { api in
            var statuses = [Int]()
            var retryAfter: String?
            for _ in 0..<8 {
                let reply = try await api.call(.get, "/stats")
                statuses.append(reply.status)
                if reply.status == 429 { retryAfter = reply.headers[.retryAfter] }
            }
            #expect(statuses.prefix(5).allSatisfy { $0 == 200 })
            #expect(statuses.suffix(3).allSatisfy { $0 == 429 })
            #expect(Int(retryAfter ?? "") ?? 0 >= 1)
            #expect(try await api.call(.get, "/health").status == 200, "health is never limited")
        }
    }

    @Test func requestIDsAreEchoedOrGenerated() async throws {
        try await withAPI { api in
            let given = try await api.call(.get, "/health", headers: hdr(["X-Request-Id": "abc-123"]))
            #expect(given.headers[named: "X-Request-Id"] == "abc-123")
            let generated = try await api.call(.get, "/health")
            #expect(generated.headers[named: "X-Request-Id"]?.hasPrefix("req-") == true)
            let hostile = try await api.call(.get, "/health", headers: hdr(["X-Request-Id": String(repeating: "x", count: 500)]))
            #expect(hostile.headers[named: "X-Request-Id"]?.hasPrefix("req-") == true)
        }
    }
}
