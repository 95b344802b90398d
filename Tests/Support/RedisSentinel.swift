import DocketQueue
import Foundation

/// A real Sentinel setup for tests: a master, its replica, and `sentinels` Sentinels (quorum: a majority) on free
/// ports, watching the master as `name` with a 1 s down-after and a 5 s failover timeout.
public final class RedisSentinel: Sendable {
    public let name = "docket-main"
    public let master: RedisServer
    public let replica: RedisServer
    public let sentinelPorts: [Int]
    private let processes: [ChildProcess]

    public init(sentinels: Int = 3) throws {
        master = try RedisServer.start(tcp: true)
        do {
            replica = try RedisServer.start(tcp: true)
        } catch {
            master.remove()
            throw error
        }
        var ports = [Int]()
        var started = [ChildProcess]()
        do {
            try master.cli("CONFIG", "SET", "repl-diskless-sync-delay", "0")
            try replica.cli("REPLICAOF", "127.0.0.1", "\(master.port!)")
            for i in 0..<sentinels {
                let port = try RedisServer.freePort()
                let dir = master.directory.appendingPathComponent("sentinel-\(i)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                let conf = dir.appendingPathComponent("sentinel.conf")
                try """
                    port \(port)
                    bind 127.0.0.1
                    dir \(dir.path)
                    sentinel monitor \(name) 127.0.0.1 \(master.port!) \(sentinels / 2 + 1)
                    sentinel down-after-milliseconds \(name) 1000
                    sentinel failover-timeout \(name) 5000
                    """.write(to: conf, atomically: true, encoding: .utf8)
                started.append(try ChildProcess("/usr/bin/env", ["redis-server", conf.path, "--sentinel"], outputDirectory: dir))
                ports.append(port)
            }
        } catch {
            for p in started { p.signal(SIGKILL); p.cleanup() }
            master.remove()
            replica.remove()
            throw error
        }
        sentinelPorts = ports
        processes = started
    }

    /// `redis+sentinel://` naming every Sentinel.
    public var urlString: String { "redis+sentinel://" + sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(name)" }

    /// Asks the first Sentinel that answers.
    public func ask(_ args: RESPArgument...) async throws -> RESPValue {
        var failure: (any Error)?
        for port in sentinelPorts {
            do {
                let c = try await RedisConnection.connect(to: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: port)))
                defer { c.close() }
                return try await c.send(RedisCommand("SENTINEL", args))
            } catch { failure = error }
        }
        throw failure ?? TestSupportError("no Sentinel")
    }

    /// Waits until every Sentinel knows the replica and the other Sentinels (a failover can then be agreed).
    public func waitReady(timeout: Duration = .seconds(30)) async throws {
        try await eventually(timeout: timeout, "the replica's first sync") {
            (try? replica.cli("INFO", "replication"))?.contains("master_link_status:up") == true
        }
        try await eventually(timeout: timeout, "the Sentinels to see the replica and each other") {
            guard (try? await ask("replicas", RESPArgument(name)))?.array?.isEmpty == false else { return false }
            if sentinelPorts.count == 1 { return true }
            let peers = (try? await ask("sentinels", RESPArgument(name)))?.array?.count ?? 0
            return peers >= sentinelPorts.count - 1
        }
    }

    /// The port Sentinel names as master.
    public func masterPort() async throws -> Int? {
        (try await ask("get-master-addr-by-name", RESPArgument(name))).array?.last?.string.flatMap { Int($0) }
    }

    /// The server that is master now (asked by `ROLE`), among those still running.
    public var currentMaster: RedisServer? {
        [master, replica].first { $0.pid != nil && ((try? $0.cli("ROLE"))?.hasPrefix("master") ?? false) }
    }

    public func remove() {
        for p in processes { p.signal(SIGKILL); p.cleanup() }
        master.remove()
        replica.remove()
    }
}
