import GRDB

/// The migrations of `migrations/`, embedded at build time. A shipped file is never edited.
enum JournalSchema {
    static let migrations: [(id: String, sql: [UInt8])] = [
        ("0001_init", PackageResources._001_init_sql),
        ("0002_recovery", PackageResources._002_recovery_sql),
        ("0003_schedules", PackageResources._003_schedules_sql),
        ("0004_limits", PackageResources._004_limits_sql),
        ("0005_unique", PackageResources._005_unique_sql),
        ("0006_history", PackageResources._006_history_sql),
    ]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in migrations {
            migrator.registerMigration(migration.id) { db in
                try db.execute(sql: String(decoding: migration.sql, as: UTF8.self))
            }
        }
        return migrator
    }
}
