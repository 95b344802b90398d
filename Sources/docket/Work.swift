import ArgumentParser
import DocketQueue
import DocketWorker
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

extension Docket {
    struct Work: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a worker process: claim jobs from Redis and run their handlers.",
            discussion: """
                Built-in handlers: docket.noop, docket.echo, docket.sleep {"ms": N}, docket.fail {"times": k}.
                Exec handlers: --handler TYPE=COMMAND runs /bin/sh -c COMMAND with the payload on stdin and
                DOCKET_JOB_ID, DOCKET_JOB_TYPE, DOCKET_ATTEMPT in the environment.
                SIGTERM/SIGINT: stop claiming, finish running jobs within --shutdown-grace, release the rest.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: "Comma-separated queues, first has precedence (env DOCKET_QUEUES, default default).")
        var queues: String?

        @Option(help: "Jobs run at once (env DOCKET_CONCURRENCY, default 4).")
        var concurrency: Int?

        @Option(name: .customLong("handler"), help: "TYPE=COMMAND exec handler; repeatable (env DOCKET_HANDLERS, one per line).")
        var handlers: [String] = []

        @Option(help: "Lease per claimed job, renewed while it runs (env DOCKET_LEASE, default 30s).")
        var lease: String?

        @Option(help: "Time running jobs get to finish on shutdown (env DOCKET_SHUTDOWN_GRACE, default 10s).")
        var shutdownGrace: String?

        @Option(help: "How long completed jobs stay in Redis (env DOCKET_COMPLETED_TTL, default 1h).")
        var completedTTL: String?

        @Option(help: "How long dead jobs stay in Redis (env DOCKET_DEAD_TTL, default 7d).")
        var deadTTL: String?

        func run() async throws {
            let logger = try global.logger("docket.work")
            guard let url = try global.redisURL() else {
                throw ValidationError("--redis (or DOCKET_REDIS_URL) is required: the Redis the server uses")
            }
            var pool = WorkerPool.Configuration()
            pool.queues = try queueNames(queues, "DOCKET_QUEUES")
            pool.concurrency = try integer(concurrency, "DOCKET_CONCURRENCY", default: 4, name: "concurrency", range: 1...10_000)
            pool.lease = try duration(lease, "DOCKET_LEASE", default: .seconds(30), name: "lease", min: .milliseconds(100))
            pool.shutdownGrace = try duration(shutdownGrace, "DOCKET_SHUTDOWN_GRACE", default: .seconds(10), name: "shutdown-grace", min: .zero)
            var driverConfig = RedisQueueDriver.Configuration()
            driverConfig.keys = try global.keys()
            driverConfig.completedTTL = try duration(completedTTL, "DOCKET_COMPLETED_TTL", default: .seconds(3600), name: "completed-ttl")
            driverConfig.deadTTL = try duration(deadTTL, "DOCKET_DEAD_TTL", default: .seconds(7 * 86400), name: "dead-ttl")

            let registry = try handlerRegistry(handlers)

            let redis = try await connect(url, timeout: try global.redisDeadline(), logger: logger)
            let driver = RedisQueueDriver(redis: redis, configuration: driverConfig, logger: logger)
            let workers = WorkerPool(driver: driver, handlers: registry, configuration: pool, logger: logger)
            let scheduler = QueueScheduler(driver: driver, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: [
                        .init(service: redis),
                        .init(service: scheduler),
                        .init(service: workers),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            logger.info("Connected", metadata: ["redis.url": "\(url)", "worker.handlers": "\(registry.types.map(\.rawValue))"])
            try await group.run()
        }
    }
}
