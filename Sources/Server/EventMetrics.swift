import DocketJournal
import DocketQueue
import Synchronization

/// Job metrics fed by the journal ingestor (it sees every transition from every worker): counters by
/// event, queue and type, and histograms of attempt run time and of wait time (enqueue or due → start).
final class EventMetrics: Sendable {
    private struct Key: Hashable { let event: String, queue: String, type: String }
    private struct Histogram {
        static let bounds: [Double] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300]
        var buckets = [Int](repeating: 0, count: bounds.count)
        var count = 0
        var sum = 0.0
        mutating func observe(_ seconds: Double) {
            for (i, bound) in Self.bounds.enumerated() where seconds <= bound { buckets[i] += 1 }
            count += 1
            sum += seconds
        }
    }
    private struct State {
        var counters: [Key: Int] = [:]
        var runTime: [String: Histogram] = [:]
        var waitTime: [String: Histogram] = [:]
        /// When each job last became ready (enqueued or promoted), until it starts; bounded.
        var readyAt: [JobID: (at: Double, queue: String)] = [:]
        /// Label values in use: past `labelCap` distinct values, new ones are counted as `other`.
        var types: Set<String> = []
        var queues: Set<String> = []
    }
    private let state = Mutex(State())
    /// Most distinct job types (and queues) given a label of their own: every value is a time series per event.
    static let labelCap = 100

    private static func label(_ value: String, _ seen: inout Set<String>) -> String {
        if seen.contains(value) { return value }
        guard seen.count < labelCap else { return "other" }
        seen.insert(value)
        return value
    }

    func observe(_ events: [JournalEvent]) {
        state.withLock { s in
            for e in events {
                let queue = Self.label(e.queue.rawValue, &s.queues)
                let type = e.type.map { Self.label($0.rawValue, &s.types) } ?? ""
                s.counters[Key(event: e.event, queue: queue, type: type), default: 0] += 1
                if let ms = e.runMs { s.runTime[queue, default: Histogram()].observe(Double(ms) / 1000) }
                switch e.event {
                case "enqueued" where e.state == .pending, "promoted", "requeued", "released", "restored":
                    if s.readyAt.count < 200_000 { s.readyAt[e.jobID] = (e.at.timeIntervalSince1970, queue) }
                case "started":
                    if let ready = s.readyAt.removeValue(forKey: e.jobID) {
                        s.waitTime[ready.queue, default: Histogram()].observe(max(0, e.at.timeIntervalSince1970 - ready.at))
                    }
                default: break
                }
            }
        }
    }

    func prometheus() -> String {
        let s = state.withLock { $0 }
        var lines = ["# HELP docket_job_events_total Job transitions by event, queue and type (enqueued, completed, failed, retry_scheduled, dead, ...).",
                     "# TYPE docket_job_events_total counter"]
        for (k, n) in s.counters.sorted(by: { ($0.key.event, $0.key.queue, $0.key.type) < ($1.key.event, $1.key.queue, $1.key.type) }) {
            lines.append("docket_job_events_total{event=\"\(k.event)\",queue=\"\(k.queue)\",type=\"\(k.type)\"} \(n)")
        }
        for (name, help, table) in [("docket_job_run_seconds", "Attempt run time by queue.", s.runTime), ("docket_job_wait_seconds", "Time from ready to started by queue.", s.waitTime)] {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) histogram")
            for (queue, h) in table.sorted(by: { $0.key < $1.key }) {
                for (i, bound) in Histogram.bounds.enumerated() { lines.append("\(name)_bucket{queue=\"\(queue)\",le=\"\(bound)\"} \(h.buckets[i])") }
                lines.append("\(name)_bucket{queue=\"\(queue)\",le=\"+Inf\"} \(h.count)")
                lines.append("\(name)_sum{queue=\"\(queue)\"} \(h.sum)")
                lines.append("\(name)_count{queue=\"\(queue)\"} \(h.count)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// A value recomputed at most once per `lifetime`; callers in between get the last one.
final class Cached<Value: Sendable>: Sendable {
    private let lifetime: Duration
    private let state = Mutex<(value: Value, at: ContinuousClock.Instant)?>(nil)

    init(for lifetime: Duration) { self.lifetime = lifetime }

    func value(refresh: () async throws -> Value) async throws -> Value {
        if let cached = state.withLock({ $0 }), cached.at.duration(to: .now) < lifetime { return cached.value }
        let fresh = try await refresh()
        state.withLock { $0 = (fresh, .now) }
        return fresh
    }
}
