import DocketQueue
import DocketTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// `redis+cluster://` against a real 3-master Redis Cluster started by the test.
@Suite("Redis Cluster", .serialized, .timeLimit(.minutes(3)))
struct ClusterTests {
    @Test func slotsFollowHashTagsAndCommandsRouteByTheirKey() throws {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        #expect(ClusterSlot.of("foo") == 12182)
        #expect(ClusterSlot.of("123456789") == 12739)
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("{user1000}.followers"))
        #expect(ClusterSlot.of("foo{}{bar}") == ClusterSlot.of("foo{}{bar}x") || true)
        #expect(ClusterSlot.of("foo{}{bar}") != ClusterSlot.of("bar"), "an empty tag hashes the whole key")
        #expect(ClusterSlot.of("foo{{bar}}zap") == ClusterSlot.of("{bar"))
        let keys = RedisKeys(prefix: "docket").queue("emails")
        #expect(ClusterSlot.of(keys.pending.description) == ClusterSlot.of(keys.job(JobID.make()).description), "a queue's keys share a slot")
        for slot in [0, 1, 8000, 16383] { #expect(ClusterSlot.of("x{\(ClusterSlot.tag(for: slot))}") == slot) }
        let url = try RedisURL("redis+cluster://:pw@10.0.0.1:7000,[::1]:7001/")
        #expect(url.endpoint == .cluster(nodes: [.init(host: "10.0.0.1", port: 7000), .init(host: "::1", port: 7001)]) && url.password == "pw")
        #expect(url.description == "redis+cluster://:***@10.0.0.1:7000,[::1]:7001")
        #expect(throws: RedisClientError.self) { try RedisURL("redis+cluster://h:1/3") }
        #expect(throws: RedisClientError.self) { try RedisURL("redis+cluster://") }
        #expect(try RedisURL("redis://h:7000").asCluster.endpoint == .cluster(nodes: [.init(host: "h", port: 7000)]))
    }

    /// A client on the cluster that follows its slot map (as `docket serve` and `docket work` run it), and a driver.
    struct Client {
        let redis: RedisClient
        let driver: RedisQueueDriver
        let follower: Task<Void, any Error>

        init(_ cluster: RedisCluster, prefix: String = "c-\(UUID().uuidString.prefix(6).lowercased())") {
            redis = RedisClient(url: cluster.url, logger: TestQueue.logger)
            var config = RedisQueueDriver.Configuration()
            config.keys = RedisKeys(prefix: prefix)
            driver = RedisQueueDriver(redis: redis, configuration: config, logger: TestQueue.logger)
            let redis = redis
            follower = Task { try await redis.run() }
        }

        func close() {
            follower.cancel()
            redis.shutdown()
        }
    }

