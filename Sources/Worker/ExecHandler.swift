import DocketQueue
import Foundation
import Logging

/// Runs a job as `/bin/sh -c COMMAND` (SPEC §5): payload JSON on stdin, `DOCKET_JOB_ID`, `DOCKET_JOB_TYPE`
/// and `DOCKET_ATTEMPT` in the environment. Exit 0 completes the job with stdout as the result (JSON if
/// it parses, else a JSON string; at most `maxOutput` bytes); another exit fails the attempt with the end
/// of stderr. On cancellation (timeout, shutdown past grace) the whole process group is killed.
public struct ExecHandler: Sendable {
    public let command: String
    public var maxOutput = 1 << 20
    public var stderrTail = 2048
    let scratch: URL

    public init(command: String, scratch: URL = FileManager.default.temporaryDirectory) {
        self.command = command
        self.scratch = scratch
    }

    /// Parses `TYPE=COMMAND` (as given to `--handler`).
    public static func parse(_ spec: String) -> (JobType, String)? {
        guard let eq = spec.firstIndex(of: "="), let type = JobType(rawValue: String(spec[..<eq])) else { return nil }
        let command = String(spec[spec.index(after: eq)...])
        return command.trimmingCharacters(in: .whitespaces).isEmpty ? nil : (type, command)
    }

    public func run(_ context: JobContext) async throws -> String? {
        let base = scratch.appendingPathComponent("docket-exec-\(context.job.id.rawValue)-\(context.attempt)")
        let files = (stdin: base.path + ".in", stdout: base.path + ".out", stderr: base.path + ".err")
        defer { for path in [files.stdin, files.stdout, files.stderr] { try? FileManager.default.removeItem(atPath: path) } }
        try Data(context.payload.utf8).write(to: URL(fileURLWithPath: files.stdin))
        var environment = ProcessInfo.processInfo.environment
        environment["DOCKET_JOB_ID"] = context.job.id.rawValue
        environment["DOCKET_JOB_TYPE"] = context.job.type.rawValue
        environment["DOCKET_ATTEMPT"] = String(context.attempt)
        environment["DOCKET_QUEUE"] = context.job.queue.rawValue
        let child = try SpawnedProcess(
            "/bin/sh", ["-c", command], environment: environment, stdin: files.stdin, stdout: files.stdout,
            stderr: files.stderr, newProcessGroup: true)
        context.logger.debug("Exec handler started", metadata: ["process.pid": "\(child.pid)"])
        let status: Int32
        do {
            status = try await child.exit()
        } catch {
            // Timeout or shutdown: nothing the command started may outlive the attempt.
            child.signal(SIGKILL, group: true)
            // Escape hatch: this task is cancelled, so reaping (a few ms after SIGKILL) runs in a task of
            // its own; otherwise the child would stay a zombie.
            Task { _ = try? await child.exit() }
            throw error
        }
        // The shell may have left background children in the group: end them with the attempt.
        child.signal(SIGKILL, group: true)
        guard status == 0 else {
            let tail = Self.read(files.stderr, last: stderrTail).trimmingCharacters(in: .whitespacesAndNewlines)
            throw JobFailure(tail.isEmpty ? "exit status \(status)" : "exit status \(status): \(tail)")
        }
        let output = Self.read(files.stdout, first: maxOutput)
        return output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : JSONText.normalized(output)
    }

    private static func read(_ path: String, first: Int? = nil, last: Int? = nil) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        if let last {
            let size = (try? handle.seekToEnd()) ?? 0
            try? handle.seek(toOffset: size > UInt64(last) ? size - UInt64(last) : 0)
            return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        }
        return String(decoding: (try? handle.read(upToCount: first ?? Int.max)) ?? Data(), as: UTF8.self)
    }
}
