import ArgumentParser
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Flags of the thin REST clients.
struct ClientOptions: ParsableArguments {
    @Option(help: "Server URL (env DOCKET_SERVER, default http://127.0.0.1:8080).")
    var server: String?
    @Option(help: "API key (env DOCKET_API_KEY; the first key if several).")
    var apiKey: String?
    @Flag(help: "Print the server's JSON instead of a table.")
    var json = false

    /// Calls the API; throws with the server's error message on a non-2xx answer.
    func call(_ method: String, _ path: String, query: [String: String?] = [:], repeated: [(String, String)] = [], body: String? = nil)
        async throws -> [String: Any]
    {
        let data = try await raw(method, path, query: query, repeated: repeated, body: body)
        if json { print(String(decoding: data, as: UTF8.self)) }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    /// Calls the API and returns the body as it came; throws with the server's error message on a non-2xx answer.
    func raw(_ method: String, _ path: String, query: [String: String?] = [:], repeated: [(String, String)] = [], body: String? = nil,
             headers: [String: String] = [:]) async throws -> Data
    {
        let base = (server ?? env("DOCKET_SERVER") ?? "http://127.0.0.1:8080").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard var components = URLComponents(string: base + path), components.scheme?.hasPrefix("http") == true else {
            throw ValidationError("--server: \"\(base)\" is not an http(s) URL")
        }
        let items = query.compactMap { k, v in v.map { URLQueryItem(name: k, value: $0) } }.sorted { $0.name < $1.name }
            + repeated.map { URLQueryItem(name: $0.0, value: $0.1) }
        if !items.isEmpty { components.queryItems = items }
        var request = URLRequest(url: components.url!)
        request.httpMethod = method
        if let key = (apiKey ?? env("DOCKET_API_KEY"))?.split(separator: ",").first { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do { (data, response) = try await URLSession.shared.data(for: request) } catch {
            throw CLIError("cannot reach \(base): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            let error = object["error"] as? [String: Any]
            throw CLIError("server answered \(status): \(error?["message"] as? String ?? String(decoding: data, as: UTF8.self))")
        }
        return data
    }
}

/// The filters of `GET /jobs` (and its export and replay) as options.
struct HistoryFilter: ParsableArguments {
    @Option(help: "pending, scheduled, active, retrying, completed, dead, cancelled or purged.") var state: String?
    @Option var type: String?
    @Option var queue: String?
    @Option(help: "RFC 3339 time.") var since: String?
    @Option(help: "RFC 3339 time.") var until: String?
    @Option(name: .customLong("where"), help: "/pointer=value on the payload (result/pointer=value on the result); repeatable (AND).")
    var matches: [String] = []

    var query: [String: String?] { ["state": state, "type": type, "queue": queue, "since": since, "until": until] }
    var repeated: [(String, String)] { matches.map { ("where", $0) } }
    /// As `POST /jobs/replay`'s `filter` object.
    var object: [String: Any] {
        var object = query.compactMapValues { $0 } as [String: Any]
        if !matches.isEmpty { object["where"] = matches }
        return object
    }
}

/// Prints rows as aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

func text(_ value: Any?) -> String {
    switch value {
    case nil, is NSNull: return "-"
    case let s as String: return s
    case let n as NSNumber: return n.stringValue
    default:
        let data = (try? JSONSerialization.data(withJSONObject: value!, options: [.fragmentsAllowed, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

func jobRows(_ jobs: [[String: Any]]) -> [[String]] {
    jobs.map { j in [text(j["id"]), text(j["type"]), text(j["queue"]), text(j["state"]), text(j["attempts"]), text(j["createdAt"]), String(text(j["lastError"]).prefix(60))] }
}
let jobHeader = ["ID", "TYPE", "QUEUE", "STATE", "ATTEMPTS", "CREATED", "LAST ERROR"]

extension Docket {
    struct Enqueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enqueue a job through the REST API.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Job type.") var type: String
        @Option(help: "Payload JSON.") var payload: String?
        @Option(help: "Queue.") var queue: String?
        @Option(help: "critical, high, normal or low.") var priority: String?
        @Option(help: "Run after this long (e.g. 5m).") var delay: String?
        @Option(help: "Attempts before the job goes dead (1-100).") var maxAttempts: Int?
        @Option(help: "Per-attempt timeout (e.g. 30s).") var timeout: String?
        @Option(help: "Idempotency key.") var idempotencyKey: String?

        func run() async throws {
            var body: [String: Any] = ["type": type]
            if let payload {
                guard let value = try? JSONSerialization.jsonObject(with: Data(payload.utf8), options: [.fragmentsAllowed]) else {
                    throw ValidationError("--payload: not valid JSON")
                }
                body["payload"] = value
            }
            body["queue"] = queue
            body["priority"] = priority
            body["delay"] = delay
            body["maxAttempts"] = maxAttempts
            body["timeout"] = timeout
            body["idempotencyKey"] = idempotencyKey
            let text = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.fragmentsAllowed]), as: UTF8.self)
            let job = try await client.call("POST", "/jobs", body: text)
            if !client.json { printTable(jobHeader, jobRows([job])) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job and its history.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Job id.") var id: String

        func run() async throws {
            let job = try await client.call("GET", "/jobs/\(id)")
            let events = try await client.call("GET", "/jobs/\(id)/events")
            guard !client.json else { return }
            for key in ["id", "type", "queue", "state", "priority", "attempts", "maxAttempts", "payload", "result", "lastError", "progress",
                        "createdAt", "startedAt", "finishedAt", "source"] {
                print("\(key.padding(toLength: 12, withPad: " ", startingAt: 0)) \(text(job[key]))")
            }
            print("")
            let rows = (events["events"] as? [[String: Any]] ?? []).map { e in
                [text(e["seq"]), text(e["at"]), text(e["event"]), text(e["state"]), text(e["attempt"]), text(e["worker"]), text(e["error"])]
            }
            printTable(["SEQ", "AT", "EVENT", "STATE", "ATTEMPT", "WORKER", "ERROR"], rows)
        }
    }

    struct Jobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Query job history (newest first), by payload or result fields too.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var filter: HistoryFilter
        @Option var limit: Int?
        @Option var cursor: String?

        func run() async throws {
            let page = try await client.call("GET", "/jobs", query: filter.query.merging(["limit": limit.map(String.init), "cursor": cursor]) { $1 },
                                             repeated: filter.repeated)
            guard !client.json else { return }
            printTable(jobHeader, jobRows(page["jobs"] as? [[String: Any]] ?? []))
            if let next = page["nextCursor"] as? String { print("\nnext page: --cursor \(next)") }
        }
    }

    struct DLQ: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dlq", abstract: "List the dead-letter queue, or requeue / purge from it.",
            discussion: "docket dlq [--queue Q]  ·  docket dlq requeue ID  ·  docket dlq requeue --all  ·  docket dlq purge ID")
        @OptionGroup var client: ClientOptions
        @Argument(help: "list (default), requeue or purge.") var action: String = "list"
        @Argument(help: "Job id for requeue or purge.") var id: String?
        @Flag(help: "With requeue: every dead job (filtered by --queue and --type).") var all = false
        @Option var queue: String?
        @Option var type: String?
        @Option var limit: Int?
        @Option var cursor: String?

        func run() async throws {
            switch (action, id, all) {
            case ("list", nil, false):
                let page = try await client.call("GET", "/dlq", query: ["queue": queue, "limit": limit.map(String.init), "cursor": cursor])
                guard !client.json else { return }
                printTable(jobHeader, jobRows(page["jobs"] as? [[String: Any]] ?? []))
                if let next = page["nextCursor"] as? String { print("\nnext page: --cursor \(next)") }
            case ("requeue", let id?, false):
                let job = try await client.call("POST", "/dlq/\(id)/requeue")
                if !client.json { printTable(jobHeader, jobRows([job])) }
            case ("requeue", nil, true):
                var filter: [String: String] = [:]
                filter["queue"] = queue
                filter["type"] = type
                let body = String(decoding: try JSONSerialization.data(withJSONObject: filter), as: UTF8.self)
                let result = try await client.call("POST", "/dlq/requeue", body: body)
                if !client.json { print("requeued \(text(result["requeued"])), \(text(result["remaining"])) left") }
            case ("purge", let id?, false):
                _ = try await client.call("DELETE", "/dlq/\(id)")
                if !client.json { print("purged \(id)") }
            default:
                throw ValidationError("usage: docket dlq [list] | requeue ID | requeue --all | purge ID")
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Counts by state, per queue.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let stats = try await client.call("GET", "/stats")
            guard !client.json else { return }
            let states = ["pending", "scheduled", "active", "retrying", "dead", "completed", "failed"]
            var rows = [["(all)"] + states.map { text(stats[$0]) } + ["-"]]
            for (name, value) in (stats["queues"] as? [String: [String: Any]] ?? [:]).sorted(by: { $0.key < $1.key }) {
                rows.append([name] + states.map { text(value[$0]) } + [(value["paused"] as? Bool) == true ? "yes" : "no"])
            }
            printTable(["QUEUE"] + states.map { $0.uppercased() } + ["PAUSED"], rows)
        }
    }
}
