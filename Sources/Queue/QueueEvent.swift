import Foundation

/// One transition of one job, as the Lua scripts append it to the queue's event stream.
public struct QueueEvent: Sendable, Hashable {
    /// The stream entry id (`ms-seq`), the ingestion cursor.
    public var streamID: String
    public var jobID: JobID
    /// Per-job, gap-free, from 1.
    public var seq: Int
    public var event: String
    public var state: JobState
    public var attempt: Int
    public var at: Date
    /// Every other field of the entry (worker, error, actor, result, runMs, and the job's fields on `enqueued`).
    public var fields: [String: String]

    public var worker: String? { fields["worker"] }
    public var error: String? { fields["error"] }
    public var actor: String? { fields["actor"] }

    init?(streamEntry: RESPValue) {
        guard let entry = streamEntry.array, entry.count == 2, let id = entry[0].string, var fields = entry[1].fieldMap else { return nil }
        guard let job = fields.removeValue(forKey: "job").flatMap(JobID.init(rawValue:)),
            let seq = fields.removeValue(forKey: "seq").flatMap({ Int($0) }),
            let event = fields.removeValue(forKey: "event"),
            let state = fields.removeValue(forKey: "state").flatMap(JobState.init(rawValue:)),
            let at = fields.removeValue(forKey: "at").flatMap({ Int64($0) })
        else { return nil }
        self.streamID = id
        self.jobID = job
        self.seq = seq
        self.event = event
        self.state = state
        self.attempt = fields.removeValue(forKey: "attempt").flatMap { Int($0) } ?? 0
        self.at = Date(millis: at)
        self.fields = fields
    }
}

extension RedisQueueDriver {
    /// Reads up to `count` events of `queue` after stream id `after` ("0" = from the start), oldest first.
    public func events(of queue: QueueName, after: String = "0", count: Int = 1000) async throws -> [QueueEvent] {
        let reply = try await redis.send(
            RedisCommand("XRANGE", [RESPArgument(keys.queue(queue).events), RESPArgument("(" + after), "+", "COUNT", RESPArgument(count)]))
        return (reply.array ?? []).compactMap(QueueEvent.init(streamEntry:))
    }
}
