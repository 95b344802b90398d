import Foundation

/// A periodic job (SPEC §8): a cron expression or an interval, in a time zone, with the job to enqueue at each
/// tick and what to do about ticks missed while nothing ran.
public struct Schedule: Sendable, Hashable, Codable {
    public enum CatchUp: String, Sendable, Hashable, Codable, CaseIterable {
        /// Missed ticks are skipped; only a tick that is due now fires.
        case none
        /// The latest missed tick fires once.
        case one
        /// Every missed tick fires, up to `catchUpLimit` (the latest ones).
        case all
    }

    /// 1–128 characters of `[A-Za-z0-9._:-]`.
    public var name: String
    /// A 5- or 6-field cron expression (`CronExpression`), or nil with `every`.
    public var cron: String?
    /// Milliseconds between ticks, counted from `createdAt`, or nil with `cron`.
    public var everyMs: Int64?
    /// IANA time zone of the cron expression (default UTC).
    public var timezone: String
    public var job: JobTemplate
    public var catchUp: CatchUp
    public var catchUpLimit: Int
    public var paused: Bool
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, cron: String? = nil, everyMs: Int64? = nil, timezone: String = "UTC", job: JobTemplate,
                catchUp: CatchUp = .one, catchUpLimit: Int = 100, paused: Bool = false, createdAt: Date = Date()) {
        self.name = name
        self.cron = cron
        self.everyMs = everyMs
        self.timezone = timezone
        self.job = job
        self.catchUp = catchUp
        self.catchUpLimit = catchUpLimit
        self.paused = paused
        self.createdAt = Date(millis: createdAt.millis)
        self.updatedAt = self.createdAt
    }

    public static func validName(_ name: String) -> Bool {
        (1...128).contains(name.utf8.count) && name.utf8.allSatisfy(\.isNameCharacter)
    }

    /// The first tick strictly after `date`.
    public func nextTick(after date: Date) -> Date? {
        if let everyMs, everyMs > 0 {
            let anchor = createdAt.millis, now = date.millis
            let k = now < anchor ? 0 : (now - anchor) / everyMs + 1
            return Date(millis: anchor + k * everyMs)
        }
        guard let cron, let expression = try? CronExpression(cron), let zone = TimeZone(identifier: timezone) else { return nil }
        return expression.next(after: date, in: zone)
    }

    /// What a scheduler pass does at `now` when the last tick it knows fired is `last` (nil: none yet): the ticks
    /// to fire, oldest first, and how many due ticks the catch-up policy skips. A tick counts as on time while it is
    /// at most `grace` old; older ones were missed (nothing ran then).
    public func due(after last: Date?, now: Date, grace: Duration = .seconds(10)) -> Due {
        if paused { return Due() }
        var ticks = [Date]()
        var skipped = 0
        var cursor = max(last ?? createdAt, createdAt.addingTimeInterval(-0.001))
        // Bounded: at most the limit (plus one) kept, the rest only counted.
        while let tick = nextTick(after: cursor), tick <= now {
            ticks.append(tick)
            if ticks.count > max(catchUpLimit, 1) {
                ticks.removeFirst()
                skipped += 1
            }
            cursor = tick
            if skipped > 1_000_000 { break }
        }
        guard let latest = ticks.last else { return Due() }
        let onTime = now.timeIntervalSince(latest) <= Double(grace.milliseconds) / 1000
        switch catchUp {
        case .all:
            return Due(fire: ticks, skipped: skipped, lastSkipped: skipped > 0 ? ticks.first : nil, latest: latest)
        case .one:
            return Due(fire: [latest], skipped: skipped + ticks.count - 1, lastSkipped: ticks.dropLast().last, latest: latest)
        case .none:
            return onTime ? Due(fire: [latest], skipped: skipped + ticks.count - 1, lastSkipped: ticks.dropLast().last, latest: latest)
                : Due(fire: [], skipped: skipped + ticks.count, lastSkipped: latest, latest: latest)
        }
    }

    /// What a scheduler pass does (`due(after:now:)`).
    public struct Due: Sendable, Hashable {
        /// Ticks to fire now, oldest first.
        public var fire: [Date] = []
        /// Due ticks the catch-up policy drops, and the latest of them (approximate when only counted).
        public var skipped = 0
        public var lastSkipped: Date?
        /// The latest due tick (fired or skipped): the schedule's last tick from now on.
        public var latest: Date?
    }

    /// The idempotency key of the job a tick enqueues (SPEC §8): one job per tick, whoever fires it.
    public func idempotencyKey(tick: Date) -> String { "schedule:\(name):\(tick.millis)" }
}

/// The job a schedule enqueues at each tick: an enqueue body without an id or idempotency key.
public struct JobTemplate: Sendable, Hashable, Codable {
    public var type: String
    public var queue: String
    /// JSON text.
    public var payload: String
    public var priority: Priority
    public var maxAttempts: Int
    public var timeoutMs: Int64
    public var backoffBaseMs: Int64
    public var backoffMaxMs: Int64

    public init(_ job: Job) {
        type = job.type.rawValue
        queue = job.queue.rawValue
        payload = job.payload
        priority = job.priority
        maxAttempts = job.maxAttempts
        timeoutMs = job.timeout.milliseconds
        backoffBaseMs = job.backoff.base.milliseconds
        backoffMaxMs = job.backoff.max.milliseconds
    }

    /// The job for one tick of `schedule`.
    public func job(for schedule: Schedule, tick: Date) -> Job? {
        guard let type = JobType(rawValue: type), let queue = QueueName(rawValue: queue) else { return nil }
        return Job(
            type: type, payload: payload, queue: queue, priority: priority, maxAttempts: maxAttempts, timeout: .milliseconds(timeoutMs),
            backoff: Backoff(base: .milliseconds(backoffBaseMs), max: .milliseconds(backoffMaxMs)), idempotencyKey: schedule.idempotencyKey(tick: tick))
    }
}
