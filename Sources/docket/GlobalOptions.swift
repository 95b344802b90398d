import ArgumentParser
import DocketQueue
import Foundation
import Logging

/// Flags every command shares. argument-parser reads no environment, so each flag falls back to its
/// `DOCKET_*` variable here, in one place.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Redis URL: redis://[:password@]host:port/db, unix:///path, redis+sentinel://host:port[,host:port]/master[/db], or redis+cluster://host:port[,host:port] (env DOCKET_REDIS_URL; DOCKET_REDIS_CLUSTER=true reads a redis:// URL as a cluster seed).")
    var redis: String?

    @Option(help: "Key prefix in Redis (env DOCKET_PREFIX, default docket).")
    var prefix: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env DOCKET_LOG_LEVEL, default info).")
    var logLevel: String?

    @Option(help: "Deadline for each Redis command; a Redis that does not answer within it is down (env DOCKET_REDIS_TIMEOUT, default 2s).")
    var redisTimeout: String?


    func redisDeadline() throws -> Duration {
        try duration(redisTimeout, "DOCKET_REDIS_TIMEOUT", default: .seconds(2), name: "redis-timeout", min: .milliseconds(10))
    }

    func redisURL() throws -> RedisURL? {
        guard let text = redis ?? env("DOCKET_REDIS_URL") else { return nil }
        let url: RedisURL
        do { url = try RedisURL(text) } catch { throw ValidationError("--redis: \(error)") }
        switch env("DOCKET_REDIS_CLUSTER")?.lowercased() {
        case nil, "", "false", "0", "no": return url
        case "true", "1", "yes":
            guard url.isCluster || url.asCluster.isCluster else { throw ValidationError("DOCKET_REDIS_CLUSTER=true needs a redis://host:port URL") }
            return url.asCluster
        case let other?: throw ValidationError("DOCKET_REDIS_CLUSTER: \"\(other)\" is not true or false")
        }
    }

    /// The `--redis` URL, or a `redis-server` started and owned under `directory` (stop it when done).
    func redisOrManaged(directory: URL, appendOnly: Bool, logger: Logger) async throws -> (url: RedisURL, managed: ManagedRedis?) {
        if let given = try redisURL() { return (given, nil) }
        let managed = try await ManagedRedis.start(directory: directory, appendOnly: appendOnly, logger: logger)
        return (managed.url, managed)
    }

    func keys() throws -> RedisKeys {
        let value = prefix ?? env("DOCKET_PREFIX") ?? "docket"
        guard !value.isEmpty, value.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "{") && $0 != UInt8(ascii: "}") }) else {
            throw ValidationError("--prefix: \"\(value)\" must be non-empty printable ASCII without spaces or braces")
        }
        return RedisKeys(prefix: value)
    }

    func logger(_ label: String) throws -> Logger {
        let text = logLevel ?? env("DOCKET_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else { throw ValidationError("--log-level: unknown level \"\(text)\"") }
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level
        return logger
    }
}

func env(_ name: String) -> String? {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
    return value
}

/// A duration flag with its environment fallback and default, validated.
func duration(_ flag: String?, _ variable: String, default fallback: Duration, name: String, min: Duration = .milliseconds(1)) throws -> Duration {
    guard let text = flag ?? env(variable) else { return fallback }
    guard let value = DurationText.parse(text), value >= min else {
        throw ValidationError("--\(name): \"\(text)\" is not a duration of at least \(DurationText.format(min)) (e.g. 250ms, 30s, 5m)")
    }
    return value
}

/// An integer flag with its environment fallback and default, validated against `range`.
func integer(_ flag: Int?, _ variable: String, default fallback: Int, name: String, range: ClosedRange<Int>) throws -> Int {
    let value: Int
    if let flag {
        value = flag
    } else if let text = env(variable) {
        guard let parsed = Int(text) else { throw ValidationError("\(variable): \"\(text)\" is not an integer") }
        value = parsed
    } else {
        value = fallback
    }
    guard range.contains(value) else { throw ValidationError("--\(name): \(value) is out of range \(range.lowerBound)...\(range.upperBound)") }
    return value
}

func queueNames(_ flag: String?, _ variable: String) throws -> [QueueName] {
    let text = flag ?? env(variable) ?? "default"
    var names = [QueueName]()
    for part in text.split(separator: ",", omittingEmptySubsequences: false) {
        let trimmed = part.trimmingCharacters(in: .whitespaces)
        guard let name = QueueName(rawValue: trimmed) else {
            throw ValidationError("--queues: \"\(trimmed)\" is not a queue name (1-64 chars of A-Z a-z 0-9 . _ : -)")
        }
        if !names.contains(name) { names.append(name) }
    }
    return names
}

/// Connects to Redis and checks it answers, or fails with a message naming the URL.
func connect(_ url: RedisURL, timeout: Duration = .seconds(2), logger: Logger) async throws -> RedisClient {
    var configuration = RedisClient.Configuration(url: url)
    configuration.commandTimeout = timeout
    configuration.connectTimeout = timeout
    let client = RedisClient(configuration: configuration, logger: logger)
    do {
        _ = try await client.send("PING")
        try await client.loadScripts()
    } catch {
        client.shutdown()
        throw CLIError("cannot reach Redis at \(url): \(error)")
    }
    return client
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
