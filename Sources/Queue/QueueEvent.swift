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
        // Read field by field (no dictionary of every field first): the core fields are matched by their bytes and
        // only the rest become `fields`. This runs once per event on the ingestion path.
        guard case .array(let entry) = streamEntry, entry.count == 2, let id = entry[0].string, case .array(let items) = entry[1] else {
            return nil
        }
        var job: JobID?, seq: Int?, event: String?, state: JobState?, at: Int64?, attempt = 0
        var fields = [String: String]()
        var i = 0
        while i + 1 < items.count {
            defer { i += 2 }
            guard case .bulkString(let key) = items[i], let value = items[i + 1].string else { continue }
            switch key {
            case Self.jobKey: job = JobID(rawValue: value)
            case Self.seqKey: seq = Int(value)
            case Self.eventKey: event = value
            case Self.stateKey: state = JobState(rawValue: value)
            case Self.atKey: at = Int64(value)
            case Self.attemptKey: attempt = Int(value) ?? 0
            default: fields[String(decoding: key, as: UTF8.self)] = value
            }
        }
        guard let job, let seq, let event, let state, let at else { return nil }
        self.streamID = id
        self.jobID = job
        self.seq = seq
        self.event = event
        self.state = state
        self.attempt = attempt
        self.at = Date(millis: at)
        self.fields = fields
    }

    private static let jobKey = Array("job".utf8), seqKey = Array("seq".utf8), eventKey = Array("event".utf8)
    private static let stateKey = Array("state".utf8), atKey = Array("at".utf8), attemptKey = Array("attempt".utf8)
}

extension RedisQueueDriver {
    /// Reads up to `count` events of `queue` after stream id `after` ("0" = from the start), oldest first.
    public func events(of queue: QueueName, after: String = "0", count: Int = 1000) async throws -> [QueueEvent] {
        let reply = try await redis.send(
            RedisCommand("XRANGE", [RESPArgument(keys.queue(queue).events), RESPArgument("(" + after), "+", "COUNT", RESPArgument(count)]))
        return (reply.array ?? []).compactMap(QueueEvent.init(streamEntry:))
    }
}
