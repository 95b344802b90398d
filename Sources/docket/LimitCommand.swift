import ArgumentParser
import Foundation

extension Docket {
    /// `docket limit add|list|rm`: a thin client of `/limits`.
    struct LimitCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "limit", abstract: "Add, list or remove rate and concurrency limits through the REST API.",
            discussion: """
                docket limit add NAME [--queue Q] [--type T] [--key /payload/pointer] [--rate 10/1m] [--concurrency N]
                docket limit list  ·  docket limit rm NAME
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "add, list (default) or rm.") var action: String = "list"
        @Argument(help: "The limit's name.") var name: String?
        @Option(help: "add: only jobs of this queue.") var queue: String?
        @Option(help: "add: only jobs of this type.") var type: String?
        @Option(help: "add: a JSON pointer into the payload; counted per distinct value (e.g. /customer_id).") var key: String?
        @Option(help: "add: at most N starts per window, as N/DURATION (e.g. 10/1m).") var rate: String?
        @Option(help: "add: at most N active at once.") var concurrency: Int?

        func run() async throws {
            switch (action, name) {
            case ("list", nil):
                let list = try await client.call("GET", "/limits")
                guard !client.json else { return }
                printTable(Self.header, (list["limits"] as? [[String: Any]] ?? []).map(Self.row))
            case ("add", let name?):
                var body: [String: Any] = ["name": name]
                body["queue"] = queue
                body["type"] = type
                body["key"] = key
                body["concurrency"] = concurrency
                if let rate {
                    let parts = rate.split(separator: "/", maxSplits: 1)
                    guard parts.count == 2, let n = Int(parts[0]) else { throw ValidationError("--rate: \"\(rate)\" is not N/DURATION, e.g. 10/1m") }
                    body["rate"] = ["limit": n, "per": String(parts[1])]
                }
                let text = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
                let limit = try await client.call("POST", "/limits", body: text)
                if !client.json { printTable(Self.header, [Self.row(limit)]) }
            case ("rm", let name?):
                _ = try await client.call("DELETE", "/limits/\(name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)")
                if !client.json { print("removed \(name)") }
            default:
                throw ValidationError("usage: docket limit [list] | add NAME [--rate N/D] [--concurrency N] [--queue Q] [--type T] [--key /p] | rm NAME")
            }
        }

        static let header = ["NAME", "QUEUE", "TYPE", "KEY", "RATE", "CONCURRENCY"]

        static func row(_ l: [String: Any]) -> [String] {
            let rate = (l["rate"] as? [String: Any]).map { "\(text($0["limit"]))/\(text($0["per"]))" } ?? "-"
            return [text(l["name"]), text(l["queue"]), text(l["type"]), text(l["key"]), rate, text(l["concurrency"])]
        }
    }
}
