// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// The journal schema, embedded into DocketJournal (a shipped file is never edited).
let migrations = ["0001_init", "0002_recovery", "0003_schedules", "0004_limits", "0005_unique", "0006_history"]

/// Every Lua transition, embedded into the binary (one file each; `Scripts.swift` is the registry).
let luaScripts = [
    "lib", "enqueue", "claim", "renew", "progress", "complete", "fail", "release",
    "promote", "reap", "cancel", "requeue", "requeue_dead", "pause", "resume", "purge", "restore", "schedule_tick", "replayed",
]

let package = Package(
    name: "Docket",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "docket", targets: ["DocketCLI"]),
        .library(name: "DocketQueue", targets: ["DocketQueue"]),
        .library(name: "DocketWorker", targets: ["DocketWorker"]),
        .library(name: "DocketJournal", targets: ["DocketJournal"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis"),
        .target(
            name: "DocketQueue",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Queue",
            resources: luaScripts.map { .embedInCode("Lua/\($0).lua") },
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DocketJournal",
            dependencies: [
                "DocketQueue",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Journal",
            resources: migrations.map { .embedInCode("../../migrations/\($0).sql") },
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DocketServer",
            dependencies: [
                "DocketQueue",
                "DocketJournal",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Server",
            // Hummingbird's API spans HTTPTypes and NIOCore through re-exports; MemberImportVisibility would
            // have every file import them by hand.
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("ExistentialAny")]
        ),
        .target(
            name: "DocketWorker",
            dependencies: [
                "DocketQueue",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Worker",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "DocketCLI",
            dependencies: [
                "DocketQueue",
                "DocketJournal",
                "DocketServer",
                "DocketWorker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/docket",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DocketTestSupport",
            dependencies: [
                "DocketQueue",
                "DocketJournal",
                "DocketWorker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DocketQueueTests",
            dependencies: ["DocketQueue", "DocketTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/QueueTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DocketJournalTests",
            dependencies: ["DocketQueue", "DocketJournal", "DocketTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/JournalTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DocketServerTests",
            dependencies: [
                "DocketQueue", "DocketJournal", "DocketServer", "DocketTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/ServerTests",
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("ExistentialAny")]
        ),
        .testTarget(
            name: "DocketWorkerTests",
            dependencies: ["DocketQueue", "DocketWorker", "DocketTestSupport"],
            path: "Tests/WorkerTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DocketFaultTests",
            dependencies: [
                "DocketQueue", "DocketJournal", "DocketTestSupport", "DocketCLI",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/FaultTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DocketEndToEndTests",
            dependencies: ["DocketQueue", "DocketTestSupport", "DocketCLI"],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
    ]
)
