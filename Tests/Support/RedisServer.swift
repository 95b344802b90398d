import DocketQueue
import Foundation
import Logging

/// A real `redis-server` started for tests: unix socket (and optionally a TCP port) in its own temp dir.
/// A watchdog shell kills it if the test process dies first, so no server outlives the tests.
public final class RedisServer: @unchecked Sendable {  // mutable pid guarded by `lock`
    public let directory: URL
    public let socketPath: String
    public let port: Int?
    private let appendOnly: Bool
    private let extraArguments: [String]
    private let lock = NSLock()
    private var process: ChildProcess?

    /// One server shared by every test of the process (tests isolate themselves by key prefix).
    public static let shared: RedisServer = {
        do { return try RedisServer.start() } catch { preconditionFailure("cannot start redis-server: \(error)") }
    }()

    private init(directory: URL, port: Int?, appendOnly: Bool, arguments: [String]) {
        self.directory = directory
        self.extraArguments = arguments
        self.socketPath = directory.appendingPathComponent("redis.sock").path
        self.port = port
        self.appendOnly = appendOnly
    }

    /// Starts a server; `port: true` also listens on a free loopback TCP port.
    /// `arguments` go to redis-server after the defaults (e.g. cluster mode).
    public static func start(tcp: Bool = false, appendOnly: Bool = false, arguments: [String] = []) throws -> RedisServer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-redis-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // A free port can be taken by someone else before Redis binds it: try a few.
        var attempt = 0
        while true {
            let server = RedisServer(directory: dir, port: tcp ? try freePort() : nil, appendOnly: appendOnly, arguments: arguments)
            do {
                try server.launch()
                return server
            } catch {
                attempt += 1
                if attempt >= 3 { throw error }
            }
        }
    }

    public var url: RedisURL { RedisURL(endpoint: .unix(path: socketPath)) }
    public var tcpURL: RedisURL? { port.map { RedisURL(endpoint: .tcp(host: "127.0.0.1", port: $0)) } }
    public var pid: Int32? { lock.withLock { process?.pid } }

    private func launch() throws {
        let server = try ChildProcess(Self.redisServerPath, [
            "--port", "\(port ?? 0)", "--bind", "127.0.0.1", "--unixsocket", socketPath, "--unixsocketperm", "700",
            "--dir", directory.path, "--save", "", "--appendonly", appendOnly ? "yes" : "no",
            "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning",
            "--logfile", directory.appendingPathComponent("redis.log").path,
        ] + extraArguments, outputDirectory: directory)
        lock.withLock { process = server }
        // Watchdog: when the test process is gone, kill this server (only while it is still ours).
        let me = ProcessInfo.processInfo.processIdentifier
        _ = try ChildProcess("/bin/sh", ["-c", "while kill -0 \(me) 2>/dev/null && kill -0 \(server.pid) 2>/dev/null; do sleep 1; done; kill -9 \(server.pid) 2>/dev/null"], outputDirectory: directory)
        try waitUntilReady()
    }

    private func waitUntilReady() throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let status = lock.withLock({ process })?.exitStatus() {
                let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
                throw TestSupportError("redis-server exited with \(status): \(log.suffix(500))")
            }
            if FileManager.default.fileExists(atPath: socketPath), (try? cli("PING"))?.contains("PONG") == true { return }
            usleep(10_000)
        }
        throw TestSupportError("redis-server did not start in \(directory.path)")
    }

    /// Runs `redis-cli` against this server and returns its output.
    @discardableResult
    public func cli(_ args: String...) throws -> String {
        let cli = try ChildProcess("/usr/bin/redis-cli", ["-s", socketPath] + args, outputDirectory: directory)
        defer { cli.cleanup() }
        guard cli.waitBlocking(timeout: 10) != nil else { throw TestSupportError("redis-cli hung") }
        return cli.stdout
    }

    /// Kills the server with SIGKILL (a crash: nothing flushed beyond what AOF already has).
    public func kill() {
        guard let p = lock.withLock({ process }) else { return }
        p.signal(SIGKILL)
        p.waitBlocking(timeout: 10)
        lock.withLock { process = nil }
        try? FileManager.default.removeItem(atPath: socketPath)
    }

    /// Stops the server with SIGTERM and waits for it.
    public func stop() {
        guard let p = lock.withLock({ process }) else { return }
        p.signal(SIGTERM)
        if p.waitBlocking(timeout: 10) == nil { p.cleanup() }
        lock.withLock { process = nil }
    }

    /// Starts the server again on the same socket, port and directory.
    public func restart() throws {
        if pid != nil { stop() }
        try launch()
    }

    /// Stops the server and removes its directory.
    public func remove() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    static let redisServerPath: String = {
        for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        return "/usr/bin/redis-server"
    }()

    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { throw TestSupportError("no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
