import ArgumentParser
import DocketJournal
import DocketQueue
import Foundation
import Logging

extension Docket {
    /// `docket replay`: re-runs journaled jobs through `POST /jobs/replay`; a dry run unless `--yes`.
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-run jobs from the journal (even ones Redis dropped long ago): prints what it would do unless --yes.",
            discussion: """
                Each matching job (newest first, at most --limit) gets a new job with its type, payload and options and \
                "replayOf" naming it; the original gets a `replayed` event. --request-id makes a retry replay nothing \
                twice (the default is a new id per run). When more jobs match than --limit, rerun with the printed --cursor.
                """)
        @OptionGroup var client: ClientOptions
        @OptionGroup var filter: HistoryFilter
        @Option(help: "Go on from a previous run's cursor.") var cursor: String?
        @Option(help: "Most jobs to replay (1-10000, default 1000).") var limit = 1000
        @Option(name: .customLong("to-queue"), help: "Enqueue the copies to this queue instead of each original's.") var toQueue: String?
        @Option(help: "Idempotency: the same id replays each job once (default: a new one).") var requestId: String?
        @Flag(help: "Replay for real (without it: a dry run).") var yes = false

        func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1...10000") }
        }

        func run() async throws {
            var object = filter.object
            if let cursor { object["cursor"] = cursor }
            var body: [String: Any] = ["filter": object, "dryRun": !yes, "limit": limit]
            if let toQueue { body["queue"] = toQueue }
            let text = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
            let id = requestId ?? "replay-\(UUID().uuidString.lowercased())"
            let data = try await client.raw("POST", "/jobs/replay", body: text, headers: ["X-Request-Id": id])
            if client.json { return print(String(decoding: data, as: UTF8.self)) }
            let answer = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            let originals = answer["originals"] as? [String] ?? []
            let copies = answer["jobs"] as? [String] ?? []
            let matched = answer["matched"] as? Int ?? 0
            if yes {
                print("replayed \(copies.count) of \(matched) matching jobs (request id \(id))")
                printTable(["ORIGINAL", "COPY"], zip(originals, copies).map { [$0, $1] })
            } else {
                print("dry run: \(matched) jobs match; this would replay \(originals.count) (add --yes to replay)")
                printTable(["WOULD REPLAY"], originals.map { [$0] })
            }
            if let next = answer["nextCursor"] as? String { print("more match: go on with --cursor \(next)") }
        }
    }

    /// `docket journal stats|vacuum`: the journal file, read directly (it is local to its server).
    struct JournalCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "journal", abstract: "Inspect or compact a journal file.", subcommands: [Stats.self, Vacuum.self])

        struct Location: ParsableArguments {
            @Option(help: "Journal file (env DOCKET_JOURNAL, default <data-dir>/journal.sqlite).") var journal: String?
            @Option(help: "Data directory (env DOCKET_DATA_DIR, default ./.docket).") var dataDir: String?

            func open() throws -> Journal {
                let dir = URL(fileURLWithPath: dataDir ?? env("DOCKET_DATA_DIR") ?? ".docket", isDirectory: true)
                let path = journal ?? env("DOCKET_JOURNAL") ?? dir.appendingPathComponent("journal.sqlite").path
                guard FileManager.default.fileExists(atPath: path) else { throw CLIError("no journal at \(path)") }
                do { return try Journal.open(path: path, logger: .init(label: "docket.journal")) } catch {
                    throw CLIError("cannot open the journal at \(path): \(error)")
                }
            }
        }

        struct Stats: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Rows, bytes, free pages, field indexes and, per queue, jobs, events and the oldest event kept.")
            @OptionGroup var location: Location
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                let stats = try await JournalStats.read(try location.open())
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                    return print(String(decoding: try encoder.encode(stats), as: UTF8.self))
                }
                let mb = { (bytes: Int64) in bytes < 1 << 20 ? "\(bytes / 1024) KB" : String(format: "%.1f MB", Double(bytes) / 1_048_576) }
                print("journal \(stats.path): \(mb(stats.bytes)) on disk, \(stats.pages) pages of \(stats.pageSize) bytes, \(stats.freePages) free (auto-vacuum \(stats.autoVacuum))")
                print("\(stats.jobs) jobs, \(stats.events) events, \(stats.conflicts) conflicts, \(stats.fieldRows) field index rows")
                let time = { (ms: Int64?) in ms.map { Timestamp.format(Date(millis: $0)) } ?? "-" }
                printTable(["QUEUE", "JOBS", "EVENTS", "OLDEST EVENT", "NEWEST EVENT"],
                           stats.queues.map { [$0.queue, "\($0.jobs)", "\($0.events)", time($0.oldestEvent), time($0.newestEvent)] })
                if !stats.fields.isEmpty {
                    printTable(["FIELD", "STATE", "ROWS", "BUILT"], stats.fields.map { [$0.field, $0.state, "\($0.rows)", String(format: "%.0f%%", $0.built * 100)] })
                }
                if let tables = stats.tableBytes {
                    // The largest; all of them with --json.
                    printTable(["TABLE OR INDEX", "SIZE"], tables.sorted { $0.value > $1.value }.prefix(10).map { [$0.key, mb($0.value)] })
                }
            }
        }

        struct Vacuum: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Rewrite the journal file (VACUUM) and switch it to incremental vacuum; stop the server first.",
                discussion: "A running `docket serve` returns free pages itself (--vacuum-interval) once its journal uses incremental vacuum; journals created before that need this once.")
            @OptionGroup var location: Location

            func run() async throws {
                let journal = try location.open()
                let before = try await JournalStats.read(journal, tables: false)
                try await JournalVacuum.full(journal)
                let after = try await JournalStats.read(journal, tables: false)
                print("vacuumed \(journal.path): \(before.bytes) → \(after.bytes) bytes (auto-vacuum \(after.autoVacuum))")
            }
        }
    }
}
