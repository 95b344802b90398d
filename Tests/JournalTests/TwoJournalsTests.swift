import DocketJournal
import DocketQueue
import DocketTestSupport
import Foundation
import Testing

/// Several servers share one Redis, each keeping a complete journal of its own (SPEC §3): a queue's event stream
/// is trimmed only past what every live journal has committed, and a journal silent for longer than
/// `staleAfter` stops holding trimming back. Ingestion passes are driven by hand, so nothing depends on timing
/// except the silence itself, which is waited for by polling.
@Suite("Two journals on one Redis", .timeLimit(.minutes(1)))
struct TwoJournalsTests {
    func ingestor(_ journal: Journal, _ t: TestQueue, staleAfter: Duration = .seconds(3600)) -> JournalIngestor {
        var configuration = JournalIngestor.Configuration()
        configuration.staleAfter = staleAfter
        return JournalIngestor(journal: journal, driver: t.driver, configuration: configuration, logger: TestQueue.logger)
    }

    func enqueue(_ t: TestQueue, _ count: Int, queue: QueueName = .default) async throws -> [JobID] {
        try await t.driver.enqueue((0..<count).map { Job(type: "t", payload: "\($0)", queue: queue) }, actor: nil).map(\.id)
    }

    /// What is left of a queue's stream, oldest first.
    func stream(_ t: TestQueue, _ queue: QueueName = .default) async throws -> [QueueEvent] {
        try await t.driver.events(of: queue, count: 100_000)
    }

    /// Every job of `ids` is in the journal with its whole history so far (here: enqueued).
    func expectComplete(_ journal: Journal, _ ids: [JobID], _ name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var missing = [JobID]()
        for id in ids where try await journal.reader.events(id).map(\.event) != ["enqueued"] { missing.append(id) }
        #expect(missing.isEmpty, "journal \(name) misses \(missing.count) of \(ids.count) jobs", sourceLocation: sourceLocation)
    }

    /// Both journals live, each with a cursor on the queue (one job journaled by both).
    func start(_ t: TestQueue, _ a: JournalIngestor, _ ca: inout [QueueName: String], _ b: JournalIngestor, _ cb: inout [QueueName: String])
        async throws -> [JobID]
    {
        let first = try await enqueue(t, 1)
        try await a.pass(&ca)
        try await b.pass(&cb)
        return first
    }

    @Test func trimmingWaitsForTheSlowestLiveJournal() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { a in
                try await withTemporaryJournal { b in
                    #expect(a.id != b.id)
                    let ia = ingestor(a, t)
                    let ib = ingestor(b, t)
                    var ca = [QueueName: String]()
                    var cb = [QueueName: String]()
                    let first = try await start(t, ia, &ca, ib, &cb)

                    // B commits 20 more, then falls behind while A runs ahead by 30.
                    let early = try await enqueue(t, 20)
                    try await ib.pass(&cb)
                    let bCursor = try #require(cb[.default].flatMap(StreamID.init))
                    let late = try await enqueue(t, 30)
                    try await ia.pass(&ca)
                    let aCursor = try #require(ca[.default].flatMap(StreamID.init))
                    #expect(aCursor > bCursor)

                    // A trimmed only what both committed: everything past B's cursor is still there.
                    let left = try await stream(t)
                    let kept = Set(left.map(\.jobID))
                    #expect(late.allSatisfy(kept.contains), "every event B has not committed is kept")
                    #expect(left.allSatisfy { StreamID($0.streamID)! >= bCursor }, "what both committed is trimmed")
                    #expect(left.count <= late.count + 1, "\(left.count) entries left")

                    // B catches up from its cursor: its journal is complete, and the stream is trimmed past both.
                    try await ib.pass(&cb)
                    #expect(cb[.default] == ca[.default])
                    try await expectComplete(a, first + early + late, "A")
                    try await expectComplete(b, first + early + late, "B")
                    #expect(try await a.reader.size().events == 51)
                    #expect(try await b.reader.size().events == 51)
                    #expect(try await stream(t).count <= 1, "only the newest entry both committed is left")
                }
            }
        }
    }

    @Test func aLiveJournalHoldsTrimmingBackBeforeItsFirstCommitOnAQueue() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { a in
                try await withTemporaryJournal { b in
                    let ia = ingestor(a, t)
                    let ib = ingestor(b, t)
                    var ca = [QueueName: String]()
                    var cb = [QueueName: String]()
                    // Both live; then a queue neither has seen: A drains it, B has not passed since.
                    try await ia.pass(&ca)
                    try await ib.pass(&cb)
                    let jobs = try await enqueue(t, 10, queue: "fresh")
                    try await ia.pass(&ca)
                    #expect(ca["fresh"] != nil && cb["fresh"] == nil)
                    #expect(try await stream(t, "fresh").count == 10, "B has committed nothing there yet, so nothing is trimmed")
                    try await ib.pass(&cb)
                    try await expectComplete(b, jobs, "B")
                }
            }
        }
    }

    @Test func aStaleJournalStopsHoldingTrimmingBack() async throws {
        try await withTestQueue { t in
            try await withTemporaryJournal { a in
                try await withTemporaryJournal { b in
                    let ia = ingestor(a, t)
                    let ib = ingestor(b, t)
                    var ca = [QueueName: String]()
                    var cb = [QueueName: String]()
                    _ = try await start(t, ia, &ca, ib, &cb)
                    // B goes silent. With the default staleness (1 h) it still holds trimming back.
                    let held = try await enqueue(t, 20)
                    try await ia.pass(&ca)
                    let kept = Set(try await stream(t).map(\.jobID))
                    #expect(held.allSatisfy(kept.contains), "a live journal's uncommitted events are kept")
                    #expect(try await t.driver.staleJournals(staleAfter: .seconds(3600)).isEmpty)

                    // Silent for longer than a 1 s staleness: A's next commit no longer waits for B.
                    try await eventually("B to be silent for longer than 1 s") {
                        try await t.driver.journalHeartbeat(journalID: a.id)
                        return try await t.driver.staleJournals(staleAfter: .seconds(1)) == [b.id]
                    }
                    let impatient = ingestor(a, t, staleAfter: .seconds(1))
                    let last = try await enqueue(t, 1)
                    try await impatient.pass(&ca)
                    let left = try await stream(t)
                    #expect(left.count <= 1, "trimmed up to A's cursor: \(left.count) entries left")
                    #expect(!left.contains { held.contains($0.jobID) }, "B's backlog is no longer held")
                    try await expectComplete(a, held + last, "A")

                    // B comes back: live again, it holds trimming from its next commit, but what was trimmed
                    // while it was stale is gone from its view (the warning says so).
                    try await ib.pass(&cb)
                    let missed = try await b.reader.size().events
                    #expect(missed < 22, "B missed what was trimmed while it was stale (\(missed) events journaled)")
                    let again = try await enqueue(t, 5)
                    try await ib.pass(&cb)
                    try await ia.pass(&ca)
                    try await expectComplete(b, again, "B")
                }
            }
        }
    }
}
