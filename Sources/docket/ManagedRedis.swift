import DocketQueue
import DocketWorker
import Foundation
import Logging
import NIOCore
import NIOPosix

/// A `redis-server` child owned by this process, files under `directory`, stopped with SIGTERM (then SIGKILL)
/// when `stop()` is called. It listens on a unix socket only (no TCP), or with `tcp` on 127.0.0.1 only, on a
/// free port (the benchmarks: the loopback path users' remote workers take).
final class ManagedRedis: Sendable {
    let directory: URL
    let process: SpawnedProcess
    let url: RedisURL

    /// Starts the server and waits until it accepts PING.
    /// What the managed redis-server inherits: only what it needs to run, never the API key or other secrets.
    static var childEnvironment: [String: String] {
        let env = ProcessInfo.processInfo.environment
        return ["PATH": env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin", "LANG": env["LANG"] ?? "C.UTF-8"]
    }

    static func start(directory: URL, appendOnly: Bool, tcp: Bool = false, logger: Logger) async throws -> ManagedRedis {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let binary else {
            throw CLIError("redis-server not found: install it with `apt-get install redis-server`, or pass --redis URL")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let socket = directory.appendingPathComponent("redis.sock").path
        let pidFile = directory.appendingPathComponent("redis.pid").path
        let url: RedisURL
        let listen: [String]
        if tcp {
            let port = try await freeLoopbackPort()
            url = RedisURL(endpoint: .tcp(host: "127.0.0.1", port: port))
            listen = ["--port", "\(port)", "--bind", "127.0.0.1"]
        } else {
            url = RedisURL(endpoint: .unix(path: socket))
            listen = ["--port", "0", "--unixsocket", socket, "--unixsocketperm", "700"]
            // A server left behind by a docket that was killed: ours only if its command line names our socket.
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let old = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                let cmdline = try? String(contentsOfFile: "/proc/\(old)/cmdline", encoding: .utf8), cmdline.contains(socket)
            {
                logger.warning("Stopping a managed redis-server left by an earlier run", metadata: ["process.pid": "\(old)"])
                kill(old, SIGTERM)
                for _ in 0..<500 where kill(old, 0) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            try? FileManager.default.removeItem(atPath: socket)
        }
        let log = directory.appendingPathComponent("redis.log").path
        let process = try SpawnedProcess(
            binary,
            listen + [
                "--dir", directory.path, "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "everysec", "--save", "",
                "--daemonize", "no", "--logfile", log, "--pidfile", pidFile,
            ],
            environment: Self.childEnvironment, stdin: "/dev/null", stdout: "/dev/null", stderr: log + ".stderr",
            newProcessGroup: true)
        let redis = ManagedRedis(directory: directory, process: process, url: url)
        let client = RedisClient(url: redis.url, logger: logger)
        defer { client.shutdown() }
        do {
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                if let status = process.exitStatus() {
                    throw CLIError("redis-server exited with status \(status); see \(log)")
                }
                if tcp || FileManager.default.fileExists(atPath: socket), await client.ping() {
                    logger.info("Started managed redis-server", metadata: ["redis.url": "\(redis.url)", "process.pid": "\(process.pid)"])
                    return redis
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw CLIError("redis-server did not start within 15s; see \(log)")
        } catch {
            redis.stop()  // also when cancelled: no server is left behind
            throw error
        }
    }

    private init(directory: URL, process: SpawnedProcess, url: RedisURL) {
        self.directory = directory
        self.process = process
        self.url = url
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and reaps it.
    func stop() {
        process.signal(SIGTERM)
        for _ in 0..<1000 {
            if process.exitStatus() != nil { return }
            usleep(10_000)
        }
        process.signal(SIGKILL)
        for _ in 0..<100 where process.exitStatus() == nil { usleep(10_000) }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (bound to port 0, then closed).
func freeLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port
    try await channel.close()
    guard let port else { throw CLIError("cannot find a free TCP port on 127.0.0.1") }
    return port
}
