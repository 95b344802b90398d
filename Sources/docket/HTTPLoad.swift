import DocketQueue
import DocketWorker
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive HTTP/1.1 connection that carries one request at a time.
final class HTTPConnection {
    private var responses: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let requests: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private let host: String

    private init(_ responses: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
                 _ requests: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, host: String) {
        self.responses = responses
        self.requests = requests
        self.host = host
    }

    /// Connects to `host:port`, runs `body` with the connection, then closes it.
    static func with<T: Sendable>(host: String, port: Int, _ body: (HTTPConnection) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(HTTPConnection(inbound.makeAsyncIterator(), outbound, host: "\(host):\(port)"))
        }
    }

    /// Sends one request (a JSON body if any) and reads the whole answer; with `sink`, the body goes there a chunk at
    /// a time instead (a streamed answer is never held whole).
    func send(_ method: HTTPMethod, _ path: String, json body: ByteBuffer? = nil, headers extra: [(String, String)] = [],
              sink: ((ByteBuffer) -> Void)? = nil) async throws -> (status: Int, body: ByteBuffer) {
        var headers: HTTPHeaders = ["Host": host]
        for (name, value) in extra { headers.add(name: name, value: value) }
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        }
        var parts: [HTTPClientRequestPart] = [.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers))]
        if let body { parts.append(.body(.byteBuffer(body))) }
        parts.append(.end(nil))
        try await requests.write(contentsOf: parts)
        var status = 0
        var answer = ByteBuffer()
        while let part = try await responses.next() {
            switch part {
            case .head(let head): status = Int(head.status.code)
            case .body(var chunk):
                if let sink { sink(chunk) } else { answer.writeBuffer(&chunk) }
            case .end: return (status, answer)
            }
        }
        throw CLIError("\(host) closed the connection")
    }
}

/// HTTP load on `docket serve`: POSTs of one body over keep-alive connections, counted to a number of requests,
/// by the built-in generator (SwiftNIO) or by wrk.
struct HTTPLoad: Sendable {
    var host = "127.0.0.1"
    var port: Int
    var path: String
    var body: String
    /// Requests in flight (connections).
    var connections: Int
    /// Jobs each request enqueues (the progress line and `jobs` count jobs).
    var jobsPerRequest: Int

    struct Result: Sendable {
        var requests: Int
        var seconds: Double
        /// Per-request latency in ms.
        var latency: Percentiles?
        /// CPU seconds the load generator used.
        var clientCPU: Double
    }

    /// Sends `progress.total / jobsPerRequest` requests; every answer must be 2xx.
    func builtin(_ progress: BenchProgress) async throws -> Result {
        let buffer = ByteBuffer(string: body)
        let (host, port, path, perRequest) = (host, port, path, jobsPerRequest)
        let cpu = CPUTime.own()
        let measured = try await measure(progress, inFlight: connections) { _ in
            try await HTTPConnection.with(host: host, port: port) { connection in
                try await timedCalls(progress, units: perRequest) {
                    let (status, answer) = try await connection.send(.POST, path, json: buffer)
                    guard (200..<300).contains(status) else {
                        throw CLIError("POST \(path) answered \(status): \(String(buffer: answer).prefix(300))")
                    }
                    return perRequest
                }
            }
        }
        return Result(requests: measured.calls, seconds: measured.seconds, latency: measured.latency, clientCPU: CPUTime.own() - cpu)
    }

    /// The same load by wrk (C, so the client takes less of the CPU the server needs). Each wrk thread stops after
    /// its share of the requests (a Lua `response` hook); wrk itself would sleep out its `-d`, so it gets SIGINT
    /// once its threads are gone. `observe` reads the jobs done (from Redis) for the progress line.
    func wrk(_ binary: String, _ progress: BenchProgress, children: BenchChildren, name: String,
             observe: @escaping @Sendable () async throws -> Int) async throws -> Result {
        let threads = min(2, connections)
        let perThread = max(1, progress.total / jobsPerRequest / threads)
        let script = children.directory.appendingPathComponent("\(name).lua")
        try lua.write(to: script, atomically: true, encoding: .utf8)
        let cpu = CPUTime.own(children: true)
        let child = try children.spawn(
            name, binary, ["-t\(threads)", "-c\(connections)", "-d3600s", "--timeout", "60s", "-s", script.path, "http://\(host):\(port)\(path)", "--", "\(perThread)"],
            exits: true)
        try await progress.show {
            var sawThreads = false
            var observed = ContinuousClock.now
            while child.process.exitStatus() == nil {
                let running = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/task").count) ?? 0
                if running > 1 {
                    sawThreads = true
                } else if sawThreads {
                    child.process.signal(SIGINT)
                    break
                }
                if observed.duration(to: .now) > .milliseconds(250) {
                    progress.observe(try await observe())
                    observed = .now
                }
                try children.check()
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        let status = try await child.process.exit()
        let output = (try? String(contentsOfFile: child.stdout, encoding: .utf8)) ?? ""
        guard status == 0, let line = output.split(separator: "\n").first(where: { $0.hasPrefix("DOCKET-WRK ") }) else {
            throw CLIError("wrk exited with status \(status):\n\(BenchChildren.tail(child.stderr))\n\(output.suffix(1000))")
        }
        let n = line.split(separator: " ").dropFirst().map { Double($0) ?? 0 }
        guard n.count == 11 else { throw CLIError("cannot read wrk's summary: \(line)") }
        let (requests, micros, non2xx, socketErrors) = (Int(n[0]), n[1], Int(n[2]), Int(n[3] + n[4] + n[5] + n[6]))
        guard non2xx == 0, socketErrors == 0 else {
            throw CLIError("wrk: \(non2xx) answers to POST \(path) were 4xx/5xx and \(socketErrors) requests failed (connect, read, write, timeout)")
        }
        let latency = Percentiles(p50: n[7] / 1000, p95: n[8] / 1000, p99: n[9] / 1000, max: n[10] / 1000, samples: requests)
        return Result(requests: requests, seconds: micros / 1e6, latency: latency, clientCPU: CPUTime.own(children: true) - cpu)
    }

    /// wrk's script: POST `body`; each thread stops after `limit` answers; `done` prints one line of figures.
    private var lua: String {
        """
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        wrk.body = [==[\(body)]==]
        local limit, count = 0, 0
        function init(args) limit = tonumber(args[1]) end
        function response(status, headers, body)
          count = count + 1
          if count >= limit then wrk.thread:stop() end
        end
        function done(summary, latency, requests)
          local e = summary.errors
          io.write(string.format("DOCKET-WRK %d %d %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
            e.status, e.connect, e.read, e.write, e.timeout,
            latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
        end

        """
    }
}
