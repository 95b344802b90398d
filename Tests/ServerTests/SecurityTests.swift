import DocketQueue
import DocketServer
import DocketTestSupport
import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import Testing

/// SPEC §4's browser safety, key handling, limits and HTTP semantics, against a real Redis and journal.
@Suite("Security and HTTP semantics")
struct SecurityTests {
    @Test func aLoopbackServerAnswersOnlyLoopbackHostNames() async throws {
        try await withAPI(configure: { $0.allowedHosts = ["docket.internal"] }) { api in
            for host in ["localhost:8080", "127.0.0.1", "[::1]:9", "LOCALHOST", "docket.internal:8080"] {
                #expect(try await api.call(.get, "/stats", headers: hdr(["Host": host])).status == 200, "\(host)")
            }
            for host in ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example"] {
                let reply = try await api.call(.get, "/jobs", headers: hdr(["Host": host]))
                #expect(reply.status == 403 && reply.error.code == "forbidden_host" && reply.error.field == "Host", "\(host): \(reply.text)")
            }
        }
        // Listening beyond loopback (behind a proxy or on a LAN), any Host is answered: keys protect it.
        try await withAPI(configure: { $0.loopback = false }) { api in
            let reply = try await api.call(.get, "/stats", headers: hdr(["Host": "queue.example.com"]))
            #expect(reply.status == 200)
        }
    }

    @Test func anotherOriginCannotChangeAnything() async throws {
        try await withAPI(configure: { $0.allowedOrigins = ["https://admin.example.com"] }) { api in
            let evil = hdr(["Origin": "https://evil.example", "Host": "localhost:8080"])
            let refused = try await api.call(.post, "/jobs", json: #"{"type":"t"}"#, headers: evil)
            #expect(refused.status == 403 && refused.error.code == "forbidden_origin" && refused.error.field == "Origin")
            #expect(try await api.call(.post, "/queues/default/pause", headers: evil).status == 403)
            #expect(try await api.call(.post, "/admin/recover", headers: evil).status == 403)
            #expect(try await api.call(.post, "/jobs", json: #"{"type":"t"}"#, headers: hdr(["Origin": "null"])).status == 403)
            #expect(try await api.t.driver.queues().isEmpty, "nothing was enqueued or paused")
            // Reading is not changing (and a browser cannot read a cross-origin answer anyway).
            #expect(try await api.call(.get, "/stats", headers: evil).status == 200)
            // The server's own page, a listed origin, and clients that send no Origin (curl, SDKs, the CLI) may.
            #expect(try await api.call(.post, "/jobs", json: #"{"type":"t"}"#, headers: hdr(["Origin": "http://localhost:8080", "Host": "localhost:8080"])).status == 201)
            #expect(try await api.call(.post, "/jobs", json: #"{"type":"t"}"#, headers: hdr(["Origin": "https://admin.example.com"])).status == 201)
            #expect(try await api.call(.post, "/jobs", json: #"{"type":"t"}"#).status == 201)
        }
    }

    @Test func aBodyWithoutJSONContentTypeIsRefused() async throws {
        try await withAPI { api in
            // No Content-Type at all: what a browser's no-cors request with a string body looks like.
            let bare = try await api.client.execute(uri: "/jobs", method: .post, headers: [:], body: ByteBuffer(string: #"{"type":"t"}"#)) {
                Int($0.status.code)
            }
            #expect(bare == 415)
            for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
                let reply = try await api.call(.post, "/jobs", headers: hdr(["Content-Type": type]), raw: Array(#"{"type":"t"}"#.utf8))
                #expect(reply.status == 415 && reply.error.field == "Content-Type", "\(type): \(reply.text)")
            }
            #expect(try await api.t.driver.queues().isEmpty)
            // Bodiless actions need no Content-Type.
            #expect(try await api.call(.post, "/queues/default/pause").status == 200)
        }
    }

    @Test func keysAreComparedOverTheirWholeLength() async throws {
        try await withAPI(configure: { $0.apiKeys = ["s3cret-key", "second"] }) { api in
            #expect(try await api.call(.get, "/stats", headers: hdr(["Authorization": "Bearer s3cret-key"])).status == 200)
            #expect(try await api.call(.get, "/stats", headers: hdr(["X-API-Key": "second"])).status == 200)
            for wrong in ["s3cret-key" + String(repeating: "x", count: 256), "s3cret-ke",
                          "s3cret-kez", "", "second2", "S3CRET-KEY"] {
                let reply = try await api.call(.get, "/stats", headers: hdr(["X-API-Key": wrong]))
                #expect(reply.status == 401, "\(wrong.prefix(12))… (\(wrong.utf8.count) bytes)")
            }
            #expect(try await api.call(.head, "/health").status == 200, "health stays open")
        }
    }

    @Test func failedAuthenticationsCountAgainstTheRateLimit() async throws {
        try await withAPI(configure: { $0.apiKeys = ["good"]; $0.rateLimit = 5 }) { api in
            var statuses = [Int]()
            for _ in 0..<8 { statuses.append(try await api.call(.get, "/stats", headers: hdr(["X-API-Key": "guess"])).status) }
            #expect(statuses.prefix(5).allSatisfy { $0 == 401 } && statuses.suffix(3).allSatisfy { $0 == 429 }, "\(statuses)")
            // Once limited, even a right key from that client waits: guessing cannot go on between good calls.
            let limited = try await api.call(.get, "/stats", headers: hdr(["X-API-Key": "good"]))
            #expect(limited.status == 429 && limited.headers[.retryAfter] != nil)
        }
    }

    @Test func theBucketTableStaysBounded() throws {
        let limiter = RateLimiter(perMinute: 60, capacity: 100)
        for n in 0..<5_000 { try limiter.take("addr:10.0.\(n / 256).\(n % 256)") }
        #expect(limiter.count <= 100)
        // A client that just spent its tokens is among the most recent and keeps its (empty) bucket.
        let busy = RateLimiter(perMinute: 2, capacity: 10)
        try busy.take("addr:busy")
        try busy.take("addr:busy")
        for n in 0..<50 { try busy.take("addr:other-\(n)") }
        #expect(throws: (any Error).self) { try busy.take("addr:busy") }
    }

    @Test func wrongMethodsAre405WithAllowAndHeadMirrorsGet() async throws {
        try await withAPI { api in
            let put = try await api.call(.put, "/jobs")
            #expect(put.status == 405 && put.headers[.allow] == "GET, HEAD, POST" && put.error.code == "method_not_allowed", "\(put.text)")
            let patch = try await api.call(.patch, "/jobs/\(JobID.make())")
            #expect(patch.status == 405 && patch.headers[.allow] == "DELETE, GET, HEAD")
            #expect(try await api.call(.delete, "/stats").headers[.allow] == "GET, HEAD")
            #expect(try await api.call(.get, "/no/such/path").status == 404)
            let head = try await api.call(.head, "/health")
            #expect(head.status == 200 && head.text.isEmpty, "\(head.status) \(head.text)")
            #expect(try await api.call(.head, "/stats").status == 200)
            #expect(try await api.call(.head, "/jobs/\(JobID.make())").status == 404)
        }
    }

    /// Slow-loris: clients that open connections and trickle half a request never hold the server up for others.
    @Test func slowClientsDoNotHoldTheServerUp() async throws {
        try await withAPI(mode: .live) { api in
            let port = try #require(api.client.port)
            var channels = [any Channel]()
            defer { for channel in channels { channel.close(promise: nil) } }
            for n in 0..<32 {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
                // Headers never finished, or a body promised and never sent.
                let partial = n % 2 == 0 ? "POST /jobs HTTP/1.1\r\nHost: localhost\r\nX-Slow: a"
                    : "POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ty"
                try await channel.writeAndFlush(ByteBuffer(string: partial)).get()
                channels.append(channel)
            }
            for _ in 0..<10 { #expect(try await api.call(.get, "/health").status == 200) }
            #expect(try await api.call(.post, "/jobs", json: #"{"type":"t"}"#).status == 201)
        }
    }

    @Test func createdJobsCarryTheirLocation() async throws {
        try await withAPI { api in
            let created = try await api.call(.post, "/jobs", json: #"{"type":"t"}"#)
            let id = try #require(created.json["id"] as? String)
            #expect(created.status == 201 && created.headers[.location] == "/jobs/\(id)")
            #expect(try await api.call(.get, created.headers[.location] ?? "").status == 200)
        }
    }

    @Test func aFinishedJobKnownOnlyToTheJournalIs409NotMissing() async throws {
        try await withAPI { api in
            let id = try #require(try await api.call(.post, "/jobs", json: #"{"type":"t"}"#).json["id"] as? String)
            let lease = try #require(try await api.t.driver.claim(from: [.default], worker: WorkerID(rawValue: "w"), lease: .seconds(30), wait: .zero))
            try await api.t.driver.complete(lease, result: nil)
            try await eventually("the completion to be journaled") {
                try await api.journal.reader.job(JobID(rawValue: id)!)?.state == .completed
            }
            // Its Redis hash expires (here: deleted, as the completed TTL would).
            _ = try await api.t.driver.redis.send("DEL", RESPArgument(api.t.driver.keys.queue(.default).job(JobID(rawValue: id)!)))
            #expect(try await api.call(.get, "/jobs/\(id)").json["source"] as? String == "journal")
            let retry = try await api.call(.post, "/jobs/\(id)/retry")
            #expect(retry.status == 409 && retry.error.code == "conflict", "\(retry.text)")
            #expect(try await api.call(.delete, "/jobs/\(id)").status == 409)
            #expect(try await api.call(.post, "/jobs/\(JobID.make())/retry").status == 404)
        }
    }
}
