import DocketQueue
import DocketTestSupport
import Foundation
import Testing

/// The real `docket serve` binary with its own managed Redis: a job end to end over HTTP, then SIGTERM.
@Suite("docket serve (end to end)", .serialized)
struct ServeCommandTests {
    /// Runs curl and returns (HTTP status, body).
    func curl(_ args: [String]) async throws -> (Int, String) {
        let p = try ChildProcess("/usr/bin/curl", ["-s", "-w", "\n%{http_code}"] + args)
        defer { p.cleanup() }
        _ = try await p.wait()
        let lines = p.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    func processes(mentioning text: String) -> [Int32] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return ids.compactMap { Int32($0) }.filter { pid in
            let cmd = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            return String(decoding: cmd.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text)
        }
    }

    /// The URL `docket serve` prints once it listens ("" if it exited first).
    func listening(_ serve: ChildProcess) async throws -> String {
        var base = ""
        try await eventually("the server to listen") {
            if let line = serve.stdout.split(separator: "\n").first(where: { $0.contains("listening on") }) {
                base = String(line.split(separator: " ").last ?? "")
                return true
            }
            #expect(serve.isRunning, "serve exited: \(serve.stderr)")
            return !serve.isRunning
        }
        return base
    }

    /// Runs a `docket` command (against `server` when given): exit status, stdout, stderr.
    func cli(_ args: [String], server: String? = nil) async throws -> (Int32?, String, String) {
        let p = try DocketBinary.spawn(args + (server.map { ["--server", $0] } ?? []))
        defer { p.cleanup() }
        let status = try await p.wait()
        return (status, p.stdout, p.stderr)
    }

