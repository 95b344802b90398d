import DocketQueue
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Fires schedules (SPEC §8) from every `docket serve`: each pass reads the schedules and their last ticks from
/// Redis, and enqueues each due tick's job through the journal (write-ahead, spooled if Redis is away) with the
/// tick's idempotency key, so however many servers fire a tick, it makes one job. It also journals what it sees:
/// definitions as they change (created, updated, paused, resumed, deleted), each tick fired (with its job, and
/// whether this server created it) and ticks the catch-up policy skipped.
public final class ScheduleService: Service, Sendable {
    let queue: JournaledQueue
    let interval: Duration
    let logger: Logger
    /// Definitions as last journaled, by name (loaded from the journal on the first pass).
    private let known = Mutex<[String: Schedule]?>(nil)
    private let knownLimits = Mutex<[String: Limit]?>(nil)

    public init(queue: JournaledQueue, interval: Duration = .milliseconds(500), logger: Logger) {
        self.queue = queue
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do { _ = try await pass() } catch {
                logger.debug("Schedule pass failed; trying again", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }

    /// One pass at `now`: returns the events it journaled.
    @discardableResult
    public func pass(now: Date = Date()) async throws -> [ScheduleEvent] {
        let driver = queue.driver
        let schedules = try await driver.schedules()
        try await journalChanges(schedules, now: now)
        try await journalLimits(try await driver.limits(), now: now)
        var events = [ScheduleEvent]()
        let lastTicks = try await driver.lastTicks()
        for schedule in schedules where !schedule.paused {
            let due = schedule.due(after: lastTicks[schedule.name], now: now)
            guard let latest = due.latest else { continue }
            if due.skipped > 0 {
                events.append(ScheduleEvent(name: schedule.name, at: now, event: "skipped", tick: due.lastSkipped, detail: "\(due.skipped)"))
            }
            let jobs = due.fire.compactMap { schedule.job.job(for: schedule, tick: $0) }
            if !jobs.isEmpty {
                let outcomes = try await queue.enqueue(jobs, actor: "schedule:\(schedule.name)")
                for (tick, outcome) in zip(due.fire, outcomes) {
                    let how: String
                    switch outcome {
                    case .created: how = "created"
                    case .existing: how = "existing"
                    case .spooled: how = "spooled"
                    case .uniqueConflict(_, let holder): how = "refused: \(holder) holds the unique key"
                    }
                    events.append(ScheduleEvent(name: schedule.name, at: now, event: "fired", tick: tick, jobID: outcome.job.id.rawValue, detail: how))
                }
            }
            try await driver.setLastTick(schedule.name, latest)
        }
        if !events.isEmpty { try await queue.journal.writer.write(events.map { .scheduleEvent($0) }) }
        return events
    }

    /// Journals limit definitions that changed since the last pass (deletions only while Redis holds its data, as
    /// for schedules).
    private func journalLimits(_ limits: [Limit], now: Date) async throws {
        var known: [String: Limit]
        if let cached = knownLimits.withLock({ $0 }) {
            known = cached
        } else {
            known = Dictionary(try await queue.journal.reader.limits().map { ($0.name, $0) }) { a, _ in a }
        }
        var writes = [JournalWrite]()
        for limit in limits where known[limit.name] != limit {
            writes.append(.limit(limit, name: limit.name, at: now))
            known[limit.name] = limit
        }
        let current = Set(limits.map(\.name))
        let gone = known.keys.filter { !current.contains($0) }
        if !gone.isEmpty, try await queue.driver.markerState().holds {
            for name in gone {
                writes.append(.limit(nil, name: name, at: now))
                known[name] = nil
            }
        }
        if !writes.isEmpty { try await queue.journal.writer.write(writes) }
        knownLimits.withLock { $0 = known }
    }

    /// Journals definitions that changed since the last pass. A schedule missing from Redis counts as deleted only
    /// while Redis is known to hold the deployment's data (after a loss, recovery sets it back instead).
    private func journalChanges(_ schedules: [Schedule], now: Date) async throws {
        var known: [String: Schedule]
        if let cached = self.known.withLock({ $0 }) {
            known = cached
        } else {
            known = Dictionary(try await queue.journal.reader.schedules().map { ($0.schedule.name, $0.schedule) }) { a, _ in a }
        }
        var writes = [JournalWrite]()
        let current = Dictionary(schedules.map { ($0.name, $0) }) { a, _ in a }
        for schedule in schedules where known[schedule.name] != schedule {
            let event: String
            if let old = known[schedule.name] {
                var same = old
                same.paused = schedule.paused
                same.updatedAt = schedule.updatedAt
                event = same == schedule && old.paused != schedule.paused ? (schedule.paused ? "paused" : "resumed") : "updated"
            } else {
                event = "created"
            }
            writes.append(.schedule(schedule, name: schedule.name, event: ScheduleEvent(name: schedule.name, at: schedule.updatedAt, event: event)))
            known[schedule.name] = schedule
        }
        let gone = known.keys.filter { current[$0] == nil }
        if !gone.isEmpty, try await queue.driver.markerState().holds {
            for name in gone {
                writes.append(.schedule(nil, name: name, event: ScheduleEvent(name: name, at: now, event: "deleted")))
                known[name] = nil
            }
        }
        if !writes.isEmpty { try await queue.journal.writer.write(writes) }
        self.known.withLock { $0 = known }
    }
}
