import DocketQueue
import Foundation
import Testing

/// The cron calculator: fields, Vixie day matching, and wall-clock times across DST changes.
@Suite("Cron expressions")
struct CronTests {
    let utc = TimeZone(identifier: "UTC")!
    let newYork = TimeZone(identifier: "America/New_York")!
    let berlin = TimeZone(identifier: "Europe/Berlin")!

    func at(_ text: String) -> Date { Timestamp.parse(text)! }
    func next(_ cron: String, after: String, in zone: TimeZone? = nil) throws -> String? {
        try CronExpression(cron).next(after: at(after), in: zone ?? utc).map(Timestamp.format)
    }

    @Test func fieldsStepsRangesListsAndNames() throws {
        #expect(try next("*/15 * * * *", after: "2026-05-04T10:07:00.000Z") == "2026-05-04T10:15:00.000Z")
        #expect(try next("0 2 * * *", after: "2026-05-04T02:00:00.000Z") == "2026-05-05T02:00:00.000Z", "strictly after")
        #expect(try next("*/10 * * * * *", after: "2026-05-04T10:07:03.500Z") == "2026-05-04T10:07:10.000Z", "6 fields: seconds first")
        #expect(try next("0 9-17/4 * * MON-FRI", after: "2026-05-08T14:00:00.000Z") == "2026-05-08T17:00:00.000Z")
        #expect(try next("0 9-17/4 * * MON-FRI", after: "2026-05-08T17:00:00.000Z") == "2026-05-11T09:00:00.000Z", "Friday → Monday")
        #expect(try next("0 0 1 JAN,jul *", after: "2026-02-01T00:00:00.000Z") == "2026-07-01T00:00:00.000Z")
        #expect(try next("0 0 * * 7", after: "2026-05-04T00:00:00.000Z") == "2026-05-10T00:00:00.000Z", "7 is Sunday")
        #expect(try next("@hourly", after: "2026-05-04T10:07:00.000Z") == "2026-05-04T11:00:00.000Z")
        #expect(try next("@yearly", after: "2026-05-04T10:07:00.000Z") == "2027-01-01T00:00:00.000Z")
        #expect(try next("0 0 29 2 *", after: "2026-03-01T00:00:00.000Z") == "2028-02-29T00:00:00.000Z", "leap day")
        #expect(try next("0 0 30 2 *", after: "2026-03-01T00:00:00.000Z") == nil, "never")
    }

    @Test func dayOfMonthAndDayOfWeekMatchEitherWhenBothAreRestricted() throws {
        // Vixie cron: "the 13th, or any Friday"; with one side "*", both must match.
        #expect(try next("0 0 13 * FRI", after: "2026-05-04T00:00:00.000Z") == "2026-05-08T00:00:00.000Z", "a Friday before the 13th")
        #expect(try next("0 0 13 * FRI", after: "2026-05-08T00:00:00.000Z") == "2026-05-13T00:00:00.000Z", "the 13th, a Wednesday")
        #expect(try next("0 0 * * FRI", after: "2026-05-08T00:00:00.000Z") == "2026-05-15T00:00:00.000Z")
    }

    @Test func badExpressionsSayWhy() {
        for (bad, why) in [("* * * *", "5 fields"), ("60 * * * *", "minute"), ("* 24 * * *", "hour"), ("* * 0 * *", "day of month"),
                           ("* * * 13 *", "month"), ("* * * * 8", "day of week"), ("*/0 * * * *", "step"), ("5-1 * * * *", "backwards"),
                           ("a * * * *", "minute"), ("1,,2 * * * *", "empty")] {
            #expect(throws: CronExpression.ParseError.self, "\(bad)") { try CronExpression(bad) }
            do { _ = try CronExpression(bad) } catch { #expect(error.description.contains(why), "\(bad): \(error.description)") }
        }
    }

    @Test func aTimeSkippedWhenDSTStartsFiresOnceAtTheEndOfTheGap() throws {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z); 02:30 does not exist that day.
        #expect(try next("30 2 * * *", after: "2026-03-08T05:00:00.000Z", in: newYork) == "2026-03-08T07:00:00.000Z")
        #expect(try next("30 2 * * *", after: "2026-03-08T07:00:00.000Z", in: newYork) == "2026-03-09T06:30:00.000Z", "then as usual (EDT)")
        // Every quarter hour of the skipped hour: once, at 03:00 EDT, then 03:15.
        #expect(try next("*/15 2-3 * * *", after: "2026-03-08T06:50:00.000Z", in: newYork) == "2026-03-08T07:00:00.000Z")
        #expect(try next("*/15 2-3 * * *", after: "2026-03-08T07:00:00.000Z", in: newYork) == "2026-03-08T07:15:00.000Z")
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
        #expect(try next("30 2 * * *", after: "2026-03-28T23:00:00.000Z", in: berlin) == "2026-03-29T01:00:00.000Z")
    }

