import ArgumentParser
import Foundation

extension Docket {
    /// `docket schedule add|list|show|rm|pause|resume|events`: a thin client of `/schedules`.
    struct ScheduleCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "schedule", abstract: "Add, list, pause, resume or remove schedules (cron jobs) through the REST API.",
            discussion: """
                docket schedule add NAME --cron '0 2 * * *' [--timezone Europe/Berlin] --type T [--queue Q] [--payload JSON]
                docket schedule add NAME --every 5m --type T  ·  docket schedule list  ·  docket schedule show NAME
                docket schedule pause NAME  ·  docket schedule resume NAME  ·  docket schedule rm NAME  ·  docket schedule events NAME
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "add, list (default), show, pause, resume, rm or events.") var action: String = "list"
        @Argument(help: "The schedule's name.") var name: String?
        @Option(help: "add: a 5-field cron expression (6 with seconds first), or @hourly, @daily, @weekly, @monthly, @yearly.") var cron: String?
        @Option(help: "add: an interval instead of cron, e.g. 30s, 5m, 1h.") var every: String?
        @Option(help: "add: IANA time zone of the cron expression (default UTC).") var timezone: String?
        @Option(help: "add: job type each tick enqueues.") var type: String?
        @Option(help: "add: queue (default default).") var queue: String?
        @Option(help: "add: payload JSON (default null).") var payload: String?
        @Option(help: "add: priority: critical, high, normal or low.") var priority: String?
        @Option(help: "add: catch-up after downtime: none, one (default) or all.") var catchUp: String?
        @Flag(help: "add: create it paused.") var paused = false
        @Option(help: "events: how many (default 100).") var limit: Int?

        func run() async throws {
            switch (action, name) {
            case ("list", nil):
                let list = try await client.call("GET", "/schedules")
                guard !client.json else { return }
                printTable(["NAME", "WHEN", "ZONE", "TYPE", "QUEUE", "PAUSED", "LAST RUN", "NEXT RUN"],
                           (list["schedules"] as? [[String: Any]] ?? []).map(Self.row))
            case ("add", let name?):
                guard let type else { throw ValidationError("add needs --type") }
                var body: [String: Any] = ["name": name, "job": [String: Any]()]
                body["cron"] = cron
                body["every"] = every
                body["timezone"] = timezone
                body["catchUp"] = catchUp
                if paused { body["paused"] = true }
                var job: [String: Any] = ["type": type]
                job["queue"] = queue
                job["priority"] = priority
                if let payload {
                    guard let value = try? JSONSerialization.jsonObject(with: Data(payload.utf8), options: [.fragmentsAllowed]) else {
                        throw ValidationError("--payload: not JSON")
                    }
                    job["payload"] = value
                }
                body["job"] = job
                let text = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
                let schedule = try await client.call("POST", "/schedules", body: text)
                if !client.json { printTable(Self.header, [Self.row(schedule)]) }
            case ("show", let name?):
                let schedule = try await client.call("GET", "/schedules/\(Self.escaped(name))")
                if !client.json { printTable(Self.header, [Self.row(schedule)]) }
            case ("pause", let name?), ("resume", let name?):
                let schedule = try await client.call("PATCH", "/schedules/\(Self.escaped(name))", body: #"{"paused":\#(action == "pause")}"#)
                if !client.json { printTable(Self.header, [Self.row(schedule)]) }
            case ("rm", let name?):
                _ = try await client.call("DELETE", "/schedules/\(Self.escaped(name))")
                if !client.json { print("removed \(name)") }
            case ("events", let name?):
                let page = try await client.call("GET", "/schedules/\(Self.escaped(name))/events", query: ["limit": limit.map(String.init)])
                guard !client.json else { return }
                printTable(["AT", "EVENT", "TICK", "JOB", "DETAIL"], (page["events"] as? [[String: Any]] ?? []).map { e in
                    [text(e["at"]), text(e["event"]), text(e["tick"]), text(e["jobId"]), text(e["detail"])]
                })
            default:
                throw ValidationError("usage: docket schedule [list] | add NAME (--cron EXPR | --every D) --type T | show NAME | pause NAME | resume NAME | rm NAME | events NAME")
            }
        }

        static let header = ["NAME", "WHEN", "ZONE", "TYPE", "QUEUE", "PAUSED", "LAST RUN", "NEXT RUN"]

        static func row(_ s: [String: Any]) -> [String] {
            let job = s["job"] as? [String: Any] ?? [:]
            let when = (s["cron"] as? String) ?? (s["every"] as? String).map { "every \($0)" } ?? "-"
            return [text(s["name"]), when, text(s["timezone"]), text(job["type"]), text(job["queue"]), (s["paused"] as? Bool) == true ? "yes" : "no",
                    text(s["lastRunAt"]), text(s["nextRunAt"])]
        }

        static func escaped(_ name: String) -> String { name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name }
    }
}
