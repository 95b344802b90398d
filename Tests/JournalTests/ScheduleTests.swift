import DocketJournal
import DocketQueue
import DocketTestSupport
import Foundation
import Testing

/// Schedules fired by `ScheduleService` against a real Redis and real journals. The clock is injected
/// (`pass(now:)`), so no test waits for a tick.
@Suite("Schedules", .timeLimit(.minutes(1)))
struct ScheduleTests {
    func at(_ text: String) -> Date { Timestamp.parse(text)! }
    func template(_ queue: QueueName) -> JobTemplate { JobTemplate(Job(type: "report.build", payload: #"{"k":1}"#, queue: queue)) }

    @Test func twoServersFiringTheSameTicksMakeOneJobPerTick() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { j1 in
                try await withTemporaryJournal { j2 in
                    try await t.vouch()
                    let a = ScheduleService(queue: JournaledQueue(journal: j1, driver: t.driver, logger: TestQueue.logger), logger: TestQueue.logger)
                    let b = ScheduleService(queue: JournaledQueue(journal: j2, driver: t.sibling(), logger: TestQueue.logger), logger: TestQueue.logger)
                    let start = at("2026-05-04T00:00:00.000Z")
                    #expect(try await t.driver.addSchedule(Schedule(name: "tick", cron: "* * * * * *", job: template("sched"), catchUp: .all, createdAt: start)))
                    #expect(try await t.driver.addSchedule(Schedule(name: "tick", cron: "0 * * * *", job: template("other"), createdAt: start)) == false)
                    // Ten seconds of a fake clock; both servers pass at once every half second.
                    for half in 1...20 {
                        let now = start.addingTimeInterval(Double(half) / 2)
                        async let x = a.pass(now: now)
                        async let y = b.pass(now: now)
                        _ = try await (x, y)
                    }
                    let counts = try await t.driver.counts("sched")
                    #expect(counts.pending == 10, "one job per tick (10 ticks), whoever fired it")
                    let fired = [try await j1.reader.scheduleEvents("tick", limit: 1000), try await j2.reader.scheduleEvents("tick", limit: 1000)]
                        .map { $0.filter { $0.event == "fired" } }
                    let created = fired.joined().filter { $0.detail == "created" }
                    #expect(created.count == 10, "each tick created once: \(created.map { $0.tick.map(Timestamp.format) ?? "-" })")
                    #expect(Set(created.compactMap(\.tick)).count == 10)
                    // Each journal knows every tick it saw and the one job of it.
                    var jobOfTick = [Date: String]()
                    for event in fired.joined() {
                        let tick = try #require(event.tick), job = try #require(event.jobID)
                        #expect(jobOfTick[tick].map { $0 == job } ?? true, "one job per tick in both journals")
                        jobOfTick[tick] = job
                    }
                    let job = try #require(try await t.driver.job(JobID(rawValue: created[0].jobID!)!, queue: "sched"))
                    #expect(job.idempotencyKey == "schedule:tick:\(created[0].tick!.millis)" && job.type == "report.build" && job.payload == #"{"k":1}"#)
                    #expect(try await t.driver.lastTicks()["tick"] == start.addingTimeInterval(10))
                    // Definitions are journaled by every server that saw them.
                    #expect(try await j1.reader.scheduleEvents("tick").contains { $0.event == "created" })
                    #expect(try await j2.reader.schedules().map(\.schedule.name) == ["tick"])
                }
            }
        }
    }

    @Test func afterDowntimeTheCatchUpPolicyDecidesAndTheJournalSaysSo() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { j in
                try await t.vouch()
                let service = ScheduleService(queue: JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger), logger: TestQueue.logger)
                let start = at("2026-05-04T00:00:00.000Z")
                for (name, policy) in [("none", Schedule.CatchUp.none), ("one", .one), ("all", .all)] {
                    _ = try await t.driver.addSchedule(Schedule(name: name, cron: "0 * * * *", job: template(QueueName(rawValue: "q-\(name)")!),
                                                                catchUp: policy, createdAt: start))
                }
                // Down from the start until 05:30: five hourly ticks missed, none on time.
                try await service.pass(now: start.addingTimeInterval(5.5 * 3600))
                #expect(try await t.driver.counts("q-none").pending == 0)
                #expect(try await t.driver.counts("q-one").pending == 1)
                #expect(try await t.driver.counts("q-all").pending == 5)
                let skipped = try await j.reader.scheduleEvents("none").first { $0.event == "skipped" }
                #expect(skipped?.detail == "5", "why did it not run at 02:00? the journal says: skipped")
                #expect(try await j.reader.scheduleEvents("one").first { $0.event == "skipped" }?.detail == "4")
                // The next pass fires nothing new; the 06:00 tick fires for all three, on time.
                try await service.pass(now: start.addingTimeInterval(5.6 * 3600))
                #expect(try await t.driver.counts("q-all").pending == 5)
                try await service.pass(now: start.addingTimeInterval(6 * 3600 + 2))
                let after = [try await t.driver.counts("q-none").pending, try await t.driver.counts("q-one").pending, try await t.driver.counts("q-all").pending]
                #expect(after == [1, 2, 6])
            }
        }
    }

    @Test func pausedSchedulesWaitAndChangesAreJournaled() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { j in
                try await t.vouch()
                let service = ScheduleService(queue: JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger), logger: TestQueue.logger)
                let start = at("2026-05-04T00:00:00.000Z")
                var schedule = Schedule(name: "p", everyMs: 60_000, job: template("q-p"), catchUp: .none, paused: true, createdAt: start)
                _ = try await t.driver.addSchedule(schedule)
                try await service.pass(now: start.addingTimeInterval(125))
                #expect(try await t.driver.counts("q-p").pending == 0, "paused")
                schedule.paused = false
                schedule.updatedAt = start.addingTimeInterval(130)
                try await t.driver.putSchedule(schedule)
                try await service.pass(now: start.addingTimeInterval(180.5))
                #expect(try await t.driver.counts("q-p").pending == 1, "resumed: the on-time tick (03:00) fires, the missed ones do not (none)")
                #expect(try await t.driver.deleteSchedule("p"))
                try await service.pass(now: start.addingTimeInterval(240.5))
                #expect(try await t.driver.counts("q-p").pending == 1, "deleted")
                let events = try await j.reader.scheduleEvents("p").map(\.event)
                #expect(events.first == "deleted" && events.contains("resumed") && events.contains("created") && events.contains("fired"), "\(events)")
                #expect(try await j.reader.schedules().isEmpty, "deleted in the journal too (its history stays)")
            }
        }
    }

    @Test func recoveryPutsLostSchedulesAndLimitsBack() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                try await t.vouch()
                let service = ScheduleService(queue: JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger), logger: TestQueue.logger)
                let start = at("2026-05-04T00:00:00.000Z")
                _ = try await t.driver.addSchedule(Schedule(name: "r", cron: "*/5 * * * *", timezone: "Europe/Berlin", job: template("q-r"), createdAt: start))
                try await service.pass(now: start.addingTimeInterval(601))
                let last = try #require(try await t.driver.lastTicks()["r"])
                _ = try await t.redis.send("FLUSHALL")
                #expect(try await t.driver.schedules().isEmpty)
                // Lost from Redis: the service does not journal it as deleted (Redis lost data; recovery puts it back).
                try await service.pass(now: start.addingTimeInterval(602))
                #expect(try await j.reader.schedules().count == 1)
                let report = try await Recovery(journal: j, driver: t.driver, logger: TestQueue.logger).run(dryRun: false)
                #expect(report.schedules == 1)
                #expect(try await t.driver.schedule("r")?.timezone == "Europe/Berlin")
                #expect(try await t.driver.lastTicks()["r"] == last, "it neither fires again what it fired nor forgets where it was")
                // Limits too: journaled as seen, set back after a loss.
                _ = try await t.driver.addLimit(Limit(name: "l", type: "report.build", concurrency: 2))
                try await service.pass(now: start.addingTimeInterval(603))
                _ = try await t.redis.send("FLUSHALL")
                #expect(try await Recovery(journal: j, driver: t.driver, logger: TestQueue.logger).run(dryRun: false).limits == 1)
                #expect(try await t.driver.limits().map(\.concurrency) == [2])
            }
        }
    }
}

