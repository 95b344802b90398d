import DocketWorker
import Foundation

/// A child process for tests: `SpawnedProcess` (clean signal mask, so it reacts to SIGTERM even when
/// spawned from the test runner's threads) with its output in temp files and a blocking wait for teardown.
public final class ChildProcess: Sendable {
    let process: SpawnedProcess
    public let stdoutPath: String
    public let stderrPath: String
    public var pid: pid_t { process.pid }

    /// Spawns `executable` with `arguments`; `environment` is added to this process's environment.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil,
        outputDirectory: URL = FileManager.default.temporaryDirectory
    ) throws {
        let tag = "\(URL(fileURLWithPath: executable).lastPathComponent)-\(UUID().uuidString.prefix(8))"
        stdoutPath = outputDirectory.appendingPathComponent("\(tag).out").path
        stderrPath = outputDirectory.appendingPathComponent("\(tag).err").path
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process = try SpawnedProcess(
            executable, arguments, environment: env, stdin: stdin ?? "/dev/null", stdout: stdoutPath, stderr: stderrPath,
            newProcessGroup: false)
    }

    public func signal(_ signal: Int32) { process.signal(signal) }

    /// The exit status once the child has exited (its code, or 128 + signal), nil while it runs.
    public func exitStatus() -> Int32? { process.exitStatus() }

    public var isRunning: Bool { exitStatus() == nil }

    /// Waits (polling) until the child exits or `timeout` passes.
    @discardableResult
    public func wait(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = exitStatus() { return status }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestSupportError("process \(pid) still running after \(timeout)")
    }

    /// Synchronous wait for short-lived helpers (redis-cli) and teardown.
    @discardableResult
    public func waitBlocking(timeout: TimeInterval = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let status = exitStatus() { return status }
            usleep(2_000)
        }
        return nil
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Kills the child if it still runs, reaps it and removes its output files.
    public func cleanup() {
        if isRunning {
            signal(SIGKILL)
            waitBlocking(timeout: 5)
        }
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}
