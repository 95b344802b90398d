import DocketTestSupport
import Foundation
import NIOCore
import Testing

@testable import DocketQueue

@Suite("RESP codec and connection", .timeLimit(.minutes(1)))
struct CodecTests {
    @Test func commandsEncodeByteExact() {
        var buffer = ByteBuffer()
        RESPEncoder.encode(RedisCommand("SET", ["key", RESPArgument(bytes: [0, 0xFF, 13, 10]), 42]), into: &buffer)
        let expected = "*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\n\u{0}\u{FF}\r\n\r\n$2\r\n42\r\n"
        #expect(Array(buffer.readableBytesView) == Array("*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\n".utf8) + [0, 0xFF, 13, 10] + Array("\r\n$2\r\n42\r\n".utf8))
        _ = expected
        var empty = ByteBuffer()
        RESPEncoder.encode(RedisCommand("GET", [RESPArgument("")]), into: &empty)
        #expect(String(buffer: empty) == "*2\r\n$3\r\nGET\r\n$0\r\n\r\n")
    }

    @Test func repliesSplitAcrossReadsParse() throws {
        let wire = Array("+OK\r\n:-12\r\n$5\r\nhe\r\no\r\n$-1\r\n*3\r\n$1\r\na\r\n*1\r\n:7\r\n*-1\r\n-ERR boom\r\n".utf8)
        let expected: [RESPValue] = [
            .simpleString("OK"), .integer(-12), .bulkString(Array("he\r\no".utf8)), .null,
            .array([.bulkString([97]), .array([.integer(7)]), .null]), .error("ERR boom"),
        ]
        // Every split point, one byte at a time and in two halves, yields the same replies.
        for split in [1, 2, 3, 7, wire.count / 2, wire.count] {
            let decoder = RESPDecoder()
            var values = [RESPValue]()
            var offset = 0
            while offset < wire.count {
                let end = min(wire.count, offset + split)
                try decoder.feed(Array(wire[offset..<end]))
                while let v = try decoder.nextReply() { values.append(v) }
                offset = end
            }
            #expect(values == expected, "split \(split)")
        }
    }

    @Test func malformedBytesAreAProtocolError() throws {
        let decoder = RESPDecoder()
        try decoder.feed(Array("?what\r\n".utf8))
        #expect(throws: RedisClientError.self) { try decoder.nextReply() }
    }

    @Test func errorRepliesSurfaceAsErrors() async throws {
        try await withTestQueue { t in
            await #expect(throws: RedisClientError.self) { try await t.redis.send("NOSUCHCOMMAND") }
            _ = try await t.redis.send("SET", "k-\(t.keys.prefix)", "v")
            do {
                _ = try await t.redis.send("INCR", RESPArgument("k-\(t.keys.prefix)"))
                Issue.record("INCR on a string should fail")
            } catch let error as RedisClientError {
                #expect(error.code == .serverError)
                #expect(error.message.contains("not an integer"))
            }
            // A pipeline returns error replies in place and keeps going.
            let replies = try await t.redis.pipeline([RedisCommand("PING"), RedisCommand("BOGUS"), RedisCommand("ECHO", ["x"])])
            #expect(replies[0] == .simpleString("PONG"))
            if case .error = replies[1] {} else { Issue.record("expected an error reply, got \(replies[1])") }
            #expect(replies[2].string == "x")
            _ = try await t.redis.send("DEL", "k-\(t.keys.prefix)")
        }
    }

