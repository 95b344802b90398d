import DocketJournal
import DocketQueue
import DocketServer
import DocketTestSupport
import Foundation
import Testing

/// SPEC §9 beyond plain search: declared field indexes, the scan limit, replay from the journal, journal stats and
/// vacuum. Real Redis, real journal files.
@Suite("History tools", .timeLimit(.minutes(2)))
struct HistoryToolsTests {
    private func ids(_ reply: API.Reply) -> [String] { (reply.json["jobs"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } }

    @Test func aFieldDeclaredLaterIsBuiltInTheBackgroundAndAnswersLikeAScan() async throws {
        try await withAPI(configure: { $0.scanLimit = 0 }) { api in
            var byCustomer = [Int: [String]]()
            for n in 0..<40 {
                let reply = try await api.call(.post, "/jobs", json: #"{"type":"pay","payload":{"customer":\#(n % 4),"n":\#(n)}}"#)
                byCustomer[n % 4, default: []].insert(reply.json["id"] as! String, at: 0)
            }
            try await eventually("40 jobs journaled") { try await api.journal.reader.size().jobs == 40 }
            let scanned = try await api.call(.get, "/jobs?where=/customer=1&limit=1000")
            #expect(ids(scanned) == byCustomer[1])

            // Declared now: built 7 jobs per transaction while more jobs arrive (the triggers index those).
            let indexer = FieldIndexer(journal: api.journal, fields: [FieldIndexer.Field("/customer")!, FieldIndexer.Field("result/status")!],
                                       chunk: 7, logger: TestQueue.logger)
            try await indexer.declare()
            var steps = 0
            while try await indexer.step() {
                steps += 1
                if steps == 2 {
                    for n in 40..<44 {
                        let reply = try await api.call(.post, "/jobs", json: #"{"type":"pay","payload":{"customer":\#(n % 4),"n":\#(n)}}"#)
                        byCustomer[n % 4, default: []].insert(reply.json["id"] as! String, at: 0)
                    }
                    try await eventually("44 jobs journaled") { try await api.journal.reader.size().jobs == 44 }
                }
            }
            #expect(steps >= 6, "40 older jobs in chunks of 7, two fields")
            let status = try await FieldIndexer.status(api.journal)
            #expect(status.map(\.state) == ["ready", "ready"])
            #expect(status.first?.rows == 44, "every job has a customer: built and by trigger")

            var filter = JournalReader.Filter()
            filter.matches = [.init(inResult: false, pointer: "/customer", value: .integer(1))]
            filter.limit = 1000
            let page = try await api.journal.reader.list(filter)
            #expect(page.scanned == nil, "answered by the index, not by reading payloads")
            #expect(page.jobs.map(\.id.rawValue) == byCustomer[1])
            #expect(ids(try await api.call(.get, "/jobs?where=/customer=1&limit=1000")) == byCustomer[1])
            // Index and scan agree with the other filters, pagination and a second (unindexed) field.
            let two = try await api.call(.get, "/jobs?where=/customer=2&where=/n=42&type=pay")
            #expect(ids(two) == [byCustomer[2]![0]])
            let first = try await api.call(.get, "/jobs?where=/customer=3&limit=4")
            let next = try #require(first.json["nextCursor"] as? String)
            let second = try await api.call(.get, "/jobs?where=/customer=3&limit=100&cursor=\(next)")
            #expect(ids(first) + ids(second) == byCustomer[3])

            // A result field: indexed when the job completes (the row's result changes).
            let lease = try #require(try await api.t.driver.claim(from: [.default], worker: WorkerID(rawValue: "w"), lease: .seconds(30), wait: .zero))
            try await api.t.driver.complete(lease, result: #"{"status":"settled"}"#)
            try await eventually("the result indexed") {
                ids(try await api.call(.get, "/jobs?where=result/status=settled")) == [lease.job.id.rawValue]
            }
            // Retention removes a pruned job's index rows with it.
            let pruned = try await JournalRetention(journal: api.journal, retention: .seconds(1), logger: TestQueue.logger).prune(before: Date().addingTimeInterval(60))
            #expect(pruned == 1)
            #expect(try await api.call(.get, "/jobs?where=result/status=settled").json["jobs"] as? [Any] != nil)
            #expect(ids(try await api.call(.get, "/jobs?where=result/status=settled")).isEmpty)

            // No longer declared: dropped in chunks; searches on it read payloads again, with the same answers.
            let fewer = FieldIndexer(journal: api.journal, fields: [FieldIndexer.Field("result/status")!], chunk: 7, logger: TestQueue.logger)
            try await fewer.declare()
            while try await fewer.step() {}
            #expect(try await FieldIndexer.status(api.journal).map(\.spec) == ["result/status"])
            #expect(try await JournalStats.read(api.journal, tables: false).fieldRows == 0)
            #expect(ids(try await api.call(.get, "/jobs?where=/customer=1&limit=1000")) == byCustomer[1].map { $0.filter { $0 != lease.job.id.rawValue } })
        }
    }

    @Test func aSearchOnAnUnindexedFieldStopsAtTheScanLimitWithAMessage() async throws {
        try await withAPI(configure: { $0.scanLimit = 10 }) { api in
            for n in 0..<30 {
                try await api.call(.post, "/jobs", json: #"{"type":"t","queue":"\#(n < 25 ? "bulk" : "few")","payload":{"n":\#(n)}}"#)
            }
            try await eventually("30 jobs journaled") { try await api.journal.reader.size().jobs == 30 }
            let refused = try await api.call(.get, "/jobs?where=/n=1")
            #expect(refused.status == 400 && refused.error.code == "scan_limit" && refused.error.field == "where", "\(refused.text)")
            let message = (refused.json["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("/n") && message.contains("--index-field") && message.contains("10"))
            // Narrowed by an indexed filter, the same search reads few jobs and answers.
            #expect(try await api.call(.get, "/jobs?where=/n=26&queue=few").json["jobs"] as? [Any] != nil)
            #expect(ids(try await api.call(.get, "/jobs?where=/n=26&queue=few")).count == 1)
            // A page that fills within the bound is answered.
            #expect(ids(try await api.call(.get, "/jobs?where=/n=29&limit=1")).count == 1)
            // Export goes on past the bound, a bounded read at a time, and finds every match.
            let exported = try await api.call(.get, "/jobs/export?where=/n=0")
            #expect(exported.status == 200 && exported.text.split(separator: "\n").count == 1)
            // Replay counts under the same bound.
            let replay = try await api.call(.post, "/jobs/replay", json: #"{"filter":{"where":"/n=1"}}"#)
            #expect(replay.status == 400 && replay.error.code == "scan_limit")
        }
    }

    @Test func replayCopiesJournaledJobsEvenOnesRedisDroppedOnceperRequestID() async throws {
        try await withAPI { api in
            var originals = [String]()
            for n in 0..<5 {
                originals.append(try await api.call(.post, "/jobs", json: #"{"type":"charge","queue":"pay","priority":"high","maxAttempts":7,"timeout":"9s","payload":{"customer":42,"n":\#(n)}}"#).json["id"] as! String)
            }
            try await api.call(.post, "/jobs", json: #"{"type":"charge","queue":"pay","payload":{"customer":7}}"#)
            try await eventually("6 jobs journaled") { try await api.journal.reader.size().jobs == 6 }
            // The oldest one's Redis data is gone (as after its TTL): the journal alone knows it.
            let gone = JobID(rawValue: originals[0])!
            _ = try await api.t.redis.send(RedisCommand("DEL", [RESPArgument(api.t.keys.queue(QueueName(rawValue: "pay")!).job(gone))]))
            #expect(try await api.t.driver.job(gone) == nil)

            let dry = try await api.call(.post, "/jobs/replay", json: #"{"filter":{"where":["/customer=42"],"queue":"pay"},"limit":4}"#)
            #expect(dry.status == 200, "\(dry.text)")
            #expect(dry.json["matched"] as? Int == 5 && dry.json["replayed"] as? Int == 0 && dry.json["dryRun"] as? Bool == true)
            #expect(dry.json["originals"] as? [String] == Array(originals.reversed().prefix(4)))
            let cursor = try #require(dry.json["nextCursor"] as? String)
            #expect(try await api.journal.reader.size().jobs == 6, "a dry run creates nothing")

            let body = #"{"filter":{"where":"/customer=42","cursor":"\#(cursor)"},"dryRun":false,"queue":"replays"}"#
            let real = try await api.call(.post, "/jobs/replay", json: body, headers: hdr(["X-Request-Id": "incident-7"]))
            #expect(real.status == 200, "\(real.text)")
            #expect(real.json["originals"] as? [String] == [originals[0]], "the rest, from the cursor: the job Redis dropped")
            let copyID = try #require((real.json["jobs"] as? [String])?.first)
            #expect(real.json["created"] as? Int == 1)
            let copy = try #require(try await api.t.driver.job(JobID(rawValue: copyID)!))
            #expect(copy.replayOf == gone && copy.queue.rawValue == "replays" && copy.type.rawValue == "charge")
            #expect(copy.priority == .high && copy.maxAttempts == 7 && copy.timeout == .seconds(9) && copy.state == .pending)
            #expect(copy.payload == #"{"customer":42,"n":0}"#)
            let shown = try await api.call(.get, "/jobs/\(copyID)")
            #expect(shown.json["replayOf"] as? String == originals[0])
            try await eventually("the original's replayed event journaled") {
                try await api.journal.reader.events(gone).last?.event == "replayed"
            }
            let mark = try #require(try await api.journal.reader.events(gone).last)
            #expect(mark.detail == copyID && mark.seq == 2 && mark.state == .pending, "after the journal's last seq, in its state")

            // The same request again: the same copy, nothing new, no second event.
            let again = try await api.call(.post, "/jobs/replay", json: body, headers: hdr(["X-Request-Id": "incident-7"]))
            #expect(again.json["jobs"] as? [String] == [copyID] && again.json["created"] as? Int == 0)
            // A whole filter at once, the copies of earlier requests are jobs like any other (they match too).
            let all = try await api.call(.post, "/jobs/replay", json: #"{"filter":{"where":"/customer=42","queue":"pay"},"dryRun":false}"#,
                                         headers: hdr(["X-Request-Id": "incident-8"]))
            #expect(all.json["replayed"] as? Int == 5 && all.json["created"] as? Int == 5)
            try await eventually("every original noted") {
                var events = 0
                for id in originals { events += try await api.journal.reader.events(JobID(rawValue: id)!).filter { $0.event == "replayed" }.count }
                return events == 6
            }
            let second = try #require(try await api.journal.reader.events(gone).last)
            #expect(second.seq == 3 && second.event == "replayed", "a second replay of a dropped job takes the next seq")
            // The journal's row keeps its finish time and state through the note.
            #expect(try await api.journal.reader.job(JobID(rawValue: originals[1])!)?.state == .pending)
            let replays = try await api.call(.get, "/jobs?queue=pay&limit=1000")
            #expect(ids(replays).count == 11)
        }
    }

    @Test func replayRefusesBadRequestsNamingTheField() async throws {
        try await withAPI { api in
            let cases: [(String, String)] = [
                (#"{"limit":0}"#, "limit"), (#"{"limit":10001}"#, "limit"), (#"{"dryRun":"no"}"#, "dryRun"), (#"{"queue":"bad queue"}"#, "queue"),
                (#"{"filter":{"where":"customer=1"}}"#, "filter.where"), (#"{"filter":{"where":[1]}}"#, "filter.where[0]"),
                (#"{"filter":{"state":"odd"}}"#, "filter.state"), (#"{"filter":{"limit":"5"}}"#, "filter.limit"),
                (#"{"filter":{"cursor":"x"}}"#, "filter.cursor"), (#"{"filter":[]}"#, "filter"), (#"{"bogus":1}"#, "bogus"),
            ]
            for (body, field) in cases {
                let reply = try await api.call(.post, "/jobs/replay", json: body)
                #expect(reply.status == 400 && reply.error.field == field, "\(body): \(reply.text)")
            }
        }
    }

    @Test func statsCountTheJournalAndVacuumReturnsWhatRetentionFreed() async throws {
        try await withAPI { api in
            let payload = String(repeating: "x", count: 2000)
            for start in stride(from: 0, to: 600, by: 200) {
                let jobs = (start..<start + 200).map { n in #"{"type":"big","queue":"\#(n % 2 == 0 ? "a" : "b")","payload":{"n":\#(n),"pad":"\#(payload)"}}"# }
                #expect(try await api.call(.post, "/jobs/batch", json: #"{"jobs":[\#(jobs.joined(separator: ","))]}"#).status == 201)
            }
            try await eventually("600 jobs journaled") { try await api.journal.reader.size().jobs == 600 }
            let before = try await JournalStats.read(api.journal)
            #expect(before.jobs == 600 && before.events == 600 && before.autoVacuum == "incremental")
            #expect(before.queues.map(\.queue) == ["a", "b"] && before.queues.map(\.jobs) == [300, 300])
            #expect(before.queues.allSatisfy { $0.oldestEvent != nil && $0.oldestEvent! <= $0.newestEvent! })
            // Finish and prune them all: their pages are free, then returned.
            for _ in 0..<600 {
                guard let lease = try await api.t.driver.claim(from: [QueueName(rawValue: "a")!, QueueName(rawValue: "b")!], worker: WorkerID(rawValue: "w"), lease: .seconds(30), wait: .zero)
                else { break }
                try await api.t.driver.complete(lease, result: nil)
            }
            try await eventually("600 completions journaled") { try await api.journal.reader.size().events == 1800 }
            let pruned = try await JournalRetention(journal: api.journal, retention: .seconds(1), logger: TestQueue.logger).prune(before: Date().addingTimeInterval(60))
            #expect(pruned == 600)
            let freed = try await JournalStats.read(api.journal, tables: false)
            #expect(freed.freePages > 100, "\(freed.freePages)")
            try await JournalVacuum(journal: api.journal, keep: 0, step: 50, logger: TestQueue.logger).vacuum()
            let after = try await JournalStats.read(api.journal, tables: false)
            #expect(after.freePages == 0 && after.pages < freed.pages - 100, "\(after.pages) of \(freed.pages)")
        }
    }
}
