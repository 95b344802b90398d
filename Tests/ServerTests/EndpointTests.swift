import DocketJournal
import DocketQueue
import DocketServer
import DocketTestSupport
import Foundation
import Hummingbird
import Testing

@Suite("REST endpoints")
struct EndpointTests {
    @Test func enqueueStatusEventsAndHistory() async throws {
        try await withAPI { api in
            let created = try await api.call(.post, "/jobs", json: #"{"type":"mail.send","payload":{"to":"a@b.c"},"priority":"high","maxAttempts":5,"timeout":"10s","idempotencyKey":"k1"}"#,
                                             headers: hdr(["X-Request-Id": "req-abc"]))
            #expect(created.status == 201)
            #expect(created.headers[named: "X-Request-Id"] == "req-abc")
            let id = try #require(created.json["id"] as? String)
            #expect(created.json["state"] as? String == "pending" && created.json["priority"] as? String == "high")
            #expect((created.json["payload"] as? [String: String])?["to"] == "a@b.c")
            let replay = try await api.call(.post, "/enqueue", json: #"{"type":"mail.send","idempotencyKey":"k1"}"#)
            #expect(replay.status == 200 && replay.json["id"] as? String == id)
            #expect(replay.headers[named: "Idempotent-Replay"] == "true")
            let shown = try await api.call(.get, "/jobs/\(id)")
            #expect(shown.status == 200 && shown.json["source"] as? String == "redis" && shown.json["timeout"] as? String == "10s")
            #expect(try await api.call(.get, "/jobs/\(JobID.make())").status == 404)
            #expect(try await api.call(.get, "/jobs/..%2F..%2Fetc%2Fpasswd").status == 404)
            try await eventually("the enqueued event to be journaled") {
                let events = try await api.call(.get, "/jobs/\(id)/events")
                return (events.json["events"] as? [[String: Any]])?.first?["actor"] as? String == "req-abc"
            }
            let history = try await api.call(.get, "/jobs?type=mail.send&limit=10")
            #expect(history.status == 200 && (history.json["jobs"] as? [Any])?.count == 1)
            #expect(history.json["nextCursor"] is NSNull)
            #expect(try await api.call(.get, "/jobs/\(JobID.make())/events").status == 404)
        }
    }

    /// Payloads pass through byte for byte: numbers are never re-parsed, key order and spacing are kept, in Redis,
    /// in the journal and in every answer.
    @Test func payloadsPassThroughByteForByte() async throws {
        try await withAPI { api in
            let payload = #"{"big": 12345678901234567890, "f":1.50,"z":1,"a":[ 1 , 2e3 ],"s":"\u00e9\n"}"#
            let created = try await api.call(.post, "/jobs", json: #"{"type":"exact","payload":\#(payload)}"#)
            #expect(created.status == 201 && created.text.contains(#""payload":\#(payload),"#), "\(created.text)")
            let id = try #require(created.json["id"] as? String)
            #expect(try await api.t.driver.job(JobID(rawValue: id)!)?.payload == payload)
            #expect(try await api.call(.get, "/jobs/\(id)").text.contains(payload))
            let batch = try await api.call(.post, "/jobs/batch", json: #"{"jobs":[{"type":"exact","payload":[0.10, -0]},{"type":"exact","payload":"x"}]}"#)
            #expect(batch.status == 201 && batch.text.contains(#""payload":[0.10, -0],"#) && batch.text.contains(#""payload":"x","#), "\(batch.text)")
            try await eventually("the journal to hold the job") { try await api.journal.reader.job(JobID(rawValue: id)!)?.payload == payload }
        }
    }

    @Test func batchIsAllOrNothing() async throws {
        try await withAPI { api in
            let bad = try await api.call(.post, "/jobs/batch", json: #"{"jobs":[{"type":"a"},{"type":"b","maxAttempts":0},{"type":"c"}]}"#)
            #expect(bad.status == 400 && bad.error.field == "jobs[1].maxAttempts")
            #expect(try await api.t.driver.counts(.default).pending == 0, "nothing enqueued")
            let good = try await api.call(.post, "/jobs/batch", json: #"{"jobs":[{"type":"a"},{"type":"b","queue":"other"}]}"#)
            #expect(good.status == 201 && (good.json["jobs"] as? [Any])?.count == 2)
            let defaultCounts = try await api.t.driver.counts(.default)
            let otherCounts = try await api.t.driver.counts("other")
            #expect(defaultCounts.pending == 1 && otherCounts.pending == 1)
        }
    }

    @Test func cancelRetryAndDeadLetters() async throws {
        try await withAPI { api in
            let id = try #require(try await api.call(.post, "/jobs", json: #"{"type":"t","delay":"1h"}"#).json["id"] as? String)
            #expect(try await api.call(.delete, "/jobs/\(id)").json["state"] as? String == "cancelled")
            #expect(try await api.call(.delete, "/jobs/\(id)").status == 409)
            #expect(try await api.call(.delete, "/jobs/\(JobID.make())").status == 404)
            #expect(try await api.call(.post, "/jobs/\(id)/retry").json["state"] as? String == "pending")
            #expect(try await api.call(.post, "/jobs/\(id)/retry").status == 409)
            // Make two dead jobs.
            var dead = [String]()
            for _ in 0..<2 {
                let d = try #require(try await api.call(.post, "/jobs", json: #"{"type":"doomed","maxAttempts":1,"queue":"dq"}"#).json["id"] as? String)
                let lease = try #require(try await api.t.driver.claim(from: ["dq"], worker: WorkerID(rawValue: "w"), lease: .seconds(9), wait: .zero))
                _ = try await api.t.driver.fail(lease, error: "nope")
                dead.append(d)
            }
            let page1 = try await api.call(.get, "/dlq?limit=1")
            #expect(page1.status == 200 && (page1.json["jobs"] as? [[String: Any]])?.first?["id"] as? String == dead[1])
            let cursor = try #require(page1.json["nextCursor"] as? String)
            let page2 = try await api.call(.get, "/dlq?limit=1&cursor=\(cursor)")
            #expect((page2.json["jobs"] as? [[String: Any]])?.first?["id"] as? String == dead[0])
            #expect(try await api.call(.post, "/dlq/\(dead[0])/requeue").json["state"] as? String == "pending")
            #expect(try await api.call(.post, "/dlq/\(dead[0])/requeue").status == 404, "no longer dead")
            #expect(try await api.call(.delete, "/dlq/\(dead[1])").status == 200)
            #expect(try await api.call(.delete, "/dlq/\(dead[1])").status == 404)
            #expect(try await api.call(.get, "/jobs/\(dead[1])").json["source"] as? String == "journal", "the journal keeps its history")
            let none = try await api.call(.post, "/dlq/requeue", json: #"{"queue":"dq"}"#)
            #expect(none.json["requeued"] as? Int == 0 && none.json["remaining"] as? Int == 0)
        }
    }

    @Test func queuesStatsHealthMetricsAndOpenAPI() async throws {
        try await withAPI { api in
            _ = try await api.call(.post, "/jobs", json: #"{"type":"t","queue":"q1"}"#)
            let paused = try await api.call(.post, "/queues/q1/pause")
            #expect(paused.status == 200 && (paused.json["counts"] as? [String: Any])?["paused"] as? Bool == true)
            #expect(try await api.call(.post, "/queues/q1/resume").status == 200)
            #expect(try await api.call(.post, "/queues/bad%20name/pause").status == 400)
            let queues = try await api.call(.get, "/queues")
            #expect((queues.json["queues"] as? [[String: Any]])?.first?["name"] as? String == "q1")
            let stats = try await api.call(.get, "/stats")
            #expect(stats.json["pending"] as? Int == 1 && (stats.json["queues"] as? [String: Any])?["q1"] != nil)
            try await eventually("the event to be journaled") {
                let h = try await api.call(.get, "/stats/history?bucket=1m&queue=q1")
                return (h.json["buckets"] as? [[String: Any]])?.first?["enqueued"] as? Int == 1
            }
            let health = try await api.call(.get, "/health")
            #expect(health.status == 200 && health.json["status"] as? String == "ok" && health.json["redis"] as? String == "up")
            let metrics = try await api.call(.get, "/metrics")
            #expect(metrics.status == 200 && metrics.text.contains(#"docket_queue_jobs{queue="q1",state="pending"} 1"#))
            #expect(metrics.text.contains("docket_http_requests_total{"))
            try await eventually("job metrics from the ingested stream") {
                try await api.call(.get, "/metrics").text.contains(#"docket_job_events_total{event="enqueued",queue="q1",type="t"} 1"#)
            }
            // Every route the API serves is described, and every described route is served.
            let doc = try await api.call(.get, "/openapi.json")
            let paths = try #require(doc.json["paths"] as? [String: [String: Any]])
            for (method, path) in DocketAPI.routes {
                #expect(paths[path]?[method.lowercased()] != nil, "\(method) \(path) is documented")
                let concrete = path.replacingOccurrences(of: "{id}", with: JobID.make().rawValue).replacingOccurrences(of: "{queue}", with: "q9")
                let reply = try await api.call(HTTPRequest.Method(method)!, concrete)
                #expect(!(reply.status == 404 && reply.error.code == "not_found" && reply.text.contains("Not Found")), "\(method) \(path) is routed")
            }
            #expect(paths.values.reduce(0) { $0 + $1.count } == DocketAPI.routes.count)
            let page = try await api.call(.get, "/")
            #expect(page.status == 200 && page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("/stats") && page.text.contains("/dlq") && page.text.contains("/queues"))
        }
    }

    @Test func redisDownSpoolsWith202() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withAPI(server: server) { api in
            _ = try await api.call(.post, "/jobs", json: #"{"type":"t"}"#)
            server.kill()
            let spooled = try await api.call(.post, "/jobs", json: #"{"type":"t","payload":7}"#)
            #expect(spooled.status == 202 && spooled.json["spooled"] as? Bool == true)
            let health = try await api.call(.get, "/health")
            #expect(health.status == 503 && health.json["status"] as? String == "degraded" && health.json["redis"] as? String == "down")
            #expect(try await api.call(.get, "/jobs/\(spooled.json["id"] as? String ?? "")").json["source"] as? String == "journal")
            // A repeated key while Redis is down answers the first (spooled) job.
            let first = try await api.call(.post, "/jobs", json: #"{"type":"t","idempotencyKey":"down-1"}"#)
            let again = try await api.call(.post, "/jobs", json: #"{"type":"t","idempotencyKey":"down-1"}"#)
            #expect(first.status == 202 && again.status == 200 && again.headers[named: "Idempotent-Replay"] == "true")
            #expect(first.json["id"] as? String == again.json["id"] as? String)
            // What needs Redis answers 503 redis_unavailable with Retry-After, never 500; the journal still answers.
            for (method, path) in [(HTTPRequest.Method.get, "/stats"), (.get, "/queues"), (.get, "/dlq"), (.post, "/queues/default/pause"),
                                   (.delete, "/jobs/\(spooled.json["id"] as? String ?? "")"), (.post, "/dlq/requeue")] {
                let reply = try await api.call(method, path)
                #expect(reply.status == 503 && reply.error.code == "redis_unavailable" && reply.headers[.retryAfter] != nil, "\(method) \(path): \(reply.status) \(reply.text)")
            }
            #expect(try await api.call(.get, "/jobs").status == 200)
        }
    }

    @Test func adminRecoverRebuildsAFlushedRedisAndAsOfRewindsAJob() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withAPI(server: server) { api in
            let a = try await api.call(.post, "/jobs", json: #"{"type":"t","payload":{"n":1}}"#).json["id"] as? String ?? ""
            let b = try await api.call(.post, "/jobs", json: #"{"type":"t","payload":{"n":2}}"#).json["id"] as? String ?? ""
            let worker = WorkerID(rawValue: "w-admin")
            let lease = try #require(try await api.t.driver.claim(from: [.default], worker: worker, lease: .seconds(60), wait: .zero))
            #expect(lease.job.id.rawValue == a)
            let beforeCompletion = Date()
            try await Task.sleep(for: .milliseconds(5))  // the completion must fall after the as-of time (a millisecond clock)
            try await api.t.driver.complete(lease, result: nil)
            try await eventually("the completion to be journaled") { try await api.journal.reader.job(lease.job.id)?.state == .completed }
            _ = try await api.t.redis.send("FLUSHALL")
            let report = try await api.call(.post, "/admin/recover", json: #"{"dryRun":false}"#)
            #expect(report.status == 200 && report.json["restored"] as? Int == 1 && report.json["alreadyInRedis"] as? Int == 0, "\(report.text)")
            #expect(try await api.call(.get, "/jobs/\(b)").json["source"] as? String == "redis")
            #expect(try await api.call(.get, "/jobs/\(a)").json["source"] as? String == "journal", "a completed job never comes back")
            // Point in time: as of before a completed, it was active; it comes back to run again (pending).
            let asOf = Timestamp.format(beforeCompletion)
            let rewind = try await api.call(.post, "/admin/recover", json: #"{"asOf":"\#(asOf)"}"#)
            #expect(rewind.status == 200 && rewind.json["restored"] as? Int == 1, "\(rewind.text)")
            let job = try await api.call(.get, "/jobs/\(a)")
            #expect(job.json["source"] as? String == "redis" && job.json["state"] as? String == "pending", "\(job.text)")
        }
    }

    @Test func overARealSocketTheRateLimitIsPerAddress() async throws {
        try await withAPI(mode: .live, configure: { $0.rateLimit = 3 }) { api in
            var statuses = [Int]()
            for _ in 0..<5 { statuses.append(try await api.call(.get, "/stats").status) }
            #expect(statuses == [200, 200, 200, 429, 429], "one client address, three requests a minute")
            #expect(try await api.call(.get, "/health").status == 200, "health is never limited")
        }
    }
}
