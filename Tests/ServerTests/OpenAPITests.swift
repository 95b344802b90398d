import DocketJournal
import DocketQueue
import DocketServer
import DocketTestSupport
import Foundation
import Hummingbird
import Testing

/// `/openapi.json` is a complete OpenAPI 3.1 document and real answers of every route match the schemas it names,
/// checked by Python's `jsonschema` (JSON Schema 2020-12, as OpenAPI 3.1 uses).
@Suite("OpenAPI document")
struct OpenAPITests {
    static let validator = #"""
        import json, sys
        from jsonschema import Draft202012Validator
        doc = json.load(open(sys.argv[1]))
        cases = json.load(open(sys.argv[2]))
        assert doc["openapi"].startswith("3.1"), doc["openapi"]
        failures = []
        for path, item in doc["paths"].items():
            for method, op in item.items():
                for status, answer in op["responses"].items():
                    for media in answer.get("content", {}).values():
                        ref = media["schema"].get("$ref", "")
                        if ref and ref.split("/")[-1] not in doc["components"]["schemas"]:
                            failures.append(f"{method} {path} {status}: {ref} is not defined")
                for p in op["parameters"]:
                    if "type" not in p["schema"]:
                        failures.append(f"{method} {path}: parameter {p['name']} has no type")
        for case in cases:
            schema = {"$ref": "#/components/schemas/" + case["schema"], "components": doc["components"]}
            for error in Draft202012Validator(schema).iter_errors(json.loads(case["body"])):
                failures.append(f"{case['route']} -> {case['schema']}: {error.message} at {list(error.absolute_path)}")
        print("\n".join(failures))
        sys.exit(1 if failures else 0)
        """#

    @Test func realAnswersOfEveryRouteMatchTheDocument() async throws {
        try await withAPI { api in
            var cases = [[String: String]]()
            func record(_ route: String, _ schema: String, _ reply: API.Reply, status: Int) {
                #expect(reply.status == status, "\(route): \(reply.status) \(reply.text.prefix(300))")
                cases.append(["route": route, "schema": schema, "body": reply.text])
            }
            let created = try await api.call(.post, "/jobs", json: #"{"type":"doc.t","payload":{"n":1},"idempotencyKey":"k"}"#)
            record("POST /jobs", "Job", created, status: 201)
            let id = created.json["id"] as? String ?? ""
            record("POST /enqueue (replay)", "Job", try await api.call(.post, "/enqueue", json: #"{"type":"doc.t","idempotencyKey":"k"}"#), status: 200)
            record("POST /jobs/batch", "JobList", try await api.call(.post, "/jobs/batch", json: #"{"jobs":[{"type":"a"},{"type":"b","delay":"1h"}]}"#), status: 201)
            record("GET /jobs/{id}", "Job", try await api.call(.get, "/jobs/\(id)"), status: 200)
            try await eventually("the job to be journaled") { try await api.journal.reader.job(JobID(rawValue: id)!) != nil }
            record("GET /jobs/{id}/events", "EventList", try await api.call(.get, "/jobs/\(id)/events"), status: 200)
            record("GET /jobs", "JobPage", try await api.call(.get, "/jobs?limit=2"), status: 200)
            // A dead job for the dead-letter routes.
            let doomed = try await api.t.driver.enqueue(Job(type: "doomed", queue: "doom", maxAttempts: 1), actor: nil).job!
            let lease = try #require(try await api.t.driver.claim(from: ["doom"], worker: WorkerID(rawValue: "w"), lease: .seconds(30), wait: .zero))
            _ = try await api.t.driver.fail(lease, error: "boom")
            record("GET /dlq", "JobPage", try await api.call(.get, "/dlq"), status: 200)
            record("POST /dlq/{id}/requeue", "Job", try await api.call(.post, "/dlq/\(doomed.id)/requeue"), status: 200)
            record("POST /dlq/requeue", "Requeued", try await api.call(.post, "/dlq/requeue", json: #"{"limit":5}"#), status: 200)
            record("DELETE /jobs/{id}", "Job", try await api.call(.delete, "/jobs/\(id)"), status: 200)
            record("POST /jobs/{id}/retry", "Job", try await api.call(.post, "/jobs/\(id)/retry"), status: 200)
            record("GET /queues", "QueueList", try await api.call(.get, "/queues"), status: 200)
            record("POST /queues/{queue}/pause", "Queue", try await api.call(.post, "/queues/default/pause"), status: 200)
            record("POST /queues/{queue}/resume", "Queue", try await api.call(.post, "/queues/default/resume"), status: 200)
            record("GET /stats", "Stats", try await api.call(.get, "/stats"), status: 200)
            record("GET /stats/history", "StatsHistory", try await api.call(.get, "/stats/history?bucket=1m"), status: 200)
            record("GET /health", "Health", try await api.call(.get, "/health"), status: 200)
            record("POST /admin/recover", "RecoverReport", try await api.call(.post, "/admin/recover", json: #"{"dryRun":true}"#), status: 200)
            record("GET /openapi.json", "OpenAPIDocument", try await api.call(.get, "/openapi.json"), status: 200)
            // Schedules.
            let schedule = #"{"name":"nightly","cron":"0 2 * * *","timezone":"Europe/Berlin","job":{"type":"report.build","payload":{"k":[1]},"queue":"reports"}}"#
            record("POST /schedules", "Schedule", try await api.call(.post, "/schedules", json: schedule), status: 201)
            record("POST /schedules (every)", "Schedule", try await api.call(.post, "/schedules", json: #"{"name":"often","every":"5m","job":{"type":"t"},"catchUp":"none"}"#), status: 201)
            record("GET /schedules", "ScheduleList", try await api.call(.get, "/schedules"), status: 200)
            record("GET /schedules/{name}", "Schedule", try await api.call(.get, "/schedules/nightly"), status: 200)
            record("PATCH /schedules/{name}", "Schedule", try await api.call(.patch, "/schedules/nightly", json: #"{"paused":true}"#), status: 200)
            try await ScheduleService(queue: JournaledQueue(journal: api.journal, driver: api.t.driver, logger: TestQueue.logger), logger: TestQueue.logger).pass()
            record("GET /schedules/{name}/events", "ScheduleEventList", try await api.call(.get, "/schedules/nightly/events"), status: 200)
            record("409 schedule", "Error", try await api.call(.post, "/schedules", json: schedule), status: 409)
            #expect(try await api.call(.delete, "/schedules/often").status == 204)
            record("POST /limits", "Limit", try await api.call(.post, "/limits", json: #"{"name":"per-customer","type":"sync","key":"/customer","rate":{"limit":10,"per":"1m"},"concurrency":2}"#), status: 201)
            record("GET /limits", "LimitList", try await api.call(.get, "/limits"), status: 200)
            #expect(try await api.call(.delete, "/limits/per-customer").status == 204)
            #expect(try await api.call(.delete, "/limits/per-customer").status == 404)
            // Errors have one shape.
            record("400", "Error", try await api.call(.post, "/jobs", json: #"{"type":5}"#), status: 400)
            record("404", "Error", try await api.call(.get, "/jobs/\(JobID.make())"), status: 404)
            record("405", "Error", try await api.call(.put, "/jobs"), status: 405)
            record("409", "Error", try await api.call(.post, "/jobs/\(id)/retry"), status: 409)
            record("415", "Error", try await api.call(.post, "/jobs", headers: hdr(["Content-Type": "text/plain"]), raw: Array("{}".utf8)), status: 415)

            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            try await api.call(.get, "/openapi.json").text.write(to: dir.appendingPathComponent("doc.json"), atomically: true, encoding: .utf8)
            try JSONSerialization.data(withJSONObject: cases).write(to: dir.appendingPathComponent("cases.json"))
            let python = try ChildProcess("/usr/bin/env", ["python3", "-c", Self.validator, dir.appendingPathComponent("doc.json").path,
                                                            dir.appendingPathComponent("cases.json").path])
            #expect(try await python.wait() == 0, "\(python.stdout)\(python.stderr)")
        }
    }

    @Test func openRoutesNeedNoKeyAndEveryOtherDoes() async throws {
        try await withAPI { api in
            let doc = try await api.call(.get, "/openapi.json").json
            let paths = try #require(doc["paths"] as? [String: [String: [String: Any]]])
            for (method, path) in DocketAPI.routes {
                let op = try #require(paths[path]?[method.lowercased()])
                let open = ["/health", "/metrics", "/openapi.json", "/"].contains(path)
                #expect((op["security"] as? [Any])?.isEmpty == open ? true : op["security"] == nil, "\(method) \(path)")
                let responses = try #require(op["responses"] as? [String: Any])
                #expect(responses["403"] != nil && responses["405"] != nil, "\(method) \(path) lists the browser and method answers")
                if !open { #expect(responses["401"] != nil && responses["429"] != nil && responses["503"] != nil, "\(method) \(path)") }
            }
        }
    }
}
