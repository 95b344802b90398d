import DocketQueue
import DocketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FaultScenarios {
    // MARK: 11. Redis Cluster: a master dies with writes its replica never got

    @Test("Redis Cluster master SIGKILL after its replica fell behind: the failover drops writes, nothing acknowledged is lost",
          .timeLimit(.minutes(3)))
    func clusterFailoverLosingWrites() async throws {
        let cluster = try FaultCluster("cluster-failover", masters: 3, replicas: 1, queues: 8)
        defer { cluster.cleanup() }
        let nodes = try #require(cluster.redisCluster)
        let server = try await cluster.startServer()
        _ = try await cluster.startWorker(handlers: [cluster.handler(sleep: 0.05)])
        let load = Task { await cluster.load(0..<600, concurrency: 4, pace: .milliseconds(10), keyed: true) { server.base } }
        defer { load.cancel() }
        try await eventually(timeout: .seconds(30), "150 acknowledged enqueues") { await cluster.ledger.count >= 150 }

        // The master serving q0, and its replica. The replica stops replicating (SIGSTOP) while the master keeps taking
        // enqueues, claims and completions; then the master dies and the stale replica is promoted: every write of
        // that stretch is gone from Redis (asynchronous replication), but not from the journal.
        let victim = try nodes.owner(of: ClusterSlot.of("docket:{q0}:pending"))
        let replicaNode = try #require(try nodes.topology().first { $0.masterID == victim.id })
        let replica = try #require(nodes.server(port: replicaNode.port)), master = try #require(nodes.server(port: victim.port))
        let replicaPID = try #require(replica.pid)
        kill(replicaPID, SIGSTOP)
        // What the master sent before sits in the replica's socket buffer and would still be applied: cut the link
        // from the master's side too, so nothing the master takes from now on reaches the replica.
        try master.cli("CLIENT", "KILL", "TYPE", "replica")
        let answered = await cluster.ledger.answered
        await awhile(.seconds(5)) { await cluster.ledger.answered >= answered + 80 }
        let keysOnVictim = try master.cli("DBSIZE").trimmingCharacters(in: .whitespacesAndNewlines)
        master.kill()
        kill(replicaPID, SIGCONT)
        let keysOnReplica = try replica.cli("DBSIZE").trimmingCharacters(in: .whitespacesAndNewlines)
        try await eventually(timeout: .seconds(30), "the replica to be promoted") {
            (try? nodes.topology().first { $0.id == replicaNode.id }?.isMaster) == true
        }
        await load.value
        let counts = await cluster.ledger.counts
        let report = try await InvariantChecker(cluster, journals: [server.journal], redisLost: true).check(
            extra: "answers=[\(counts.description)] victimKeys=\(keysOnVictim) replicaKeys=\(keysOnReplica)")
        // The failover lost writes, and recovery set exactly those jobs back (`restored` events).
        let journal = try await JournalSnapshot.read(server.journal)
        let restored = journal.events.values.reduce(0) { n, events in n + events.values.filter { $0.event == "restored" }.count }
        print("FAULT cluster-failover: restored=\(restored) (jobs the promoted replica had lost or held stale)")
        #expect(restored > 0, "the failover lost writes, and recovery set jobs back (else this scenario tests nothing)")
        finish(cluster, report)
        let answers = await cluster.ledger.summary
        #expect(report.acknowledged >= 550, "enqueues answered through the failover: \(answers)")
        #expect(counts.timeouts == 0, "enqueue never hangs")
    }
}

extension FaultScenarios {
    // MARK: 12. Sentinel: the master dies with writes its replica never got

    @Test("Sentinel failover after the replica fell behind: the master is SIGKILLed mid-load, nothing acknowledged is lost",
          .timeLimit(.minutes(3)))
    func sentinelFailoverLosingWrites() async throws {
        let cluster = try FaultCluster("sentinel-failover", sentinels: 3)
        defer { cluster.cleanup() }
        let setup = try #require(cluster.redisSentinel)
        try await setup.waitReady()
        let server = try await cluster.startServer()
        _ = try await cluster.startWorker(handlers: [cluster.handler(sleep: 0.05)])
        let load = Task { await cluster.load(0..<500, concurrency: 4, pace: .milliseconds(10), keyed: true) { server.base } }
        defer { load.cancel() }
        try await eventually(timeout: .seconds(30), "150 acknowledged enqueues") { await cluster.ledger.count >= 150 }

        // The replica stops replicating while the master keeps working; then the master dies and Sentinel promotes
        // the stale replica.
        let replicaPID = try #require(setup.replica.pid)
        kill(replicaPID, SIGSTOP)
        try setup.master.cli("CLIENT", "KILL", "TYPE", "replica")  // as in the cluster scenario
        let answered = await cluster.ledger.answered
        await awhile(.seconds(5)) { await cluster.ledger.answered >= answered + 80 }
        let keysOnMaster = try setup.master.cli("DBSIZE").trimmingCharacters(in: .whitespacesAndNewlines)
        setup.master.kill()
        kill(replicaPID, SIGCONT)
        let keysOnReplica = try setup.replica.cli("DBSIZE").trimmingCharacters(in: .whitespacesAndNewlines)
        let replicaPort = try #require(setup.replica.port)
        try await eventually(timeout: .seconds(60), "Sentinel to promote the replica") { (try? await setup.masterPort()) == replicaPort }
        await load.value
        let counts = await cluster.ledger.counts
        let report = try await InvariantChecker(cluster, journals: [server.journal], redisLost: true).check(
            extra: "answers=[\(counts.description)] masterKeys=\(keysOnMaster) replicaKeys=\(keysOnReplica)")
        let journal = try await JournalSnapshot.read(server.journal)
        let restored = journal.events.values.reduce(0) { n, events in n + events.values.filter { $0.event == "restored" }.count }
        print("FAULT sentinel-failover: restored=\(restored) (jobs the promoted replica had lost or held stale)")
        finish(cluster, report)
        #expect(restored > 0, "the failover lost writes, and recovery set jobs back (else this scenario tests nothing)")
        let answers = await cluster.ledger.summary
        #expect(report.acknowledged >= 450, "enqueues answered through the failover: \(answers)")
        #expect(counts.timeouts == 0, "enqueue never hangs")
    }
}
