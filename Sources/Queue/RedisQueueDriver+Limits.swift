import Foundation
import Synchronization

/// Limits in Redis (SPEC §8): definitions in one hash (plain commands). Claims read them through a cache that is at
/// most `limitsRefresh` old, so a new or deleted limit takes effect within it on every worker.
extension RedisQueueDriver {
    public static let limitsRefresh: Duration = .seconds(1)

    public func limits() async throws -> [Limit] {
        let reply = try await redis.send(RedisCommand("HGETALL", [RESPArgument(keys.limits)]))
        return (reply.fieldMap ?? [:]).values.compactMap { try? JSONDecoder().decode(Limit.self, from: Data($0.utf8)) }.sorted { $0.name < $1.name }
    }

    /// Creates a limit unless one has the name; false if it exists.
    public func addLimit(_ limit: Limit) async throws -> Bool {
        let text = String(decoding: try JSONEncoder().encode(limit), as: UTF8.self)
        let added = try await redis.send(RedisCommand("HSETNX", [RESPArgument(keys.limits), RESPArgument(limit.name), RESPArgument(text)])).int == 1
        limitCache.withLock { $0 = nil }
        return added
    }

    /// Creates or replaces a limit.
    public func putLimit(_ limit: Limit) async throws {
        let text = String(decoding: try JSONEncoder().encode(limit), as: UTF8.self)
        _ = try await redis.send(RedisCommand("HSET", [RESPArgument(keys.limits), RESPArgument(limit.name), RESPArgument(text)]))
        limitCache.withLock { $0 = nil }
    }

    /// Deletes a limit; false if there was none. Its counters expire on their own.
    public func deleteLimit(_ name: String) async throws -> Bool {
        let deleted = try await redis.send(RedisCommand("HDEL", [RESPArgument(keys.limits), RESPArgument(name)])).int == 1
        limitCache.withLock { $0 = nil }
        return deleted
    }

    /// The limits claims apply, from the cache (read again once it is `limitsRefresh` old; an unreachable Redis keeps
    /// the last known ones).
    func currentLimits() async throws -> [Limit] {
        let now = ContinuousClock.now
        if let cached = limitCache.withLock({ $0 }), cached.at.duration(to: now) < Self.limitsRefresh { return cached.limits }
        let fresh = try await limits()
        limitCache.withLock { $0 = (fresh, now) }
        return fresh
    }
}
