import Foundation
import Synchronization

extension RedisQueueDriver {
    /// Records that journal `journalID` has committed `queue`'s stream up to `streamID`, then trims the
    /// stream below the oldest cursor of every live journal (silent for less than `staleAfter`). A live journal
    /// with no cursor on this queue yet (it just started, or Redis lost the cursors) holds trimming back whole.
    /// Returns the number of entries trimmed.
    @discardableResult
    public func commitJournalCursor(journalID: String, queue: QueueName, streamID: String, staleAfter: Duration) async throws -> Int {
        let q = keys.queue(queue)
        let now = Date().millis
        let replies = try await redis.pipeline([
            RedisCommand("HSET", [RESPArgument(q.journalCursors), RESPArgument(journalID), RESPArgument(streamID)]),
            RedisCommand("ZADD", [RESPArgument(keys.journals), RESPArgument(now), RESPArgument(journalID)]),
            RedisCommand("HGETALL", [RESPArgument(q.journalCursors)]),
            RedisCommand("ZRANGE", [RESPArgument(keys.journals), RESPArgument(now - staleAfter.milliseconds), "+inf", "BYSCORE"]),
        ])
        for case .error(let message) in replies { throw RedisClientError(.serverError, message: message) }
        let live = Set((replies[3].array ?? []).compactMap(\.string))
        let cursors = replies[2].fieldMap ?? [:]
        guard live.allSatisfy({ cursors[$0] != nil }) else { return 0 }
        let oldest = cursors.filter { live.contains($0.key) }.compactMap { StreamID($0.value) }.min()
        guard let oldest else { return 0 }
        let trimmed = try await redis.send(RedisCommand("XTRIM", [RESPArgument(q.events), "MINID", RESPArgument(oldest.description)]))
        return Int(trimmed.int ?? 0)
    }

    /// Caps the streams of every queue while no live journal drains them (at most every 10 s): a worker-only
    /// deployment keeps the newest `undrainedStreamCap` events. With a live journal, only journals trim.
    func capUndrainedStreams(_ queues: [QueueName], staleAfter: Duration = .seconds(3600)) async throws {
        let now = ContinuousClock.now
        let due = lastStreamCap.withLock { last -> Bool in
            if let last, last.duration(to: now) < .seconds(10) { return false }
            last = now
            return true
        }
        guard due, !queues.isEmpty else { return }
        let cutoff = Date().millis - staleAfter.milliseconds
        let live = try await redis.send(RedisCommand("ZCOUNT", [RESPArgument(keys.journals), RESPArgument(cutoff), "+inf"]))
        guard live.int == 0 else { return }
        _ = try await redis.pipeline(queues.map {
            RedisCommand("XTRIM", [RESPArgument(keys.queue($0).events), "MAXLEN", "~", RESPArgument(configuration.undrainedStreamCap)])
        })
    }

    /// Marks journal `journalID` alive (done every pass, so an idle journal never looks stale).
    public func journalHeartbeat(journalID: String) async throws {
        _ = try await redis.send(RedisCommand("ZADD", [RESPArgument(keys.journals), RESPArgument(Date().millis), RESPArgument(journalID)]))
    }

    /// Journals that hold back trimming but have been silent longer than `staleAfter`.
    public func staleJournals(staleAfter: Duration) async throws -> [String] {
        let cutoff = Date().millis - staleAfter.milliseconds
        let reply = try await redis.send(RedisCommand("ZRANGE", [RESPArgument(keys.journals), "-inf", RESPArgument("(\(cutoff)"), "BYSCORE"]))
        return (reply.array ?? []).compactMap(\.string)
    }

    /// The id of the newest entry in `queue`'s stream ("0-0" when empty or missing).
    public func lastStreamID(of queue: QueueName) async throws -> String {
        let reply = try await redis.send(RedisCommand("XREVRANGE", [RESPArgument(keys.queue(queue).events), "+", "-", "COUNT", "1"]))
        return reply.array?.first?.array?.first?.string ?? "0-0"
    }
}

/// A Redis stream entry id, `ms-seq`, ordered as Redis orders them.
public struct StreamID: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let ms: UInt64
    public let seq: UInt64
    public init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count <= 2, let ms = UInt64(parts[0]) else { return nil }
        self.ms = ms
        self.seq = parts.count == 2 ? UInt64(parts[1]) ?? 0 : 0
    }
    public static func < (a: StreamID, b: StreamID) -> Bool { (a.ms, a.seq) < (b.ms, b.seq) }
    public var description: String { "\(ms)-\(seq)" }
}