    @Test func concurrentRequestsPipelineInOrder() async throws {
        try await withTestQueue { t in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<500 {
                    group.addTask {
                        let reply = try await t.redis.send("ECHO", RESPArgument("m\(i)"))
                        #expect(reply.string == "m\(i)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func droppedConnectionFailsInFlightAndClientReconnects() async throws {
        let server = try RedisServer.start()  // its own: this test kills every client connection
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            // A request in flight on a connection that the server then kills.
            let name = "victim-\(t.keys.prefix)"
            async let blocked: RESPValue = t.redis.withDedicatedConnection { connection in
                _ = try await connection.send(RedisCommand("CLIENT", ["SETNAME", RESPArgument(name)]))
                return try await connection.send(RedisCommand("BLPOP", [RESPArgument("never-\(t.keys.prefix)"), "0"]))
            }
            try await eventually("the blocked client to appear") {
                try await t.redis.send("CLIENT", "LIST").string?.contains("name=\(name)") == true
            }
            let clients = try await t.redis.send("CLIENT", "LIST").string ?? ""
            let id = clients.split(separator: "\n").first { $0.contains("name=\(name)") }!
                .split(separator: " ").first { $0.hasPrefix("id=") }!.dropFirst(3)
            _ = try await t.redis.send("CLIENT", "KILL", "ID", RESPArgument(String(id)))
            do {
                _ = try await blocked
                Issue.record("the in-flight request should fail")
            } catch let error as RedisClientError {
                #expect(error.code == .connectionClosed)
            }
            // Kill the pooled connections too; the next requests reconnect transparently.
            _ = try await t.redis.send("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no")
            try await eventually("the client to reconnect") { (try? await t.redis.send("PING"))?.string == "PONG" }
            #expect(await t.redis.ping())
        }
    }

    @Test func redisRestartFailsFastThenReconnects() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            #expect(await t.redis.ping())
            server.kill()
            // While Redis is down requests fail (they never hang), typed as connection errors.
            do {
                _ = try await t.redis.send("PING")
                _ = try await t.redis.send("PING")
                _ = try await t.redis.send("PING")
                Issue.record("PING should fail while Redis is down")
            } catch let error as RedisClientError {
                #expect(error.isConnectionError)
            }
            try server.restart()
            try await eventually("the client to reconnect after the restart") { await t.redis.ping() }
        }
    }

    @Test func connectsOverTCPWithPasswordAndDatabase() async throws {
        let server = try RedisServer.start(tcp: true)
        defer { server.remove() }
        try server.cli("CONFIG", "SET", "requirepass", "s3cret")
        let port = server.port!
        let url = try RedisURL("redis://:s3cret@127.0.0.1:\(port)/3")
        let client = RedisClient(url: url, logger: TestQueue.logger)
        defer { client.shutdown() }
        _ = try await client.send("SET", "where", "db3")
        #expect(try server.cli("-a", "s3cret", "--no-auth-warning", "-n", "3", "GET", "where").contains("db3"))
        let wrong = RedisClient(url: try RedisURL("redis://:nope@127.0.0.1:\(port)"), logger: TestQueue.logger)
        defer { wrong.shutdown() }
        await #expect(throws: RedisClientError.self) { try await wrong.send("PING") }
    }

    @Test func timestampsFormatAsRFC3339Milliseconds() throws {
        #expect(Timestamp.format(Date(millis: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(millis: 1_796_000_123_456)) == "2026-11-30T00:55:23.456Z")
        #expect(Timestamp.format(Date(millis: -1)) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.format(Date(millis: 253_402_300_799_999)) == "9999-12-31T23:59:59.999Z")
        for ms: Int64 in [1, 999, 1000, 1_764_460_800_007, 951_782_400_000] {
            #expect(Timestamp.parse(Timestamp.format(Date(millis: ms)))?.millis == ms)
        }
    }

    @Test func jobIDsAreUUIDv7InCreationOrder() throws {
        let at = Date(millis: 1_764_460_800_000)
        let ids = (0..<100).map { _ in JobID.make(at: at).rawValue }
        for id in ids {
            #expect(id.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/) != nil, "\(id)")
            // 48 bits of milliseconds first: the given time, or later (ids of one process never go back in time).
            let ms = Int64(id.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16) ?? 0
            #expect(ms >= at.millis && ms <= Date().millis + 1000, "\(id)")
        }
        #expect(ids == ids.sorted() && Set(ids).count == ids.count, "ids of one process sort in creation order")
    }

    @Test func urlsParse() throws {
        let a = try RedisURL("redis://:pw@example.com:6380/2")
        #expect(a.endpoint == .tcp(host: "example.com", port: 6380))
        #expect(a.password == "pw" && a.username == nil && a.database == 2)
        let b = try RedisURL("redis://user:p%40ss@[::1]")
        #expect(b.endpoint == .tcp(host: "::1", port: 6379))
        #expect(b.username == "user" && b.password == "p@ss")
        let c = try RedisURL("unix:///tmp/r.sock?db=4")
        #expect(c.endpoint == .unix(path: "/tmp/r.sock") && c.database == 4)
        #expect(c.description == "unix:///tmp/r.sock?db=4")
        #expect(!a.description.contains("pw"))
        for bad in ["http://x", "redis://", "redis://h:99999", "redis://h/x", "unix://relative", "redis://h:abc"] {
            #expect(throws: RedisClientError.self, "\(bad)") { try RedisURL(bad) }
        }
    }
}