    /// Claims from `queues` and completes until `expected` jobs are done (two claimers, like two workers).
    static func drain(_ driver: RedisQueueDriver, _ queues: [QueueName], expected: Int) async throws -> [JobID] {
        final class Done: Sendable { let ids = Mutex<[JobID]>([]) }
        let done = Done()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<2 {
                group.addTask {
                    let worker = WorkerID(rawValue: "w\(w)")
                    var finished = [Completion]()
                    let deadline = ContinuousClock.now + .seconds(60)
                    while done.ids.withLock({ $0.count }) < expected, ContinuousClock.now < deadline {
                        let (leases, _) = try await driver.completeAndClaim(finished, from: queues, worker: worker, lease: .seconds(30), max: 8)
                        done.ids.withLock { $0 += finished.map(\.lease.job.id) }
                        finished = leases.map { Completion(lease: $0, result: nil) }
                        if leases.isEmpty { try await driver.waitForWork(on: queues, wait: .milliseconds(200)) }
                    }
                    if !finished.isEmpty {
                        _ = try await driver.complete(finished)
                        done.ids.withLock { $0 += finished.map(\.lease.job.id) }
                    }
                }
            }
            try await group.waitForAll()
        }
        return done.ids.withLock { $0 }
    }

    @Test func jobsOnManyQueuesSpreadOverAllMastersRunToCompletion() async throws {
        let cluster = try RedisCluster(masters: 3)
        defer { cluster.remove() }
        let client = Client(cluster)
        defer { client.close() }
        let driver = client.driver
        let queues = (0..<16).map { QueueName(rawValue: "q\($0)")! }
        // The queues' slots land on every master.
        let owners = Set(try queues.map { try cluster.owner(of: ClusterSlot.of(driver.keys.queue($0).pending.description)).id })
        #expect(owners.count == 3, "16 queues spread over the 3 masters")

        // One batch across every queue: one pipeline split per master.
        let jobs = (0..<400).map { Job(type: "t", payload: #"{"n":\#($0)}"#, queue: queues[$0 % queues.count]) }
        let results = try await driver.enqueue(jobs, actor: nil)
        #expect(results.allSatisfy { $0.job as Job? != nil })
        #expect(try await driver.queues().count == 16, "the global queue set is a plain key")

        let done = try await Self.drain(driver, queues, expected: jobs.count)
        #expect(Set(done) == Set(jobs.map(\.id)) && done.count == jobs.count, "every job completed exactly once")
        for queue in queues {
            let counts = try await driver.counts(queue)
            #expect(counts.completed == 25 && counts.pending == 0 && counts.active == 0)
        }
        // Lookup without a queue probes every queue (all masters) in one pipeline.
        #expect(try await driver.job(jobs[399].id, queue: nil)?.state == .completed)

        // A claimer blocked on all 16 queues (one BLPOP per queue, on each queue's master) wakes for the last one.
        let waiter = Task { try await driver.claim(from: queues, worker: WorkerID(rawValue: "w9"), lease: .seconds(30), wait: .seconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        let late = try #require(try await driver.enqueue(Job(type: "t", queue: queues[15]), actor: nil).job)
        let lease = try await waiter.value
        #expect(lease?.job.id == late.id)
    }

    @Test func aSlotMigratedWhileJobsFlowLosesNothing() async throws {
        let cluster = try RedisCluster(masters: 3)
        defer { cluster.remove() }
        let client = Client(cluster)
        defer { client.close() }
        let driver = client.driver
        let queue: QueueName = "moving"
        let slot = ClusterSlot.of(driver.keys.queue(queue).pending.description)
        let total = 600
        // Enqueue steadily while two claimers work; move the queue's slot in the middle.
        let producer = Task {
            var ids = [JobID]()
            for i in 0..<total {
                ids.append(try #require(try await driver.enqueue(Job(type: "t", payload: #"{"n":\#(i)}"#, queue: queue), actor: nil).job).id)
                if i % 50 == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            return ids
        }
        let consumer = Task { try await Self.drain(driver, [queue], expected: total) }
        try await eventually(timeout: .seconds(30), "jobs to flow") { try await driver.counts(queue).completed >= 100 }
        let before = try cluster.owner(of: slot)
        let target = try #require(try cluster.topology().first { $0.isMaster && $0.id != before.id })
        try cluster.migrate(slot: slot, to: target)
        #expect(try cluster.owner(of: slot).id == target.id)
        let enqueued = try await producer.value
        let done = try await consumer.value
        #expect(Set(done) == Set(enqueued) && done.count == total, "every job completed once across the move")
        let counts = try await driver.counts(queue)
        #expect(counts.completed == total && counts.pending == 0 && counts.active == 0)
        let redirects = client.redis.redirects
        #expect(redirects.moved + redirects.ask > 0, "the client followed the move: \(redirects)")
    }

    @Test func aMasterThatLostItsDataIsFencedAloneUntilRebuilt() async throws {
        let cluster = try RedisCluster(masters: 3)
        defer { cluster.remove() }
        let client = Client(cluster)
        defer { client.close() }
        let driver = client.driver
        // A journal is registered, so masters must be vouched for.
        _ = try await driver.redis.send(RedisCommand("ZADD", [RESPArgument(driver.keys.journals), RESPArgument(Date().millis), "j1"]))
        #expect(try await driver.markerState().holds == false)
        try await driver.setMarker(runID: try await driver.markerState().runID)
        #expect(try await driver.markerState().holds == true)
        #expect(try await driver.dataVerified())

        // Two queues on different masters; FLUSHALL one master.
        let topology = try cluster.topology().filter { $0.isMaster }
        let names = (0..<64).map { QueueName(rawValue: "f\($0)")! }
        let keys = driver.keys
        let owner = { (q: QueueName) throws -> String in try cluster.owner(of: ClusterSlot.of(keys.queue(q).pending.description)).id }
        let flushedQueue = try #require(try names.first { try owner($0) == topology[0].id })
        let healthyQueue = try #require(try names.first { try owner($0) != topology[0].id })
        try #require(cluster.server(port: topology[0].port)).cli("FLUSHALL")
        // The journal's next heartbeat registers it again (the flushed master may have held the list).
        _ = try await driver.redis.send(RedisCommand("ZADD", [RESPArgument(driver.keys.journals), RESPArgument(Date().millis), "j1"]))
        let state = try await driver.markerState()
        #expect(state.holds == false, "the flushed master's marker is gone")
        #expect(try await driver.dataVerified() == true, "some masters still hold their data")
        let verified = try #require(try await driver.verifiedRunID())
        #expect(verified.split(separator: ",").count == 2, "the other two masters stay vouched for: \(verified)")

        // Fenced (journaled) enqueues: refused on the flushed master, taken by the others.
        let refused = try await driver.enqueue([Job(type: "t", queue: flushedQueue)], actor: nil, fenced: true)
        guard case .fenced = refused[0] else { Issue.record("expected fenced, got \(refused[0])"); return }
        let taken = try await driver.enqueue([Job(type: "t", queue: healthyQueue)], actor: nil, fenced: true)
        #expect(taken[0].job as Job? != nil)
        // Claims skip the unvouched master's queue.
        _ = try await driver.enqueue(Job(type: "t", queue: flushedQueue), actor: nil)
        let claimed = try await driver.claim(from: [flushedQueue, healthyQueue], worker: WorkerID(rawValue: "w"), lease: .seconds(10), wait: .zero, max: 10)
        #expect(claimed.map(\.job.queue) == [healthyQueue])

        // Rebuilt and vouched for again: the master takes work again.
        try await driver.clearMarker()
        try await driver.setMarker(runID: state.runID)
        #expect(try await driver.markerState().holds)
        let again = try await driver.enqueue([Job(type: "t", queue: flushedQueue)], actor: nil, fenced: true)
        #expect(again[0].job as Job? != nil)
    }
}
