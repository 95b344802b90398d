import DocketQueue
import Foundation
import Synchronization

/// A benchmark phase's shared counters, and its live progress line on stderr: the phase's name, done/total
/// and the rate over the last quarter second, redrawn with `\r` while `show` runs (on a terminal only).
final class BenchProgress: Sendable {
    let name: String
    let total: Int
    private let counts = Mutex<(issued: Int, done: Int)>((0, 0))

    init(_ name: String, total: Int) {
        self.name = name
        self.total = total
    }

    var done: Int { counts.withLock { $0.done } }

    /// Reserves one more operation of `units`; false once enough were issued.
    func claim(_ units: Int = 1) -> Bool {
        counts.withLock { counts in
            guard counts.issued < total else { return false }
            counts.issued += units
            return true
        }
    }

    /// Records `done` units by one operation that claimed `claimed` (a batch may come out short).
    func advance(_ done: Int, claimed: Int = 1) {
        counts.withLock { counts in
            counts.done += done
            counts.issued += done - claimed
        }
    }

    /// Sets the units done, for progress observed from outside (Redis counters).
    func observe(_ done: Int) {
        counts.withLock { $0.done = done }
    }

    /// Runs `body` while a task redraws the line every 250 ms; erases the line afterwards.
    func show<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard isatty(STDERR_FILENO) == 1 else { return try await body() }
        defer { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                var last = (done, ContinuousClock.now)
                while true {
                    try? await Task.sleep(for: .milliseconds(250))
                    if Task.isCancelled { return }
                    let now = (done, ContinuousClock.now)
                    let rate = Double(now.0 - last.0) / max(1e-9, Double((now.1 - last.1).nanoseconds) / 1e9)
                    last = now
                    let of = total > 0 ? "/\(total)" : ""
                    FileHandle.standardError.write(Data("\r\u{1B}[K\(name)  \(now.0)\(of)  \(Int(rate))/s".utf8))
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

/// Percentiles of a sample (nearest rank, as `docket bench` has always reported them), to 3 decimal places.
struct Percentiles: Codable, Sendable {
    var p50: Double
    var p95: Double
    var p99: Double
    var max: Double
    var samples: Int
}

extension Percentiles {
    init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        func at(_ p: Double) -> Double { (sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000).rounded() / 1000 }
        self.init(p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1), samples: sorted.count)
    }
}

/// What `measure` saw: units (jobs) done, calls made, wall time, and each call's latency in ms.
struct Measured: Sendable {
    var units: Int
    var calls: Int
    var seconds: Double
    var latency: Percentiles?
    var perSecond: Double { seconds > 0 ? Double(units) / seconds : 0 }
}

/// Runs `task` in `inFlight` concurrent tasks (each given its index) until `progress.total` units are done;
/// each task returns the latencies of its calls (see `timedCalls`).
func measure(_ progress: BenchProgress, inFlight: Int, _ task: @escaping @Sendable (Int) async throws -> [Double]) async throws -> Measured {
    try await progress.show {
        let start = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for n in 0..<inFlight { group.addTask { try await task(n) } }
            var all = [Double]()
            for try await part in group { all += part }
            return all
        }
        let seconds = Double((ContinuousClock.now - start).nanoseconds) / 1e9
        return Measured(units: progress.done, calls: latencies.count, seconds: seconds, latency: Percentiles(latencies))
    }
}

/// One task's share of `measure`: calls `call` while `progress` has work left, timing each call (ms).
/// Each call is claimed as `units` (a batch); it returns the units it did, 0 when nothing was left (the task stops).
func timedCalls(_ progress: BenchProgress, units: Int = 1, _ call: () async throws -> Int) async throws -> [Double] {
    var latencies = [Double]()
    while progress.claim(units) {
        let t0 = ContinuousClock.now
        let done = try await call()
        if done == 0 { break }
        latencies.append(Double((ContinuousClock.now - t0).nanoseconds) / 1e6)
        progress.advance(done, claimed: units)
    }
    return latencies
}
