import ArgumentParser
import DocketJournal
import DocketQueue
import DocketServer
import DocketWorker
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

extension Docket {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the API server: REST API, journal ingestion, scheduler, spool, retention and embedded workers.",
            discussion: """
                Without --redis it starts and owns a redis-server (AOF on, unix socket only) under --data-dir and stops it on exit.
                SIGTERM/SIGINT shut everything down in order: workers and the API first, the journal writer and Redis last.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: "Address to listen on (env DOCKET_HOST, default 127.0.0.1).")
        var host: String?
        @Option(help: "Port to listen on (env DOCKET_PORT, default 8080; 0 picks a free one).")
        var port: Int?
        @Option(help: "Embedded worker concurrency; 0 = API only (env DOCKET_WORKERS, default 4).")
        var workers: Int?
        @Option(help: "Queues the embedded workers claim from (env DOCKET_QUEUES, default default).")
        var queues: String?
        @Option(name: .customLong("handler"), help: "TYPE=COMMAND exec handler for the embedded workers; repeatable (env DOCKET_HANDLERS).")
        var handlers: [String] = []
        @Option(help: "Data directory for the managed Redis and the journal (env DOCKET_DATA_DIR, default ./.docket).")
        var dataDir: String?
        @Option(help: "Journal file (env DOCKET_JOURNAL, default <data-dir>/journal.sqlite).")
        var journal: String?
        @Option(help: "Comma-separated API keys; empty = no auth (env DOCKET_API_KEY). Prefer --api-key-file: arguments show in ps.")
        var apiKey: String?
        @Option(help: "File holding the API keys, comma- or newline-separated (env DOCKET_API_KEY_FILE).")
        var apiKeyFile: String?
        @Option(help: "Extra Host names a loopback server answers, comma-separated (env DOCKET_ALLOWED_HOSTS).")
        var allowedHosts: String?
        @Option(help: "Extra origins allowed to change state, comma-separated, e.g. https://admin.example.com (env DOCKET_ALLOWED_ORIGINS).")
        var allowedOrigins: String?
        @Option(help: "Proxy addresses whose X-Forwarded-For names the client, comma-separated (env DOCKET_TRUSTED_PROXIES).")
        var trustedProxies: String?
        @Option(help: "Requests per minute per client, 0 = unlimited (env DOCKET_RATE_LIMIT, default 0).")
        var rateLimit: Int?
        @Option(help: "Largest request body in bytes (env DOCKET_MAX_BODY, default 1048576).")
        var maxBody: Int?
        @Option(help: "How long completed jobs stay in Redis (env DOCKET_COMPLETED_TTL, default 1h).")
        var completedTTL: String?
        @Option(help: "How long dead jobs stay in Redis (env DOCKET_DEAD_TTL, default 7d).")
        var deadTTL: String?
        @Option(help: "How long the journal keeps finished jobs (env DOCKET_JOURNAL_RETENTION, default 30d).")
        var journalRetention: String?
        @Option(help: "A journal silent this long stops holding back stream trimming (env DOCKET_JOURNAL_STALE, default 1h).")
        var journalStale: String?
        @Option(help: "Lease per claimed job (env DOCKET_LEASE, default 30s).")
        var lease: String?
        @Option(help: "Time running jobs get on shutdown (env DOCKET_SHUTDOWN_GRACE, default 10s).")
        var shutdownGrace: String?
        @Option(help: "JSON file of schedules (a list of POST /schedules bodies) created or updated at start (env DOCKET_SCHEDULES).")
        var schedules: String?
        @Option(help: "JSON file of limits (a list of POST /limits bodies) created or updated at start (env DOCKET_LIMITS).")
        var limits: String?
        @Option(name: .customLong("retention"), help: "NAME=DURATION: keep finished jobs of the queue or type NAME this long instead of --journal-retention; repeatable (env DOCKET_RETENTION, comma-separated).")
        var retentionRules: [String] = []
        @Option(name: .customLong("index-field"), help: "A payload field (/customer) or result field (result/status) to index for searches; repeatable (env DOCKET_INDEX_FIELDS, comma-separated). Built in the background.")
        var indexFields: [String] = []
        @Option(help: "The most jobs a search on fields without an index may read; 0 = no bound (env DOCKET_SCAN_LIMIT, default 200000).")
        var scanLimit: Int?
        @Option(help: "How often the journal returns free pages to the file system (env DOCKET_VACUUM_INTERVAL, default 10m; 0 = never).")
        var vacuumInterval: String?

        func run() async throws {
            let logger = try global.logger("docket.serve")
            let host = self.host ?? env("DOCKET_HOST") ?? "127.0.0.1"
            let port = try integer(self.port, "DOCKET_PORT", default: 8080, name: "port", range: 0...65535)
            let workerCount = try integer(workers, "DOCKET_WORKERS", default: 4, name: "workers", range: 0...10_000)
            var api = DocketAPI.Configuration()
            // Files this process creates (journal, WAL, the managed Redis' RDB and AOF) are private to the user.
            umask(0o077)
            var keys = apiKey ?? env("DOCKET_API_KEY") ?? ""
            if let file = apiKeyFile ?? env("DOCKET_API_KEY_FILE") {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CLIError("--api-key-file: cannot read \(file)") }
                keys += "," + text.replacingOccurrences(of: "\n", with: ",")
            }
            api.apiKeys = keys.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            func list(_ value: String?, _ name: String) -> Set<String> {
                Set((value ?? env(name) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            }
            api.loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased()) || host.hasPrefix("127.")
            api.allowedHosts = list(allowedHosts, "DOCKET_ALLOWED_HOSTS")
            api.allowedOrigins = list(allowedOrigins, "DOCKET_ALLOWED_ORIGINS")
            api.trustedProxies = list(trustedProxies, "DOCKET_TRUSTED_PROXIES")
            api.rateLimit = try integer(rateLimit, "DOCKET_RATE_LIMIT", default: 0, name: "rate-limit", range: 0...10_000_000)
            api.maxBody = try integer(maxBody, "DOCKET_MAX_BODY", default: 1 << 20, name: "max-body", range: 1024...(64 << 20))
            var driverConfig = RedisQueueDriver.Configuration()
            driverConfig.keys = try global.keys()
            driverConfig.completedTTL = try duration(completedTTL, "DOCKET_COMPLETED_TTL", default: .seconds(3600), name: "completed-ttl")
            driverConfig.deadTTL = try duration(deadTTL, "DOCKET_DEAD_TTL", default: .seconds(7 * 86400), name: "dead-ttl")
            let retention = try duration(journalRetention, "DOCKET_JOURNAL_RETENTION", default: .seconds(30 * 86400), name: "journal-retention", min: .seconds(1))
            var rules = [String: Duration]()
            for rule in retentionRules.isEmpty ? (env("DOCKET_RETENTION") ?? "").split(separator: ",").map(String.init) : retentionRules {
                let parts = rule.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, QueueName(rawValue: parts[0]) != nil || JobType(rawValue: parts[0]) != nil,
                    let d = DurationText.parse(parts[1]), d >= .seconds(1)
                else { throw ValidationError("--retention: \"\(rule)\" is not NAME=DURATION (a queue or job type, e.g. payments=365d)") }
                rules[parts[0]] = d
            }
            let fields = try (indexFields.isEmpty ? (env("DOCKET_INDEX_FIELDS") ?? "").split(separator: ",").map(String.init) : indexFields)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { spec in
                    guard let field = FieldIndexer.Field(spec) else {
                        throw ValidationError("--index-field: \"\(spec)\" is not a JSON pointer into the payload (/customer) or the result (result/status)")
                    }
                    return field
                }
            api.scanLimit = try integer(scanLimit, "DOCKET_SCAN_LIMIT", default: 200_000, name: "scan-limit", range: 0...1_000_000_000)
            let vacuumEvery = try duration(vacuumInterval, "DOCKET_VACUUM_INTERVAL", default: .seconds(600), name: "vacuum-interval", min: .zero)
            var ingestConfig = JournalIngestor.Configuration()
            ingestConfig.staleAfter = try duration(journalStale, "DOCKET_JOURNAL_STALE", default: .seconds(3600), name: "journal-stale", min: .seconds(1))
            var pool = WorkerPool.Configuration()
            pool.queues = try queueNames(queues, "DOCKET_QUEUES")
            pool.concurrency = max(1, workerCount)
            pool.lease = try duration(lease, "DOCKET_LEASE", default: .seconds(30), name: "lease", min: .milliseconds(100))
            pool.shutdownGrace = try duration(shutdownGrace, "DOCKET_SHUTDOWN_GRACE", default: .seconds(10), name: "shutdown-grace", min: .zero)
            let registry = try handlerRegistry(handlers)
            /// A `--limits` / `--schedules` file, parsed (and so validated) before anything starts.
            func definitions<T>(_ path: String?, _ flag: String, _ parse: (String) throws -> [T]) throws -> [T] {
                guard let path else { return [] }
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("--\(flag): cannot read \(path)") }
                do { return try parse(text) } catch let error as APIError { throw CLIError("--\(flag) \(path): \(error.message)") }
            }
            let fileLimits = try definitions(limits ?? env("DOCKET_LIMITS"), "limits") { try DocketAPI.limits(file: $0) }
            let fileSchedules = try definitions(schedules ?? env("DOCKET_SCHEDULES"), "schedules") { try DocketAPI.schedules(file: $0) }
            let dataDir = URL(fileURLWithPath: dataDir ?? env("DOCKET_DATA_DIR") ?? ".docket", isDirectory: true)
            let journalPath = journal ?? env("DOCKET_JOURNAL") ?? dataDir.appendingPathComponent("journal.sqlite").path
            try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])

            // Redis: the given one, or one we start and own.
            let (url, managed) = try await global.redisOrManaged(directory: dataDir.appendingPathComponent("redis"), appendOnly: true, logger: logger)

            defer { managed?.stop() }
            var redisConfig = RedisClient.Configuration(url: url)
            redisConfig.commandTimeout = try global.redisDeadline()
            redisConfig.connectTimeout = redisConfig.commandTimeout
            let redis = RedisClient(configuration: redisConfig, logger: logger)
            if (try? await redis.loadScripts()) == nil {
                logger.warning("Redis unreachable at start; accepting jobs into the journal spool until it is back", metadata: ["redis.url": "\(url)"])
            }
            let journal: Journal
            do { journal = try Journal.open(path: journalPath, logger: logger) } catch {
                throw CLIError("cannot open the journal at \(journalPath): \(error)")
            }
            let driver = RedisQueueDriver(redis: redis, configuration: driverConfig, logger: logger)
            let queue = JournaledQueue(journal: journal, driver: driver, logger: logger)
            let ingestor = JournalIngestor(journal: journal, driver: driver, configuration: ingestConfig, logger: logger)
            let apiService = DocketAPI(queue: queue, ingestor: ingestor, configuration: api)
            let app = Application(
                router: apiService.router(),
                // A client that sends nothing for a minute loses its connection (no stalled sockets pile up).
                server: .http1(configuration: .init(idleTimeout: .seconds(60))),
                configuration: .init(address: .hostname(host, port: port), serverName: "docket"),
                onServerRunning: { channel in
                    // Printed for scripts and tests that start the server on port 0.
                    let line = "docket serve: listening on http://\(host):\(channel.localAddress?.port ?? port)\n"
                    FileHandle.standardOutput.write(Data(line.utf8))
                },
                logger: logger)
            // One recovery check before the API listens: a fresh Redis is vouched for (so the first enqueues answer
            // 201, not 202), and a Redis that lost data is rebuilt before anyone can see it half empty.
            let recovery = RecoveryService(recovery: Recovery(journal: journal, driver: driver, logger: logger), logger: logger)
            do { try await recovery.check() } catch {
                logger.warning("Recovery check at start failed; retrying in the background", metadata: ["error": "\(error)"])
            }
            /// Applies a file's definitions to Redis (after the recovery check, so a rebuilt Redis gets them too).
            func apply(_ count: Int, _ flag: String, _ body: () async throws -> (created: Int, updated: Int)) async throws {
                guard count > 0 else { return }
                do {
                    let applied = try await body()
                    logger.info("\(flag) file applied", metadata: ["\(flag).created": "\(applied.created)", "\(flag).updated": "\(applied.updated)"])
                } catch {
                    throw CLIError("--\(flag): cannot apply to Redis at \(url): \(error)")
                }
            }
            try await apply(fileLimits.count, "limits") { try await DocketAPI.apply(fileLimits, to: driver) }
            try await apply(fileSchedules.count, "schedules") { try await DocketAPI.apply(fileSchedules, to: driver) }
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: redis),
                .init(service: journal.writer),
                .init(service: ingestor),
                .init(service: SpoolPusher(queue: queue, logger: logger)),
                .init(service: JournalRetention(journal: journal, retention: retention, rules: rules, logger: logger)),
                // Done once the declared fields are built (or dropped): that must not stop the server.
                .init(service: FieldIndexer(journal: journal, fields: fields, logger: logger), successTerminationBehavior: .ignore),
                .init(service: JournalVacuum(journal: journal, interval: vacuumEvery, logger: logger)),
                .init(service: QueueScheduler(driver: driver, logger: logger)),
                .init(service: recovery),
                .init(service: ScheduleService(queue: queue, logger: logger)),
                .init(service: app),
            ]
            if workerCount > 0 {
                services.append(.init(service: WorkerPool(driver: driver, handlers: registry, configuration: pool, logger: logger)))
            }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            logger.info("Starting", metadata: ["redis.url": "\(url)", "journal.path": "\(journalPath)", "worker.concurrency": "\(workerCount)"])
            try await group.run()
        }
    }
}

/// Built-in handlers plus `--handler TYPE=COMMAND` exec handlers (or `DOCKET_HANDLERS`, one per line).
func handlerRegistry(_ specs: [String]) throws -> HandlerRegistry {
    var registry = HandlerRegistry()
    Builtins.register(into: &registry)
    let all = specs.isEmpty ? (env("DOCKET_HANDLERS")?.split(separator: "\n").map(String.init) ?? []) : specs
    for spec in all {
        guard let (type, command) = ExecHandler.parse(spec) else {
            throw ValidationError("--handler: \"\(spec)\" is not TYPE=COMMAND (TYPE: 1-128 chars of A-Z a-z 0-9 . _ : -)")
        }
        let exec = ExecHandler(command: command)
        registry.register(type) { context in try await exec.run(context) }
    }
    return registry
}
