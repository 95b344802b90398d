import Synchronization

/// A Lua script the queue runs with EVALSHA: its name, source and how many KEYS it takes.
public struct RedisScript: Sendable {
    public let name: String
    let source: String
    public let keyCount: Int

    init(_ name: String, _ body: [UInt8], keys: Int) {
        self.name = name
        // lib.lua's helpers are prepended to every script; a script is one atomic unit in Redis.
        self.source = String(decoding: PackageResources.lib_lua, as: UTF8.self) + "\n" + String(decoding: body, as: UTF8.self)
        self.keyCount = keys
    }

    /// The script's own text, without the shared helpers (for its header).
    public var body: String {
        let lib = String(decoding: PackageResources.lib_lua, as: UTF8.self) + "\n"
        return String(source.dropFirst(lib.count))
    }
}

/// Every script the queue runs. A new script is a `.lua` file, a line here, a name in Package.swift.
public enum Scripts {
    static let enqueue = RedisScript("enqueue", PackageResources.enqueue_lua, keys: 9)
    static let claim = RedisScript("claim", PackageResources.claim_lua, keys: 6)
    static let renew = RedisScript("renew", PackageResources.renew_lua, keys: 2)
    static let progress = RedisScript("progress", PackageResources.progress_lua, keys: 2)
    static let complete = RedisScript("complete", PackageResources.complete_lua, keys: 3)
    static let fail = RedisScript("fail", PackageResources.fail_lua, keys: 6)
    static let release = RedisScript("release", PackageResources.release_lua, keys: 6)
    static let promote = RedisScript("promote", PackageResources.promote_lua, keys: 6)
    static let reap = RedisScript("reap", PackageResources.reap_lua, keys: 5)
    static let cancel = RedisScript("cancel", PackageResources.cancel_lua, keys: 5)
    static let requeue = RedisScript("requeue", PackageResources.requeue_lua, keys: 6)
    static let requeueDead = RedisScript("requeue_dead", PackageResources.requeue_dead_lua, keys: 5)
    static let pause = RedisScript("pause", PackageResources.pause_lua, keys: 2)
    static let resume = RedisScript("resume", PackageResources.resume_lua, keys: 3)
    static let purge = RedisScript("purge", PackageResources.purge_lua, keys: 3)
    static let restore = RedisScript("restore", PackageResources.restore_lua, keys: 7)
    static let scheduleTick = RedisScript("schedule_tick", PackageResources.schedule_tick_lua, keys: 1)
    static let replayed = RedisScript("replayed", PackageResources.replayed_lua, keys: 3)

    public static let all: [RedisScript] = [
        enqueue, claim, renew, progress, complete, fail, release, promote, reap, cancel, requeue, requeueDead, pause, resume, purge, restore, scheduleTick, replayed,
    ]
}

extension RedisClient {
    /// Loads every script into Redis' script cache (done again on demand after a Redis restart).
    public func loadScripts(_ scripts: [RedisScript] = Scripts.all) async throws {
        for script in scripts { _ = try await load(script) }
    }

    private func load(_ script: RedisScript) async throws -> String {
        // On every master of a cluster (a master that missed it still runs it: see evalScripts).
        let reply = try await sendToEachMaster(RedisCommand("SCRIPT", ["LOAD", RESPArgument(script.source)]))[0]
        guard let sha = reply.string else { throw RedisClientError(.unexpectedReply, message: "SCRIPT LOAD \(script.name)") }
        scriptSHAs.withLock { $0[script.name] = sha }
        return sha
    }

    private func sha(of script: RedisScript) async throws -> String {
        if let sha = scriptSHAs.withLock({ $0[script.name] }) { return sha }
        return try await load(script)
    }

    private static func evalsha(_ sha: String, _ script: RedisScript, keys: [RedisKey], arguments: [RESPArgument]) -> RedisCommand {
        precondition(keys.count == script.keyCount, "\(script.name).lua takes \(script.keyCount) keys, got \(keys.count)")
        return RedisCommand("EVALSHA", [RESPArgument(sha), RESPArgument(keys.count)] + keys.map(RESPArgument.init) + arguments)
    }

    private static func eval(_ script: RedisScript, keys: [RedisKey], arguments: [RESPArgument]) -> RedisCommand {
        RedisCommand("EVAL", [RESPArgument(script.source), RESPArgument(keys.count)] + keys.map(RESPArgument.init) + arguments)
    }

    /// Runs a script by EVALSHA, loading it first if Redis lost its script cache (NOSCRIPT).
    public func evalScript(_ script: RedisScript, keys: [RedisKey], arguments: [RESPArgument], onRunID runID: String? = nil) async throws -> RESPValue {
        try await evalScripts([(script, keys, arguments)], onRunID: runID)[0].get()
    }

    /// Runs several script calls in one pipeline. Each call is atomic on its own; calls that hit
    /// NOSCRIPT (never ran) are retried once with the script's source. Error replies come back per call.
    /// With `runID`, the calls run only on Redis process `runID` (else `serverChanged`, nothing sent).
    public func evalScripts(
        _ calls: [(script: RedisScript, keys: [RedisKey], arguments: [RESPArgument])], onRunID runID: String? = nil
    ) async throws -> [Result<RESPValue, RedisClientError>] {
        var results = [Result<RESPValue, RedisClientError>?](repeating: nil, count: calls.count)
        var todo = Array(calls.indices)
        for round in 0..<2 {
            var commands = [RedisCommand]()
            commands.reserveCapacity(todo.count)
            for i in todo {
                let call = calls[i]
                // The retry sends the source (EVAL caches it on the node that ran it: in a cluster, the node that lacked it).
                commands.append(round == 0 ? Self.evalsha(try await sha(of: call.script), call.script, keys: call.keys, arguments: call.arguments)
                    : Self.eval(call.script, keys: call.keys, arguments: call.arguments))
            }
            let replies = try await pipeline(commands, onRunID: runID)
            var missing = [Int]()
            for (i, reply) in zip(todo, replies) {
                if case .error(let message) = reply {
                    if message.hasPrefix("NOSCRIPT"), round == 0 {
                        missing.append(i)
                    } else {
                        results[i] = .failure(RedisClientError(.serverError, message: message))
                    }
                } else {
                    results[i] = .success(reply)
                }
            }
            if missing.isEmpty { break }
            // Redis restarted (or SCRIPT FLUSH, or a cluster node never saw the script): run only those calls again.
            todo = missing
        }
        return results.map { $0 ?? .failure(RedisClientError(.serverError, message: "NOSCRIPT after reload")) }
    }
}
