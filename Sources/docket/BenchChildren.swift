import DocketWorker
import Foundation
import Synchronization
import UnixSignals

/// The processes a benchmark starts (`docket serve`, `docket work`, wrk, redis-server), each in a process
/// group of its own with its output in files under `directory`. `stopAll()` ends every one still running,
/// by pid, newest first (workers before the server, the server before Redis).
final class BenchChildren: Sendable {
    struct Child: Sendable {
        let name: String
        let process: SpawnedProcess
        let stdout: String
        let stderr: String
        var pid: pid_t { process.pid }
    }

    let directory: URL
    private let children = Mutex<[Child]>([])
    /// Children that exit on their own (wrk at the end of its phase): their exit is no failure.
    private let finished = Mutex<Set<pid_t>>([])

    init(directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Starts `executable`; its stdout and stderr go to `<name>.out` / `<name>.err` in the directory.
    /// The environment is this process's without `DOCKET_*` (a child gets its settings as flags only).
    /// A child that `exits` on its own (wrk) may do so; any other exit is a failure `check()` reports.
    @discardableResult
    func spawn(_ name: String, _ executable: String, _ arguments: [String], exits: Bool = false) throws -> Child {
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DOCKET_") }
        let out = directory.appendingPathComponent("\(name).out").path
        let err = directory.appendingPathComponent("\(name).err").path
        let process = try SpawnedProcess(
            executable, arguments, environment: environment, stdin: "/dev/null", stdout: out, stderr: err, newProcessGroup: true)
        let child = Child(name: name, process: process, stdout: out, stderr: err)
        children.withLock { $0.append(child) }
        if exits { finished.withLock { _ = $0.insert(process.pid) } }
        return child
    }

    /// A child about to be stopped on purpose (its exit is then no failure).
    func expectExit(_ child: Child) {
        finished.withLock { _ = $0.insert(child.pid) }
    }

    /// Takes over a process started elsewhere (the managed redis-server), to stop it with the others.
    func adopt(_ name: String, _ process: SpawnedProcess, log: String) {
        children.withLock { $0.append(Child(name: name, process: process, stdout: log, stderr: log)) }
    }

    /// Throws, with the end of its stderr, if a child exited before it was told to.
    func check() throws {
        let expected = finished.withLock { $0 }
        for child in children.withLock({ $0 }) where !expected.contains(child.pid) {
            if let status = child.process.exitStatus() {
                throw CLIError("\(child.name) (pid \(child.pid)) exited with status \(status):\n\(Self.tail(child.stderr))")
            }
        }
    }

    /// Polls `condition` every `interval` until it holds, checking the children meanwhile; throws after `timeout`.
    func wait(for what: String, timeout: Duration, interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            try check()
            guard ContinuousClock.now < deadline else { throw CLIError("timed out after \(timeout) waiting for \(what)") }
            try await Task.sleep(for: interval)
        }
    }

    /// SIGTERM to every child still running, newest first, each given up to `grace` before SIGKILL; reaps them.
    /// Runs in a task of its own, so it completes even when the caller was cancelled (SIGINT).
    func stopAll(grace: Duration = .seconds(10)) async {
        let all = children.withLock { $0 }
        await Task.detached {
            for child in all.reversed() where child.process.exitStatus() == nil {
                child.process.signal(SIGTERM)
                let deadline = ContinuousClock.now + grace
                while child.process.exitStatus() == nil, ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(10))
                }
                if child.process.exitStatus() == nil {
                    child.process.signal(SIGKILL)
                    while child.process.exitStatus() == nil { try? await Task.sleep(for: .milliseconds(10)) }
                }
            }
        }.value
    }

    /// The last `bytes` of a file, for error messages.
    static func tail(_ path: String, bytes: Int = 2000) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "(no output)" }
        let text = String(decoding: data.suffix(bytes), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "(no output)" : text
    }

    /// This executable, to start `docket serve` and `docket work` from the same build.
    static var docketExecutable: String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        let argument0 = CommandLine.arguments[0]
        return argument0.contains("/") ? URL(fileURLWithPath: argument0).standardizedFileURL.path : onPath(argument0) ?? argument0
    }

    /// The first executable `name` on PATH.
    static func onPath(_ name: String) -> String? {
        (env("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Runs `body`; SIGINT or SIGTERM cancels it, and it then throws `CancellationError`.
func cancellingOnSignals<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            for await _ in signals { break }
            return nil
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() ?? nil else { throw CancellationError() }
        return result
    }
}
