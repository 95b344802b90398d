import DocketQueue
import DocketTestSupport
import Foundation
import Testing

/// The real `docket serve` on a Redis of its own (over TCP), killed with SIGKILL while jobs run and enqueues
/// arrive, then started again on the same journal: every job it acknowledged (201, or 202 spooled) completes.
@Suite("docket serve recovery (end to end)", .serialized, .timeLimit(.minutes(2)))
struct ServeRecoveryTests {
    /// Starts `docket serve` and waits until it listens; returns the process and its base URL.
    func serve(redis: RedisServer, prefix: String, journal: String, directory: URL) async throws -> (ChildProcess, String) {
        let port = try #require(redis.port)
        let process = try DocketBinary.spawn([
            "serve", "--redis", "redis://127.0.0.1:\(port)", "--prefix", prefix, "--journal", journal, "--data-dir", directory.path,
            "--port", "0", "--workers", "2", "--lease", "5s", "--log-level", "debug",
        ])
        var base = ""
        try await eventually(timeout: .seconds(60), "the server to listen") {
            if let line = process.stdout.split(separator: "\n").first(where: { $0.contains("listening on") }) {
                base = String(line.split(separator: " ").last ?? "")
                return true
            }
            return !process.isRunning
        }
        #expect(process.isRunning && !base.isEmpty, "serve is up: \(process.stderr.suffix(2000))")
        return (process, base)
    }

    /// One curl sending `count` requests over one connection; its output is each body followed by a status line.
    func curl(_ arguments: [String], urls: [String]) throws -> ChildProcess {
        try ChildProcess("/usr/bin/curl", ["-s", "-m", "30", "-w", "\n@@%{http_code}\n"] + arguments + urls)
    }

    /// (status, body) of every finished request in curl's output so far.
    static func replies(_ output: String) -> [(Int, String)] {
        let parts = output.components(separatedBy: "\n@@")
        var replies = [(Int, String)]()
        for i in 1..<max(1, parts.count) {
            let status = Int(parts[i].prefix(3)) ?? 0
            let previous = parts[i - 1]
            // A body follows the previous status line ("201\n{...}"); the first has none before it.
            let body = i == 1 ? previous : String(previous.drop { $0 != "\n" }.dropFirst())
            replies.append((status, body))
        }
        return replies
    }

    /// Ids of the jobs acknowledged (201 created, 202 spooled) in curl's output; also how many were
    /// acknowledged without a readable id (a reply cut by the kill).
    static func acknowledged(_ output: String) -> (ids: [String], unreadable: Int) {
        var ids = [String]()
        var unreadable = 0
        for (status, body) in replies(output) where status == 201 || status == 202 {
            if let id = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["id"] as? String {
                ids.append(id)
            } else {
                unreadable += 1
            }
        }
        return (ids, unreadable)
    }

    func enqueueArguments(ms: Int) -> [String] {
        ["-H", "Content-Type: application/json", "-d", #"{"type":"docket.sleep","payload":{"ms":\#(ms)}}"#]
    }

    @Test func sigkilledServeRestartedOnTheSameJournalLosesNothing() async throws {
        let redis = try RedisServer.start(tcp: true)
        defer { redis.remove() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("docket-serve-kill-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = directory.appendingPathComponent("journal.sqlite").path
        try await withTestQueue(server: redis) { t in
            let (first, base) = try await serve(redis: redis, prefix: t.keys.prefix, journal: journal, directory: directory)
            defer { first.cleanup() }

            // Enough work that the two embedded workers are busy when the server dies.
            let warmup = try curl(enqueueArguments(ms: 400), urls: Array(repeating: "\(base)/jobs", count: 30))
            defer { warmup.cleanup() }
            _ = try await warmup.wait(timeout: .seconds(90))
            var acked = Self.acknowledged(warmup.stdout).ids
            #expect(acked.count == 30, "every warm-up enqueue acknowledged: \(warmup.stdout.suffix(500))")

            // A burst of enqueues, and the server killed in the middle of it with jobs running.
            let burst = try curl(enqueueArguments(ms: 50), urls: Array(repeating: "\(base)/jobs", count: 400))
            defer { burst.cleanup() }
            try await eventually(timeout: .seconds(60), "enqueues under way and jobs running") {
                let active = try await t.driver.counts(.default).active
                return (Self.replies(burst.stdout).count >= 10 && active >= 1) || !burst.isRunning
            }
            #expect(try await t.driver.counts(.default).active >= 1, "jobs run when the server dies")
            first.signal(SIGKILL)
            #expect(try await first.wait() == 128 + SIGKILL)
            _ = try await burst.wait(timeout: .seconds(90))
            let burstAcks = Self.acknowledged(burst.stdout)
            #expect(burstAcks.unreadable <= 1, "at most the reply cut by the kill is unreadable")
            acked += burstAcks.ids
            #expect(Set(acked).count == acked.count)

            // The same journal and Redis, a new process: it accepts work, and finishes everything acknowledged.
            let (second, base2) = try await serve(redis: redis, prefix: t.keys.prefix, journal: journal, directory: directory)
            defer { second.cleanup() }
            let after = try curl(enqueueArguments(ms: 10), urls: Array(repeating: "\(base2)/jobs", count: 10))
            defer { after.cleanup() }
            _ = try await after.wait(timeout: .seconds(90))
            let afterIDs = Self.acknowledged(after.stdout).ids
            #expect(afterIDs.count == 10)
            acked += afterIDs

            var open = Set(acked)
            try await eventually(timeout: .seconds(100), "every acknowledged job to complete") {
                for id in open {
                    guard let jobID = JobID(rawValue: id) else { continue }
                    if try await t.driver.job(jobID)?.state == .completed { open.remove(id) }
                }
                return open.isEmpty
            }
            #expect(open.isEmpty, "lost: \(open.sorted())")

            // The journal agrees: every acknowledged job's history ends completed (once ingested).
            var unjournaled = acked
            try await eventually(timeout: .seconds(60), "every acknowledged job's completion to be journaled") {
                let history = try curl([], urls: unjournaled.map { "\(base2)/jobs/\($0)/events" })
                defer { history.cleanup() }
                _ = try await history.wait(timeout: .seconds(90))
                let events = Self.replies(history.stdout)
                guard events.count == unjournaled.count else { return false }
                unjournaled = zip(unjournaled, events).filter { _, reply in
                    let list = (try? JSONSerialization.jsonObject(with: Data(reply.1.utf8)) as? [String: Any])?["events"] as? [[String: Any]]
                    return !(reply.0 == 200 && list?.last?["event"] as? String == "completed")
                }.map(\.0)
                return unjournaled.isEmpty
            }
            second.signal(SIGTERM)
            #expect(try await second.wait(timeout: .seconds(60)) == 0, "clean exit: \(second.stderr.suffix(2000))")
        }
    }
}