/// Unique keys survive a Redis data loss: the journal keeps them and recovery gives restored live jobs their keys back.
@Suite("Unique jobs and recovery", .timeLimit(.minutes(1)))
struct UniqueRecoveryTests {
    @Test func aRestoredLiveJobHoldsItsUniqueKeyAgain() async throws {
        let server = try RedisServer.start()
        defer { server.remove() }
        try await withTestQueue(server: server) { t in
            try await withTemporaryJournal { j in
                try await t.vouch()
                let queue = JournaledQueue(journal: j, driver: t.driver, logger: TestQueue.logger)
                var job = Job(type: "sync", payload: #"{"customer":42}"#)
                job.unique = UniqueKey(key: "customer-42", while: .untilComplete)
                guard case .created = try await queue.enqueue([job], actor: nil)[0] else { Issue.record("not created"); return }
                #expect(try await j.reader.job(job.id)?.unique == job.unique, "journaled with its key")
                _ = try await t.redis.send("FLUSHALL")
                let report = try await Recovery(journal: j, driver: t.driver, logger: TestQueue.logger).run(dryRun: false)
                #expect(report.restoredTotal == 1)
                #expect(try await t.driver.job(job.id)?.unique == job.unique)
                try await t.vouch()  // as RecoveryService does once the rebuild is done
                var again = Job(type: "sync")
                again.unique = UniqueKey(key: "customer-42")
                guard case .uniqueConflict(_, let holder) = try await queue.enqueue([again], actor: nil)[0] else {
                    Issue.record("a duplicate got past the restored key")
                    return
                }
                #expect(holder == job.id)
            }
        }
    }
}

/// Retention per queue or type (SPEC §9): a rule keeps its jobs for its own time; a job two rules match, for the longer.
@Suite("Retention rules", .timeLimit(.minutes(1)))
struct RetentionRuleTests {
    @Test func rulesKeepTheirJobsForTheirOwnTime() async throws {
        try await withTemporaryJournal { j in
            let t0 = Date(millis: 1_800_000_000_000)
            var events = [JournalEvent]()
            var ids = [String: JobID]()
            for (name, queue, type) in [("plain", "default", "t"), ("payment", "payments", "t"), ("mail", "default", "email.send"),
                                        ("both", "payments", "email.send")] {
                let job = Job(type: JobType(rawValue: type)!, queue: QueueName(rawValue: queue)!, createdAt: t0)
                ids[name] = job.id
                events.append(JournalEvent.enqueued(job, actor: nil))
                events.append(JournalEvent(jobID: job.id, seq: 2, at: t0.addingTimeInterval(1), event: "completed", state: .completed, attempt: 1,
                                           queue: job.queue))
            }
            try await j.writer.write([.events(events)])
            let retention = JournalRetention(journal: j, retention: .seconds(86_400), rules: ["payments": .seconds(30 * 86_400), "email.send": .seconds(3600)],
                                             logger: TestQueue.logger)
            func left() async throws -> Set<String> {
                var names = Set<String>()
                for (name, id) in ids where try await j.reader.job(id) != nil { names.insert(name) }
                return names
            }
            #expect(try await retention.prune(now: t0.addingTimeInterval(2 * 3600)) == 1)
            #expect(try await left() == ["plain", "payment", "both"], "email.send: 1 h; the payments queue's email kept for 30 d")
            #expect(try await retention.prune(now: t0.addingTimeInterval(2 * 86_400)) == 1)
            #expect(try await left() == ["payment", "both"], "the default: 1 d")
            #expect(try await retention.prune(now: t0.addingTimeInterval(31 * 86_400)) == 2)
        }
    }
}
