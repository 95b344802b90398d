import Foundation
import Synchronization

/// A child process started with posix_spawn: a clean signal mask and default handlers (so it reacts
/// to SIGTERM even when spawned from a thread that blocks signals), optionally in a process group of
/// its own, with stdin read from a file and stdout/stderr written to files.
package final class SpawnedProcess: Sendable {
    package let pid: pid_t
    private let status = Mutex<Int32?>(nil)

    package init(
        _ executable: String, _ arguments: [String], environment: [String: String], stdin: String, stdout: String,
        stderr: String, newProcessGroup: Bool
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if newProcessGroup {
            flags |= POSIX_SPAWN_SETPGROUP
            posix_spawnattr_setpgroup(&attr, 0)
        }
        posix_spawnattr_setflags(&attr, Int16(flags))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, argv, envp)
        guard rc == 0 else { throw JobFailure("cannot start \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// The exit status once the child exited (reaping it): its code, or 128 + signal; nil while it runs.
    package func exitStatus() -> Int32? {
        status.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid {
                let signal = raw & 0x7f
                status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
            }
            return status
        }
    }

    /// Waits for the exit without blocking a thread: polls, backing off from 1 ms to 25 ms.
    /// Throws `CancellationError` if the task is cancelled first (the child keeps running).
    package func exit() async throws -> Int32 {
        var pause: Duration = .milliseconds(1)
        while true {
            if let status = exitStatus() { return status }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(25))
        }
    }

    /// Sends `signal` to the child, or to its whole process group.
    package func signal(_ signal: Int32, group: Bool = false) {
        if exitStatus() == nil || group { kill(group ? -pid : pid, signal) }
    }
}
