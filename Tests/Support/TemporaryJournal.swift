import DocketJournal
import Foundation

/// A real journal file in a fresh temp directory, removed afterwards.
public func withTemporaryJournal<T: Sendable>(_ body: (Journal) async throws -> T) async throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docket-journal-\(UUID().uuidString.prefix(8))")
    defer { try? FileManager.default.removeItem(at: dir) }
    let journal = try Journal.open(path: dir.appendingPathComponent("journal.sqlite").path, logger: TestQueue.logger)
    return try await withRunningServices([journal.writer]) { try await body(journal) }
}