    @Test func aTimeRepeatedWhenDSTEndsFiresOnceAtItsFirstOccurrence() throws {
        // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens at 05:30Z and again at 06:30Z.
        #expect(try next("30 1 * * *", after: "2026-11-01T04:00:00.000Z", in: newYork) == "2026-11-01T05:30:00.000Z")
        #expect(try next("30 1 * * *", after: "2026-11-01T05:30:00.000Z", in: newYork) == "2026-11-02T06:30:00.000Z", "not again at 06:30Z")
        #expect(try next("30 1 * * *", after: "2026-11-01T06:10:00.000Z", in: newYork) == "2026-11-02T06:30:00.000Z", "from inside the repeat")
        // Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 first happens at 00:30Z.
        #expect(try next("30 2 * * *", after: "2026-10-24T23:00:00.000Z", in: berlin) == "2026-10-25T00:30:00.000Z")
        #expect(try next("30 2 * * *", after: "2026-10-25T00:30:00.000Z", in: berlin) == "2026-10-26T01:30:00.000Z")
    }

    @Test func schedulesComputeDueTicksByCatchUpPolicy() throws {
        let template = JobTemplate(Job(type: "t"))
        var schedule = Schedule(name: "s", cron: "0 * * * *", job: template, createdAt: at("2026-05-04T00:00:00.000Z"))
        let now = at("2026-05-04T05:00:03.000Z"), last = at("2026-05-04T01:00:00.000Z")
        // Ticks 02:00 … 05:00 are due (05:00 on time, 3 s ago).
        schedule.catchUp = .all
        #expect(schedule.due(after: last, now: now).fire.map(Timestamp.format) == ["02", "03", "04", "05"].map { "2026-05-04T\($0):00:00.000Z" })
        schedule.catchUp = .one
        #expect(schedule.due(after: last, now: now).fire == [at("2026-05-04T05:00:00.000Z")])
        #expect(schedule.due(after: last, now: now).skipped == 3)
        schedule.catchUp = .none
        #expect(schedule.due(after: last, now: now).fire == [at("2026-05-04T05:00:00.000Z")], "the on-time tick still fires")
        #expect(schedule.due(after: last, now: at("2026-05-04T05:30:00.000Z")).fire.isEmpty, "nothing on time: all skipped")
        #expect(schedule.due(after: last, now: at("2026-05-04T05:30:00.000Z")).latest == at("2026-05-04T05:00:00.000Z"))
        schedule.catchUp = .all
        schedule.catchUpLimit = 2
        #expect(schedule.due(after: last, now: now).fire.count == 2 && schedule.due(after: last, now: now).skipped == 2, "the latest 2")
        schedule.paused = true
        #expect(schedule.due(after: last, now: now).fire.isEmpty)
        // Intervals count from creation.
        let every = Schedule(name: "e", everyMs: 90_000, job: template, createdAt: at("2026-05-04T00:00:00.000Z"))
        #expect(every.nextTick(after: at("2026-05-04T00:02:00.000Z")) == at("2026-05-04T00:03:00.000Z"))
        #expect(every.idempotencyKey(tick: at("2026-05-04T00:03:00.000Z")) == "schedule:e:\(at("2026-05-04T00:03:00.000Z").millis)")
    }
}
