import DocketQueue
import DocketTestSupport
import DocketWorker
import Foundation
import Testing

/// Exec handlers through a real pool and real `/bin/sh` processes.
@Suite("Exec handlers", .timeLimit(.minutes(1)))
struct ExecHandlerTests {
    func run(_ t: TestQueue, _ handlers: [String: String], _ body: () async throws -> Void) async throws {
        var registry = HandlerRegistry()
        for (type, command) in handlers {
            let exec = ExecHandler(command: command)
            registry.register(JobType(rawValue: type)!) { context in try await exec.run(context) }
        }
        var config = WorkerPool.Configuration()
        config.claimWait = .milliseconds(500)
        let pool = WorkerPool(driver: t.driver, handlers: registry, configuration: config, logger: TestQueue.logger)
        try await withRunningServices([pool], body)
    }

    @Test func stdinEnvironmentAndStdoutFollowTheContract() async throws {
        try await withTestQueue { t in
            let script = #"read -r body; printf '{"got":%s,"id":"%s","type":"%s","attempt":%s}' "$body" "$DOCKET_JOB_ID" "$DOCKET_JOB_TYPE" "$DOCKET_ATTEMPT""#
            try await run(t, ["sh.json": script, "sh.text": "echo plain text; echo more", "sh.silent": "true"]) {
                let json = try await t.driver.enqueue(Job(type: "sh.json", payload: #"{"n":5}"#), actor: nil).job!
                let text = try await t.driver.enqueue(Job(type: "sh.text"), actor: nil).job!
                let silent = try await t.driver.enqueue(Job(type: "sh.silent"), actor: nil).job!
                let a = try await t.finished(json.id)
                #expect(a.state == .completed)
                #expect(a.result == #"{"got":{"n":5},"id":"\#(json.id)","type":"sh.json","attempt":1}"#)
                #expect(try await t.finished(text.id).result == #""plain text\nmore\n""#)
                let s = try await t.finished(silent.id)
                #expect(s.state == .completed && s.result == nil)
            }
        }
    }

    @Test func nonZeroExitFailsWithTheEndOfStderr() async throws {
        try await withTestQueue { t in
            let command = "i=0; while [ $i -lt 2000 ]; do echo noise $i >&2; i=$((i+1)); done; echo 'final: disk full' >&2; exit 3"
            try await run(t, ["sh.fail": command]) {
                let job = try await t.driver.enqueue(Job(type: "sh.fail", maxAttempts: 1), actor: nil).job!
                let dead = try await t.finished(job.id)
                #expect(dead.state == .dead)
                let error = try #require(dead.lastError)
                #expect(error.hasPrefix("exit status 3: "))
                #expect(error.hasSuffix("final: disk full"))
                #expect(error.count < 2100, "only the tail of stderr")
            }
        }
    }

    @Test func timeoutKillsTheWholeProcessGroup() async throws {
        try await withTestQueue { t in
            let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("docket-exec-\(UUID().uuidString).pid").path
            defer { try? FileManager.default.removeItem(atPath: pidFile) }
            // A grandchild in the background: it must die with the attempt.
            try await run(t, ["sh.hang": "sleep 300 & echo $! > \(pidFile); wait"]) {
                let job = try await t.driver.enqueue(Job(type: "sh.hang", maxAttempts: 1, timeout: .milliseconds(500)), actor: nil).job!
                let dead = try await t.finished(job.id)
                #expect(dead.lastError == "timed out after 500ms")
                let pid = try #require(Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
                try await eventually("the background sleep to be gone") {
                    // Gone, or a zombie waiting for init to reap it.
                    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                    return stat.isEmpty || stat.contains(") Z ")
                }
            }
        }
    }

    @Test func handlerSpecsParse() {
        #expect(ExecHandler.parse("resize=convert -resize 50% -")?.0 == "resize")
        #expect(ExecHandler.parse("resize=convert -resize 50% -")?.1 == "convert -resize 50% -")
        #expect(ExecHandler.parse("a=b=c")?.1 == "b=c")
        for bad in ["noequals", "=cmd", "bad type=cmd", "t=", "t=   "] { #expect(ExecHandler.parse(bad) == nil, "\(bad)") }
    }
}
