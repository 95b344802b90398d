import DocketQueue
import Foundation
import GRDB
import Logging

/// The SQLite journal file: opened (and migrated) once, shared by the writer, the reader and the services.
public struct Journal: Sendable {
    public let database: DatabasePool
    public let writer: JournalWriter
    public let reader: JournalReader
    /// This journal's identity, stable across restarts (several servers may share one Redis).
    public let id: String
    public let path: String

    /// Opens or creates the journal at `path` and applies pending migrations.
    public static func open(path: String, logger: Logger) throws -> Journal {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // A new journal returns the pages retention frees with incremental vacuum (`JournalVacuum`). The mode must be
        // set before the first table (and before WAL mode writes the header), so a new file gets it first.
        if !FileManager.default.fileExists(atPath: path) {
            try DatabaseQueue(path: path).writeWithoutTransaction { db in try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL; VACUUM") }
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // After a checkpoint the WAL file shrinks back to at most this (it otherwise keeps its largest size).
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            // 64 MB of page cache per connection (SQLite's default is 2 MB): a journal of millions of jobs keeps its
            // index pages in memory instead of reading them back for every batch.
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        let database = try DatabasePool(path: path, configuration: configuration)
        try JournalSchema.migrator.migrate(database)
        let id = try database.write { db -> String in
            if let id = try String.fetchOne(db, sql: "SELECT id FROM journalInfo") { return id }
            let id = "j-\(UUID().uuidString.prefix(12).lowercased())"
            try db.execute(sql: "INSERT INTO journalInfo (id, createdAt) VALUES (?, ?)", arguments: [id, Date().millis])
            return id
        }
        return Journal(database: database, writer: JournalWriter(database: database, logger: logger), reader: JournalReader(database: database),
                       id: id, path: path)
    }
}
