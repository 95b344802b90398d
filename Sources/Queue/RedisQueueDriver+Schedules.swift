import Foundation

/// Schedules in Redis (SPEC §8): definitions in one hash, the last tick fired of each in another. Both are plain
/// single-key commands (any cluster slot): firing goes through enqueue, whose idempotency key makes each tick one job.
extension RedisQueueDriver {
    /// Every schedule, by name.
    public func schedules() async throws -> [Schedule] {
        let reply = try await redis.send(RedisCommand("HGETALL", [RESPArgument(keys.schedules)]))
        return (reply.fieldMap ?? [:]).values.compactMap { try? JSONDecoder().decode(Schedule.self, from: Data($0.utf8)) }
            .sorted { $0.name < $1.name }
    }

    public func schedule(_ name: String) async throws -> Schedule? {
        let reply = try await redis.send(RedisCommand("HGET", [RESPArgument(keys.schedules), RESPArgument(name)]))
        return reply.string.flatMap { try? JSONDecoder().decode(Schedule.self, from: Data($0.utf8)) }
    }

    /// Creates or replaces a schedule.
    public func putSchedule(_ schedule: Schedule) async throws {
        let text = String(decoding: try JSONEncoder().encode(schedule), as: UTF8.self)
        _ = try await redis.send(RedisCommand("HSET", [RESPArgument(keys.schedules), RESPArgument(schedule.name), RESPArgument(text)]))
    }

    /// Creates a schedule unless one has the name; false if it exists.
    public func addSchedule(_ schedule: Schedule) async throws -> Bool {
        let text = String(decoding: try JSONEncoder().encode(schedule), as: UTF8.self)
        return try await redis.send(RedisCommand("HSETNX", [RESPArgument(keys.schedules), RESPArgument(schedule.name), RESPArgument(text)])).int == 1
    }

    /// Deletes a schedule and its last tick; false if there was none.
    public func deleteSchedule(_ name: String) async throws -> Bool {
        let replies = try await redis.pipeline([
            RedisCommand("HDEL", [RESPArgument(keys.schedules), RESPArgument(name)]),
            RedisCommand("HDEL", [RESPArgument(keys.scheduleTicks), RESPArgument(name)]),
        ])
        for case .error(let message) in replies { throw RedisClientError(.serverError, message: message) }
        return replies[0].int == 1
    }

    /// The last tick fired of every schedule that fired.
    public func lastTicks() async throws -> [String: Date] {
        let reply = try await redis.send(RedisCommand("HGETALL", [RESPArgument(keys.scheduleTicks)]))
        return (reply.fieldMap ?? [:]).compactMapValues { Int64($0).map { Date(millis: $0) } }
    }

    /// Records that `tick` fired (never moves a schedule's last tick back: a slower server's older tick is ignored).
    public func setLastTick(_ name: String, _ tick: Date) async throws {
        _ = try await redis.evalScript(Scripts.scheduleTick, keys: [keys.scheduleTicks], arguments: [RESPArgument(name), RESPArgument(tick.millis)])
    }
}