    @Test func serveRunsAJobEndToEndAndLeavesNothingBehind() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-serve-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A secret in the server's environment must not reach the managed redis-server.
        let serve = try DocketBinary.spawn(["serve", "--data-dir", dir.path, "--port", "0", "--workers", "2"], environment: ["DOCKET_API_SECRET_PROBE": "leak-probe"])
        defer { serve.cleanup() }
        let base = try await listening(serve)
        #expect(!base.isEmpty)
        let redisPIDs = processes(mentioning: dir.path + "/redis/redis.sock")
        #expect(!redisPIDs.isEmpty, "a managed redis-server runs")
        for pid in redisPIDs {
            let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
            #expect(!String(decoding: environ, as: UTF8.self).contains("leak-probe"), "the managed Redis gets a minimal environment")
        }
        // The data directory and the journal are private to the user.
        func mode(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1 }
        #expect(mode(dir.path) == 0o700, "data dir mode \(String(mode(dir.path), radix: 8))")
        #expect(mode(dir.appendingPathComponent("journal.sqlite").path) == 0o600)
        #expect(mode(dir.appendingPathComponent("redis").path) == 0o700)
        let (status, body) = try await curl(["-X", "POST", "\(base)/jobs", "-H", "Content-Type: application/json", "-d", #"{"type":"docket.echo","payload":{"n":42}}"#])
        #expect(status == 201, "\(body)")
        let id = try #require((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["id"] as? String)
        try await eventually("the job to complete") {
            let (_, job) = try await curl(["\(base)/jobs/\(id)"])
            return job.contains(#""state":"completed""#) && job.contains(#""result":{"n":42}"#)
        }
        try await eventually("its events to be journaled") {
            let (_, events) = try await curl(["\(base)/jobs/\(id)/events"])
            return events.contains(#""event":"completed""#)
        }
        // The thin clients: table output, --json, and the server's error with a non-zero exit.
        let enqueue = try DocketBinary.spawn(["enqueue", "docket.noop", "--queue", "cli", "--server", base])
        defer { enqueue.cleanup() }
        #expect(try await enqueue.wait() == 0 && enqueue.stdout.contains("docket.noop"))
        let show = try DocketBinary.spawn(["status", id, "--server", base])
        defer { show.cleanup() }
        #expect(try await show.wait() == 0 && show.stdout.contains("completed") && show.stdout.contains("enqueued"))
        let stats = try DocketBinary.spawn(["stats", "--json", "--server", base])
        defer { stats.cleanup() }
        #expect(try await stats.wait() == 0 && stats.stdout.contains(#""queues""#))
        let bad = try DocketBinary.spawn(["enqueue", "bad type", "--server", base])
        defer { bad.cleanup() }
        #expect(try await bad.wait() != 0 && bad.stderr.contains("400") && bad.stderr.contains("type"))
        serve.signal(SIGTERM)
        #expect(try await serve.wait(timeout: .seconds(30)) == 0, "clean exit: \(serve.stderr.suffix(2000))")
        try await eventually("the managed redis-server to stop") { processes(mentioning: dir.path).isEmpty }
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("journal.sqlite").path))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("redis/appendonlydir").path), "AOF is on")
    }
    @Test func schedulesFromAFileFireThroughServeAndTheCLIManagesSchedulesAndLimits() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-sched-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("schedules.json")
        try #"[{"name":"heartbeat","every":"1s","job":{"type":"docket.noop","queue":"ticks"},"catchUp":"none"}]"#.write(to: file, atomically: true, encoding: .utf8)
        let serve = try DocketBinary.spawn(["serve", "--data-dir", dir.appendingPathComponent("data").path, "--port", "0", "--workers", "2",
                                            "--queues", "ticks", "--schedules", file.path])
        defer { serve.cleanup() }
        let base = try await listening(serve)
        let cli = { (args: [String]) async throws -> (Int32?, String, String) in try await self.cli(args, server: base) }
        let list = try await cli(["schedule", "list"])
        #expect(list.0 == 0 && list.1.contains("heartbeat") && list.1.contains("every 1s"), "\(list)")
        // The schedule fires through the journal and the embedded workers run its jobs.
        try await eventually(timeout: .seconds(30), "a tick's job to complete") {
            let (_, page) = try await curl(["\(base)/jobs?queue=ticks&state=completed"])
            return page.contains(#""type":"docket.noop""#)
        }
        // docket export: NDJSON in chunks (here one job per request), resumed when the file exists.
        let out = dir.appendingPathComponent("export.ndjson").path
        let exported = try await cli(["export", "--out", out, "--queue", "ticks", "--chunk", "1"])
        #expect(exported.0 == 0 && exported.1.contains("exported"), "\(exported)")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.contains(#""events":["#) } && Set(lines).count == lines.count)
        let again = try await cli(["export", "--out", out, "--queue", "ticks"])
        #expect(again.0 == 0 && again.2.contains("resuming after"), "\(again)")
        let events = try await cli(["schedule", "events", "heartbeat"])
        #expect(events.0 == 0 && events.1.contains("fired") && events.1.contains("created"), "\(events)")
        #expect(try await cli(["schedule", "pause", "heartbeat"]).1.contains("yes"))
        let limit = try await cli(["limit", "add", "noop-two", "--type", "docket.noop", "--concurrency", "2", "--rate", "100/1s"])
        #expect(limit.0 == 0 && limit.1.contains("noop-two") && limit.1.contains("100/1s"), "\(limit)")
        let limits = try await cli(["limit", "list", "--json"])
        #expect(limits.0 == 0 && limits.1.contains(#""concurrency":2"#))
        let bad = try await cli(["limit", "add", "x", "--rate", "fast"])
        #expect(bad.0 != 0 && bad.2.contains("--rate"))
        #expect(try await cli(["limit", "rm", "noop-two"]).0 == 0)
        #expect(try await cli(["schedule", "rm", "heartbeat"]).0 == 0)
        let gone = try await cli(["schedule", "show", "heartbeat"])
        #expect(gone.0 != 0 && gone.2.contains("404"))
        serve.signal(SIGTERM)
        #expect(try await serve.wait(timeout: .seconds(30)) == 0, "clean exit: \(serve.stderr.suffix(2000))")
    }

    @Test func historyToolsThroughServeAndTheCLI() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-hist-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data").path
        // No workers: the jobs stay pending, so what the tools see is stable.
        let serve = try DocketBinary.spawn(["serve", "--data-dir", data, "--port", "0", "--workers", "0", "--index-field", "/customer"])
        defer { serve.cleanup() }
        let base = try await listening(serve)
        let cli = { (args: [String]) async throws -> (Int32?, String, String) in try await self.cli(args, server: base) }
        for n in 0..<6 {
            let (status, _) = try await curl(["-X", "POST", "\(base)/jobs", "-H", "Content-Type: application/json",
                                              "-d", #"{"type":"charge","queue":"pay","payload":{"customer":\#(n % 2),"n":\#(n)}}"#])
            #expect(status == 201)
        }
        try await eventually("the /customer index to be built") {
            let stats = try await self.cli(["journal", "stats", "--data-dir", data, "--json"])
            return stats.0 == 0 && stats.1.contains(#""state" : "ready""#) && stats.1.contains(#""jobs" : 6"#)
        }
        let found = try await cli(["jobs", "--where", "/customer=1", "--json"])
        #expect(found.0 == 0 && found.1.components(separatedBy: #""customer":1"#).count == 4, "\(found)")
        // A dry run by default: it prints what it would replay and creates nothing.
        let dry = try await cli(["replay", "--queue", "pay", "--where", "/customer=1"])
        #expect(dry.0 == 0 && dry.1.contains("dry run: 3 jobs match"), "\(dry)")
        let real = try await cli(["replay", "--queue", "pay", "--where", "/customer=1", "--yes", "--request-id", "e2e-1"])
        #expect(real.0 == 0 && real.1.contains("replayed 3 of 3"), "\(real)")
        let again = try await cli(["replay", "--queue", "pay", "--where", "/customer=1", "--yes", "--request-id", "e2e-1", "--json"])
        #expect(again.0 == 0 && again.1.contains(#""created":0"#), "the same request id replays nothing twice: \(again)")
        let copies = try await cli(["jobs", "--queue", "pay", "--json"])
        #expect(copies.1.components(separatedBy: #""replayOf""#).count == 4, "3 copies name their originals")
        let stats = try await self.cli(["journal", "stats", "--data-dir", data])
        #expect(stats.0 == 0 && stats.1.contains("9 jobs") && stats.1.contains("/customer") && stats.1.contains("pay"), "\(stats)")
        let bad = try await cli(["replay", "--where", "customer=1"])
        #expect(bad.0 != 0 && bad.2.contains("filter.where"), "\(bad)")
        let missing = try await self.cli(["journal", "stats", "--journal", dir.appendingPathComponent("none.sqlite").path])
        #expect(missing.0 != 0 && missing.2.contains("no journal"))
        serve.signal(SIGTERM)
        #expect(try await serve.wait(timeout: .seconds(30)) == 0, "clean exit: \(serve.stderr.suffix(2000))")
    }

    @Test func badHistoryFlagsExitWithAMessageBeforeStarting() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-flags-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [([String], [String: String], String)] = [
            (["--index-field", "customer"], [:], "--index-field"),
            (["--index-field", "result/"], [:], "--index-field"),
            ([], ["DOCKET_INDEX_FIELDS": "/ok,nope"], "--index-field"),
            (["--scan-limit", "-1"], [:], "--scan-limit"),
            (["--vacuum-interval", "soon"], [:], "--vacuum-interval"),
        ]
        for (args, environment, needle) in cases {
            let p = try DocketBinary.spawn(["serve", "--data-dir", dir.path, "--port", "0"] + args, environment: environment)
            defer { p.cleanup() }
            let status = try await p.wait(timeout: .seconds(30))
            #expect(status != 0, "\(args) \(environment)")
            #expect(p.stderr.contains(needle), "\(args): \(p.stderr)")
        }
    }
}
