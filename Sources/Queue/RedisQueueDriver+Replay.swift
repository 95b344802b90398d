import Foundation

extension RedisQueueDriver {
    /// Gives each original job a `replayed` event naming its copy (see `replayed.lua`), whether or not Redis still
    /// holds the original; `original` is the journal's row (its seq, state and attempts are used when Redis does
    /// not have it). Pipelined, 5000 calls at a time. Returns each event's seq.
    public func markReplayed(_ pairs: [(original: Job, copy: JobID)], actor: String?) async throws -> [Int] {
        let now = Date().millis
        var seqs = [Int]()
        seqs.reserveCapacity(pairs.count)
        for start in stride(from: 0, to: pairs.count, by: 5000) {
            let calls = pairs[start..<min(start + 5000, pairs.count)].map { pair -> (RedisScript, [RedisKey], [RESPArgument]) in
                let q = keys.queue(pair.original.queue)
                return (Scripts.replayed, [q.job(pair.original.id), q.events, q.replaySeq(pair.original.id)], [
                    RESPArgument(pair.original.id.rawValue), RESPArgument(pair.copy.rawValue), RESPArgument(now), RESPArgument(actor ?? ""),
                    RESPArgument(pair.original.seq), RESPArgument(pair.original.state.rawValue), RESPArgument(pair.original.attempts),
                    // Long enough for every journal to have ingested the event (then the journal's seq covers it).
                    RESPArgument(Int64(86_400_000)),
                ])
            }
            for reply in try await redis.evalScripts(calls) {
                let value = try reply.get()
                guard let seq = value.int else { throw QueueError(.unexpectedReply, message: "replayed: \(value)") }
                seqs.append(Int(seq))
            }
        }
        return seqs
    }
}
