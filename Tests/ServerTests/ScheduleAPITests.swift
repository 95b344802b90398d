import DocketJournal
import DocketQueue
import DocketServer
import DocketTestSupport
import Foundation
import Testing

/// `/schedules` through the router: create, read, pause, history, delete; and a `--schedules` file.
@Suite("Schedules API", .timeLimit(.minutes(1)))
struct ScheduleAPITests {
    @Test func aScheduleIsCreatedShownPausedAndDeleted() async throws {
        try await withAPI { api in
            let body = #"{"name":"nightly-report","cron":"30 2 * * *","timezone":"America/New_York","job":{"type":"report.build","payload":{"day":"yesterday"},"queue":"reports","priority":"high"},"catchUp":"all","catchUpLimit":3}"#
            let created = try await api.call(.post, "/schedules", json: body)
            #expect(created.status == 201 && created.headers[.location] == "/schedules/nightly-report", "\(created.text)")
            #expect(created.json["cron"] as? String == "30 2 * * *" && created.json["catchUp"] as? String == "all")
            #expect((created.json["job"] as? [String: Any])?["payload"] as? [String: String] == ["day": "yesterday"])
            let next = try #require(created.json["nextRunAt"] as? String).flatMap(Timestamp.parse)
            #expect(next.map { Calendar.current.dateComponents(in: TimeZone(identifier: "America/New_York")!, from: $0).hour } == 2, "02:30 New York time")
            #expect(created.json["lastRunAt"] is NSNull)
            #expect(try await api.call(.post, "/schedules", json: body).status == 409)
            let list = try await api.call(.get, "/schedules")
            #expect((list.json["schedules"] as? [[String: Any]])?.map { $0["name"] as? String } == ["nightly-report"])
            let paused = try await api.call(.patch, "/schedules/nightly-report", json: #"{"paused":true}"#)
            #expect(paused.json["paused"] as? Bool == true && paused.json["nextRunAt"] is NSNull)
            // What every server's ScheduleService journals: the definition and its changes.
            let service = ScheduleService(queue: JournaledQueue(journal: api.journal, driver: api.t.driver, logger: TestQueue.logger), logger: TestQueue.logger)
            try await service.pass()
            let events = try await api.call(.get, "/schedules/nightly-report/events")
            #expect((events.json["events"] as? [[String: Any]])?.first?["event"] as? String == "created", "\(events.text)")
            #expect(try await api.call(.delete, "/schedules/nightly-report").status == 204)
            #expect(try await api.call(.get, "/schedules/nightly-report").status == 404)
            #expect(try await api.call(.delete, "/schedules/nightly-report").status == 404)
            try await service.pass()
            let history = try await api.call(.get, "/schedules/nightly-report/events")
            #expect((history.json["events"] as? [[String: Any]])?.first?["event"] as? String == "deleted", "its history outlives it: \(history.text)")
        }
    }

    @Test func aSchedulesFileIsValidatedAndApplied() async throws {
        try await withTestQueue { t in
            let file = #"[{"name":"a","every":"1h","job":{"type":"t"}},{"name":"b","cron":"@daily","job":{"type":"t","queue":"q"}}]"#
            let schedules = try DocketAPI.schedules(file: file)
            #expect(try await DocketAPI.apply(schedules, to: t.driver) == (2, 0))
            #expect(try await DocketAPI.apply(schedules, to: t.driver) == (0, 0), "unchanged: nothing to do")
            let changed = try DocketAPI.schedules(file: #"[{"name":"a","every":"2h","job":{"type":"t"}}]"#)
            let before = try #require(try await t.driver.schedule("a"))
            #expect(try await DocketAPI.apply(changed, to: t.driver) == (0, 1))
            let after = try #require(try await t.driver.schedule("a"))
            #expect(after.everyMs == 7_200_000 && after.createdAt == before.createdAt, "replaced, keeping its anchor")
            let limits = try DocketAPI.limits(file: #"[{"name":"l","concurrency":2},{"name":"m","rate":{"limit":5,"per":"1m"}}]"#)
            #expect(try await DocketAPI.apply(limits, to: t.driver) == (2, 0))
            #expect(try await DocketAPI.apply(try DocketAPI.limits(file: #"[{"name":"l","concurrency":3}]"#), to: t.driver) == (0, 1))
            #expect(try await t.driver.limits().first { $0.name == "l" }?.concurrency == 3)
            #expect(throws: APIError.self) { try DocketAPI.limits(file: #"[{"name":"l"}]"#) }
            for (bad, field) in [(#"{"name":"a"}"#, "file"), (#"[{"name":"a","every":"1h","job":{"type":"t"}},{"name":"a","every":"2h","job":{"type":"t"}}]"#, "[1].name"),
                                 (#"[{"name":"a","cron":"nope","job":{"type":"t"}}]"#, "[0].cron")] {
                do {
                    _ = try DocketAPI.schedules(file: bad)
                    Issue.record("\(bad) was accepted")
                } catch let error as APIError {
                    #expect(error.field == field, "\(bad): \(error)")
                }
            }
        }
    }
}

/// Unique jobs through the API: 409 `unique_conflict` naming the holder.
@Suite("Unique jobs API", .timeLimit(.minutes(1)))
struct UniqueAPITests {
    @Test func aSecondEnqueueWithALiveKeyIs409NamingTheHolder() async throws {
        try await withAPI { api in
            let body = #"{"type":"invoice.sync","payload":{"customer":42},"unique":{"key":"customer-42","while":"until_complete"}}"#
            let first = try await api.call(.post, "/jobs", json: body)
            #expect(first.status == 201 && (first.json["unique"] as? [String: String]) == ["key": "customer-42", "while": "until_complete"])
            let second = try await api.call(.post, "/jobs", json: body)
            #expect(second.status == 409 && second.error.code == "unique_conflict" && second.error.field == "unique.key", "\(second.text)")
            #expect((second.json["error"] as? [String: Any])?["jobId"] as? String == first.json["id"] as? String)
            let batch = try await api.call(.post, "/jobs/batch", json: #"{"jobs":[\#(body),{"type":"other"}]}"#)
            let jobs = batch.json["jobs"] as? [[String: Any]] ?? []
            #expect(batch.status == 201 && jobs.count == 2, "\(batch.text)")
            #expect(jobs.first?["uniqueConflict"] as? Bool == true && jobs.first?["id"] as? String == first.json["id"] as? String, "the holder, marked")
            let bad = try await api.call(.post, "/jobs", json: #"{"type":"t","unique":{"key":"k","while":"forever"}}"#)
            #expect(bad.status == 400 && bad.error.field == "unique.while")
        }
    }
}

/// `GET /jobs?where=…` (SPEC §9): search the journal by payload and result fields.
@Suite("History search", .timeLimit(.minutes(1)))
struct HistorySearchTests {
    @Test func whereMatchesPayloadAndResultFieldsAndCombinesWithTheOtherFilters() async throws {
        try await withAPI { api in
            let bodies = [
                #"{"type":"payment","payload":{"customer":42,"region":"eu","tags":["vip"],"amount":9.5,"refund":true}}"#,
                #"{"type":"payment","payload":{"customer":42,"region":"us"}}"#,
                #"{"type":"payment","payload":{"customer":"42","region":"eu"}}"#,
                #"{"type":"email","payload":{"customer":42,"a/b":{"c~d":null}}}"#,
                #"{"type":"payment","payload":"not an object"}"#,
            ]
            var ids = [String]()
            for body in bodies { ids.append(try await api.call(.post, "/jobs", json: body).json["id"] as? String ?? "") }
            func search(_ query: String) async throws -> [String] {
                let reply = try await api.call(.get, "/jobs?" + query)
                #expect(reply.status == 200, "\(query): \(reply.text)")
                return (reply.json["jobs"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }.reversed()
            }
            #expect(try await search("where=/customer=42") == [ids[0], ids[1], ids[3]], "a number matches numbers, not the string \"42\"")
            #expect(try await search("where=/customer=%2242%22") == [ids[2]], "a JSON string")
            #expect(try await search("where=/customer=42&where=/region=eu") == [ids[0]], "repeated: AND; eu is not JSON, so a string")
            #expect(try await search("where=/customer=42&type=email") == [ids[3]], "with the other filters")
            #expect(try await search("where=/tags/0=vip") == [ids[0]], "array index")
            #expect(try await search("where=/amount=9.5&where=/refund=true") == [ids[0]])
            #expect(try await search("where=/a~1b/c~0d=null") == [ids[3]], "escaped pointer, JSON null")
            #expect(try await search("where=/customer=7").isEmpty)
            // Pagination keeps the match.
            let page = try await api.call(.get, "/jobs?where=/customer=42&limit=2")
            #expect((page.json["jobs"] as? [Any])?.count == 2)
            let next = try #require(page.json["nextCursor"] as? String)
            #expect(try await search("where=/customer=42&limit=2&cursor=\(next)") == [ids[0]])
            // Results: journaled once the job completes.
            let lease = try #require(try await api.t.driver.claim(from: [.default], worker: WorkerID(rawValue: "w"), lease: .seconds(30), wait: .zero))
            try await api.t.driver.complete(lease, result: #"{"status":"settled","fee":1}"#)
            try await eventually("the result to be journaled") { try await search("where=result/status=settled") == [lease.job.id.rawValue] }
            #expect(try await search("where=/=").isEmpty, "the pointer \"/\" (key \"\") and the empty string: valid, no match")
            for bad in ["where=customer=42", "where=/customer", "where==42"] {
                let reply = try await api.call(.get, "/jobs?" + bad)
                #expect(reply.status == 400 && reply.error.field == "where", "\(bad): \(reply.text)")
            }
        }
    }
}

/// `GET /jobs/export` (SPEC §9): NDJSON of jobs and their events, with the filters of `GET /jobs`.
@Suite("Export", .timeLimit(.minutes(1)))
struct ExportTests {
    @Test func exportStreamsEveryMatchingJobWithItsEventsAndResumesFromACursor() async throws {
        try await withAPI { api in
            var ids = [String]()
            for n in 0..<7 {
                ids.append(try await api.call(.post, "/jobs", json: #"{"type":"e","queue":"\#(n % 2 == 0 ? "even" : "odd")","payload":{"n":\#(n)}}"#).json["id"] as? String ?? "")
            }
            try await eventually("the enqueued events to be journaled") { try await api.journal.reader.events(JobID(rawValue: ids[6])!).count == 1 }
            let all = try await api.call(.get, "/jobs/export")
            #expect(all.status == 200 && all.headers[.contentType] == "application/x-ndjson")
            let lines = all.text.split(separator: "\n").map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:] }
            #expect(lines.map { $0["id"] as? String ?? "" } == ids.reversed(), "every job, newest first")
            #expect((lines.first?["events"] as? [[String: Any]])?.first?["event"] as? String == "enqueued")
            let even = try await api.call(.get, "/jobs/export?queue=even&where=/n=4")
            #expect(even.text.split(separator: "\n").count == 1 && even.text.contains(ids[4]))
            // Two lines, then resume after the second.
            let head = try await api.call(.get, "/jobs/export?limit=2").text.split(separator: "\n")
            #expect(head.count == 2)
            let last = try #require((try JSONSerialization.jsonObject(with: Data(head[1].utf8))) as? [String: Any])
            let cursor = "\(Timestamp.parse(last["createdAt"] as! String)!.millis):\(last["id"] as! String)"
            let rest = try await api.call(.get, "/jobs/export?cursor=\(cursor)").text.split(separator: "\n")
            #expect(rest.count == 5 && !rest.contains { $0.contains(ids[5]) || $0.contains(ids[6]) })
            #expect(try await api.call(.get, "/jobs/export?cursor=nope").status == 400)
        }
    }

    /// Export lines and `GET /jobs` pages are written from SQLite's column bytes: each job must say exactly what the
    /// API's job JSON says of it (`GET /jobs/{id}` once Redis no longer has it), and its events what `/events` says.
    @Test func exportLinesEqualTheJobsAndEventsTheAPIShows() async throws {
        try await withAPI { api in
            let bodies = [
                #"{"type":"a","payload":{"x":"quote \" and \\ and \u0001 é"},"timeout":250,"backoff":{"base":"90m","max":"2d"},"idempotencyKey":"k\"1"}"#,
                #"{"type":"b","queue":"q2","priority":"critical","maxAttempts":9,"delay":"1h","unique":{"key":"u-1","while":"active"}}"#,
                #"{"type":"c","payload":[1,2.50,null,true],"timeout":"1s"}"#,
            ]
            for body in bodies { #expect(try await api.call(.post, "/jobs", json: body).status == 201) }
            let lease = try #require(try await api.t.driver.claim(from: [.default], worker: WorkerID(rawValue: "w-1"), lease: .seconds(30), wait: .zero))
            try await api.t.driver.complete(lease, result: #"{"ok":true,"n":[1, 2]}"#)
            let failing = try #require(try await api.t.driver.claim(from: [.default], worker: WorkerID(rawValue: "w-2"), lease: .seconds(30), wait: .zero))
            _ = try await api.t.driver.fail(failing, error: "boom \n\"x\"")
            let replay = try await api.call(.post, "/jobs/replay", json: #"{"filter":{"type":"c"},"dryRun":false}"#)
            #expect(replay.json["replayed"] as? Int == 1)
            try await eventually("every event journaled") { try await api.journal.reader.size().events >= 9 }
            try await Task.sleep(for: .milliseconds(300))
            let listed = try await api.call(.get, "/jobs?limit=1000").json["jobs"] as? [[String: Any]] ?? []
            let lines = try await api.call(.get, "/jobs/export").text.split(separator: "\n")
            #expect(lines.count == listed.count && listed.count == 4)
            for (line, job) in zip(lines, listed) {
                var exported = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let events = exported.removeValue(forKey: "events")
                #expect(NSDictionary(dictionary: exported).isEqual(to: job), "\(line)\nvs \(job)")
                let id = job["id"] as! String
                // Gone from Redis, the job is rendered from the journal's decoded row by the API's own JSON.
                let queue = QueueName(rawValue: job["queue"] as! String)!
                _ = try await api.t.redis.send(RedisCommand("DEL", [RESPArgument(api.t.keys.queue(queue).job(JobID(rawValue: id)!))]))
                let shownJob = try await api.call(.get, "/jobs/\(id)").json
                #expect(shownJob["source"] as? String == "journal")
                #expect(NSDictionary(dictionary: shownJob).isEqual(to: job), "\(shownJob)\nvs \(job)")
                let shown = try await api.call(.get, "/jobs/\(id)/events").json["events"] as? [[String: Any]] ?? []
                #expect(NSArray(array: events as? [Any] ?? []).isEqual(to: shown), "\(id)")
            }
        }
    }
}
