import DocketQueue
import Foundation

/// A real Redis Cluster for tests: `masters` masters (at least 3) with `replicas` replicas each, every node a
/// `RedisServer` on free ports (client and cluster bus), joined with `redis-cli --cluster create`. Nodes time out
/// after 1 s, a replica may always take over (validity factor 0), and masters keep serving while a slot range is down.
public final class RedisCluster: Sendable {
    public let nodes: [RedisServer]

    public init(masters: Int = 3, replicas: Int = 0) throws {
        precondition(masters >= 3, "redis-cli --cluster create needs 3 masters")
        var nodes = [RedisServer]()
        do {
            for _ in 0..<(masters * (1 + replicas)) {
                nodes.append(try RedisServer.start(tcp: true, arguments: [
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", "\(try RedisServer.freePort())",
                    "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no", "--cluster-replica-validity-factor", "0",
                    "--repl-diskless-sync-delay", "0",
                ]))
            }
            self.nodes = nodes
            let create = try ChildProcess("/usr/bin/redis-cli", ["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port!)" }
                + ["--cluster-replicas", "\(replicas)", "--cluster-yes"], outputDirectory: nodes[0].directory)
            defer { create.cleanup() }
            guard create.waitBlocking(timeout: 60) == 0 else { throw TestSupportError("redis-cli --cluster create failed: \(create.stdout.suffix(800)) \(create.stderr)") }
            try waitHealthy()
            if replicas > 0 { try waitReplicasInSync() }
        } catch {
            for node in nodes { node.remove() }
            throw error
        }
    }

    /// `redis+cluster://` with every node as a seed.
    public var urlString: String { "redis+cluster://" + nodes.map { "127.0.0.1:\($0.port!)" }.joined(separator: ",") }
    public var url: RedisURL { try! RedisURL(urlString) }

    /// Nodes still running.
    public var live: [RedisServer] { nodes.filter { $0.pid != nil } }

    /// Waits until every live node reports `cluster_state:ok` and sees the same number of masters serving slots.
    public func waitHealthy(timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let states = live.map { (try? $0.cli("CLUSTER", "INFO")) ?? "" }
            if states.allSatisfy({ $0.contains("cluster_state:ok") }), Set(states.map { Self.field("cluster_size", $0) }).count == 1 { return }
            usleep(50_000)
        }
        throw TestSupportError("cluster not healthy: \(live.map { (try? $0.cli("CLUSTER", "NODES")) ?? "" })")
    }

    private static func field(_ name: String, _ info: String) -> String {
        info.split(whereSeparator: \.isNewline).first { $0.hasPrefix(name + ":") }.map(String.init) ?? ""
    }

    /// One line of `CLUSTER NODES` as seen by a live node.
    public struct Node: Sendable {
        public let id: String
        public let port: Int
        public let isMaster: Bool
        public let masterID: String?
        public let slots: [ClosedRange<Int>]
    }

    public func topology() throws -> [Node] {
        guard let any = live.first else { throw TestSupportError("no live node") }
        return try any.cli("CLUSTER", "NODES").split(whereSeparator: \.isNewline).compactMap { line in
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 8, !f[2].contains("fail"), let colon = f[1].firstIndex(of: ":") else { return nil }
            let port = Int(f[1][f[1].index(after: colon)...].prefix { $0.isNumber }) ?? 0
            let slots = f.dropFirst(8).compactMap { part -> ClosedRange<Int>? in
                if part.hasPrefix("[") { return nil }  // a migration in progress
                let ends = part.split(separator: "-").compactMap { Int($0) }
                return ends.count == 2 ? ends[0]...ends[1] : ends.first.map { $0...$0 }
            }
            return Node(id: f[0], port: port, isMaster: f[2].contains("master"), masterID: f[3] == "-" ? nil : f[3], slots: slots)
        }
    }

    public func server(port: Int) -> RedisServer? { nodes.first { $0.port == port } }

    /// The master serving `slot`.
    public func owner(of slot: Int) throws -> Node {
        guard let node = try topology().first(where: { $0.isMaster && $0.slots.contains { $0.contains(slot) } }) else {
            throw TestSupportError("no master serves slot \(slot)")
        }
        return node
    }

    /// Moves `slot` to the master `target` while clients keep using it: IMPORTING/MIGRATING, then every key of the slot
    /// in one MIGRATE (so a script never sees part of a queue on each side), then the new owner is announced.
    public func migrate(slot: Int, to target: Node) throws {
        let source = try owner(of: slot)
        guard source.id != target.id, let from = server(port: source.port), let to = server(port: target.port) else { return }
        try to.cli("CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", source.id)
        try from.cli("CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", target.id)
        let keys = try from.cli("CLUSTER", "GETKEYSINSLOT", "\(slot)", "100000").split(whereSeparator: \.isNewline).map(String.init)
        if !keys.isEmpty {
            let out = try cli(from, ["MIGRATE", "127.0.0.1", "\(target.port)", "", "0", "10000", "KEYS"] + keys)
            guard out.contains("OK") || out.contains("NOKEY") else { throw TestSupportError("MIGRATE: \(out)") }
        }
        for node in try topology() where node.isMaster {
            try server(port: node.port)?.cli("CLUSTER", "SETSLOT", "\(slot)", "NODE", target.id)
        }
    }

    private func cli(_ server: RedisServer, _ args: [String]) throws -> String {
        let cli = try ChildProcess("/usr/bin/redis-cli", ["-s", server.socketPath] + args, outputDirectory: server.directory)
        defer { cli.cleanup() }
        guard cli.waitBlocking(timeout: 30) != nil else { throw TestSupportError("redis-cli hung") }
        return cli.stdout + cli.stderr
    }

    /// Waits until every live replica's link to its master is up (its first full sync done).
    public func waitReplicasInSync(timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let replicas = try topology().filter { !$0.isMaster }.compactMap { server(port: $0.port) }
            if replicas.allSatisfy({ (try? $0.cli("INFO", "replication"))?.contains("master_link_status:up") == true }) { return }
            usleep(50_000)
        }
        throw TestSupportError("replicas not in sync")
    }

    public func remove() { for node in nodes { node.remove() } }
}
