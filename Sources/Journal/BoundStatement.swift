import GRDB
import GRDBSQLite

/// Runs a cached statement with values bound straight through SQLite's C API: GRDB's `StatementArguments` box every
/// value in an existential and an array per call, which cost more than SQLite's own work on the ingestion path.
/// Every parameter is bound on each run, so nothing of an earlier run (GRDB's or this one's) carries over.
struct BoundStatement {
    private let statement: Statement
    private var index: CInt = 0

    init(_ statement: Statement) {
        self.statement = statement
        sqlite3_reset(statement.sqliteStatement)
    }

    mutating func bind(_ value: String?) {
        index += 1
        guard let value else {
            sqlite3_bind_null(statement.sqliteStatement, index)
            return
        }
        var text = value
        text.withUTF8 { bytes in
            // An empty string may have no storage; SQLite reads a null pointer as NULL, so point at a static "".
            let start = UnsafeRawPointer(bytes.baseAddress ?? Self.empty.utf8Start).assumingMemoryBound(to: CChar.self)
            _ = sqlite3_bind_text(statement.sqliteStatement, index, start, CInt(bytes.count), Self.transient)
        }
    }

    mutating func bind(_ value: Int64?) {
        index += 1
        if let value { sqlite3_bind_int64(statement.sqliteStatement, index, value) } else { sqlite3_bind_null(statement.sqliteStatement, index) }
    }

    mutating func bind(_ value: Int?) { bind(value.map(Int64.init)) }

    /// Runs the statement to its end (it returns no rows).
    func run() throws {
        precondition(index == sqlite3_bind_parameter_count(statement.sqliteStatement), "every parameter is bound")
        var code = sqlite3_step(statement.sqliteStatement)
        while code == SQLITE_ROW { code = sqlite3_step(statement.sqliteStatement) }
        guard code == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(statement.sqliteStatement)))
            sqlite3_reset(statement.sqliteStatement)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
        }
    }

    private static let empty: StaticString = ""
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
}
