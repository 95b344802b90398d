import Foundation

/// A live worker process, as it registers itself for the server to list.
public struct WorkerInfo: Sendable, Hashable, Codable {
    public var id: String
    public var host: String
    public var pid: Int
    public var queues: [String]
    public var concurrency: Int
    public var startedAt: Date
    public var lastHeartbeat: Date
    /// Jobs the worker is running at its last heartbeat.
    public var running: Int

    public init(id: WorkerID, queues: [QueueName], concurrency: Int, startedAt: Date = Date()) {
        self.id = id.rawValue
        self.host = ProcessInfo.processInfo.hostName
        self.pid = Int(ProcessInfo.processInfo.processIdentifier)
        self.queues = queues.map(\.rawValue)
        self.concurrency = concurrency
        self.startedAt = startedAt
        self.lastHeartbeat = startedAt
        self.running = 0
    }
}

extension RedisQueueDriver: WorkerRegistry {
    /// Registers or refreshes a worker; its record expires after `ttl` without a heartbeat.
    public func heartbeat(_ info: WorkerInfo, ttl: Duration) async throws {
        let key = keys.worker(WorkerID(rawValue: info.id))
        let replies = try await redis.pipeline([
            RedisCommand("HSET", [
                RESPArgument(key), "id", RESPArgument(info.id), "host", RESPArgument(info.host), "pid", RESPArgument(info.pid),
                "queues", RESPArgument(info.queues.joined(separator: ",")), "concurrency", RESPArgument(info.concurrency),
                "startedAt", RESPArgument(info.startedAt.millis), "lastHeartbeat", RESPArgument(info.lastHeartbeat.millis),
                "running", RESPArgument(info.running),
            ]),
            RedisCommand("PEXPIRE", [RESPArgument(key), RESPArgument(ttl.milliseconds)]),
            RedisCommand("ZADD", [RESPArgument(keys.workers), RESPArgument(info.lastHeartbeat.millis), RESPArgument(info.id)]),
        ])
        for case .error(let message) in replies { throw RedisClientError(.serverError, message: message) }
    }

    /// Removes a worker's registration (clean shutdown).
    public func unregister(_ id: WorkerID) async throws {
        _ = try await redis.pipeline([
            RedisCommand("DEL", [RESPArgument(keys.worker(id))]),
            RedisCommand("ZREM", [RESPArgument(keys.workers), RESPArgument(id.rawValue)]),
        ])
    }

    /// Workers whose registration has not expired, dropping stale ids from the index.
    public func workers() async throws -> [WorkerInfo] {
        let ids = (try await redis.send(RedisCommand("ZRANGE", [RESPArgument(keys.workers), "0", "-1"])).array ?? []).compactMap(\.string)
        if ids.isEmpty { return [] }
        let replies = try await redis.pipeline(ids.map { RedisCommand("HGETALL", [RESPArgument(keys.worker(WorkerID(rawValue: $0)))]) })
        var live = [WorkerInfo]()
        var stale = [String]()
        for (id, reply) in zip(ids, replies) {
            let f = reply.fieldMap ?? [:]
            guard let started = f["startedAt"].flatMap({ Int64($0) }), let beat = f["lastHeartbeat"].flatMap({ Int64($0) }) else {
                stale.append(id)
                continue
            }
            var info = WorkerInfo(id: WorkerID(rawValue: id), queues: [], concurrency: Int(f["concurrency"] ?? "") ?? 0, startedAt: Date(millis: started))
            info.host = f["host"] ?? ""
            info.pid = Int(f["pid"] ?? "") ?? 0
            info.queues = (f["queues"] ?? "").split(separator: ",").map(String.init)
            info.lastHeartbeat = Date(millis: beat)
            info.running = Int(f["running"] ?? "") ?? 0
            live.append(info)
        }
        if !stale.isEmpty {
            _ = try await redis.send(RedisCommand("ZREM", [RESPArgument(keys.workers)] + stale.map { RESPArgument($0) }))
        }
        return live
    }
}
