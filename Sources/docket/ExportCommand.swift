import ArgumentParser
import DocketQueue
import Foundation

extension Docket {
    /// `docket export --out FILE`: the journal's jobs (with their events) as NDJSON, fetched in chunks from
    /// `GET /jobs/export`. An existing file is resumed after its last line.
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export jobs and their histories from the journal as NDJSON (newest first), resuming an existing file.")
        @OptionGroup var client: ClientOptions
        @Option(help: "File to write (appended to and resumed if it exists).") var out: String
        @OptionGroup var filter: HistoryFilter
        @Option(help: "Jobs per request (default 10000).") var chunk = 10_000

        func validate() throws {
            guard (1...1_000_000).contains(chunk) else { throw ValidationError("--chunk must be 1...1000000") }
        }

        func run() async throws {
            let url = URL(fileURLWithPath: out)
            if !FileManager.default.fileExists(atPath: out) { _ = FileManager.default.createFile(atPath: out, contents: nil) }
            guard let handle = try? FileHandle(forUpdating: url) else { throw CLIError("--out: cannot write \(out)") }
            defer { try? handle.close() }
            var cursor = try Self.cursor(afterLastLineOf: url)
            if let cursor { FileHandle.standardError.write(Data("resuming after \(cursor)\n".utf8)) }
            try handle.seekToEnd()
            var total = 0
            while true {
                let data = try await client.raw("GET", "/jobs/export", query: filter.query.merging(["limit": String(chunk), "cursor": cursor]) { $1 },
                                                repeated: filter.repeated)
                try handle.write(contentsOf: data)
                let lines = data.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
                total += lines
                guard lines == chunk, let next = Self.cursor(ofLastLineIn: data) else { break }
                cursor = next
            }
            print("exported \(total) jobs to \(out)")
        }

        /// The position after the last complete line of `data`: `<createdAt ms>:<id>` (what `cursor=` takes).
        static func cursor(ofLastLineIn data: Data) -> String? {
            let lines = data.split(separator: UInt8(ascii: "\n"))
            guard let last = lines.last, let object = (try? JSONSerialization.jsonObject(with: Data(last))) as? [String: Any],
                let id = object["id"] as? String, let created = (object["createdAt"] as? String).flatMap(Timestamp.parse)
            else { return nil }
            return "\(created.millis):\(id)"
        }

        static func cursor(afterLastLineOf url: URL) throws -> String? {
            guard let data = try? Data(contentsOf: url), !data.isEmpty else { return nil }
            guard data.last == UInt8(ascii: "\n") else { throw CLIError("--out: \(url.path) ends in a partial line; remove it to resume") }
            return cursor(ofLastLineIn: data)
        }
    }
}
