import DocketQueue
import DocketTestSupport
import Foundation
import Logging
import Testing

/// `redis+sentinel://` against real servers: a master, its replica and a Sentinel, then a forced failover.
@Suite("Redis Sentinel", .timeLimit(.minutes(2)))
struct SentinelTests {
    @Test func theClientFindsTheMasterThroughSentinelAndFollowsAFailover() async throws {
        let setup = try RedisSentinel(sentinels: 1)
        defer { setup.remove() }
        let master = setup.master, replica = setup.replica
        let replicaPort = try #require(replica.port), sentinelPort = setup.sentinelPorts[0]
        func ask(_ args: RESPArgument...) async throws -> RESPValue { try await setup.ask(args[0], args[1]) }
        try await setup.waitReady()

        let url = try RedisURL("redis+sentinel://127.0.0.1:\(sentinelPort)/docket-main")
        #expect(url.description == "redis+sentinel://127.0.0.1:\(sentinelPort)/docket-main/0")
        let redis = RedisClient(url: url, logger: TestQueue.logger)
        defer { redis.shutdown() }
        let follower = Task { try await redis.run() }  // as in docket serve and docket work: follows Sentinel's answer
        defer { follower.cancel() }
        var config = RedisQueueDriver.Configuration()
        config.keys = RedisKeys(prefix: "sentinel-\(UUID().uuidString.prefix(6).lowercased())")
        let driver = RedisQueueDriver(redis: redis, configuration: config, logger: TestQueue.logger)
        let before = try await driver.enqueue(Job(type: "t"), actor: nil).job!
        #expect(try master.cli("EXISTS", config.keys.queue(.default).job(before.id).description).contains("1"), "written to the master")
        let firstRunID = redis.serverRunID

        // Forced failover: the replica becomes master, the old master its replica.
        try await eventually(timeout: .seconds(30), "the replica to have the job") {
            (try? replica.cli("EXISTS", config.keys.queue(.default).job(before.id).description))?.contains("1") == true
        }
        _ = try await ask("failover", "docket-main")
        try await eventually(timeout: .seconds(60), "Sentinel to name the replica master") {
            (try? await ask("get-master-addr-by-name", "docket-main"))?.array?.last?.string == "\(replicaPort)"
        }
        // Writes go to the new master once the client has reconnected (a READONLY answer from the old one drops it).
        var after: Job?
        try await eventually(timeout: .seconds(60), "an enqueue to land on the new master") {
            after = try? await driver.enqueue(Job(type: "t"), actor: nil).job
            guard let id = after?.id else { return false }
            return (try? replica.cli("EXISTS", config.keys.queue(.default).job(id).description))?.contains("1") == true
        }
        let id = try #require(after?.id)
        #expect(try replica.cli("EXISTS", config.keys.queue(.default).job(id).description).contains("1"), "written to the new master")
        #expect(try await driver.job(before.id)?.id == before.id, "the job from before the failover is still there")
        #expect(redis.serverRunID != firstRunID, "the client now talks to another Redis process")
    }

    @Test func sentinelURLsParse() throws {
        let url = try RedisURL("redis+sentinel://:pw@10.0.0.1:26379,[::1]:26380,s3:26381/main/2")
        #expect(url.endpoint == .sentinel(nodes: [.init(host: "10.0.0.1", port: 26379), .init(host: "::1", port: 26380), .init(host: "s3", port: 26381)],
                                          master: "main"))
        #expect(url.password == "pw" && url.database == 2)
        #expect(url.description == "redis+sentinel://:***@10.0.0.1:26379,[::1]:26380,s3:26381/main/2")
        for bad in ["redis+sentinel://10.0.0.1:26379", "redis+sentinel://10.0.0.1/main", "redis+sentinel:///main", "redis+sentinel://h:0/main",
                    "redis+sentinel://h:26379/main/x"] {
            #expect(throws: RedisClientError.self, "\(bad)") { try RedisURL(bad) }
        }
    }
}
