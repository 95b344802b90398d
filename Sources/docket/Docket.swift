import ArgumentParser

@main
struct Docket: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docket",
        abstract: "A distributed job queue: Redis-fast, with a SQLite memory.",
        version: "0.1.0",
        subcommands: [Serve.self, Work.self, Recover.self, Enqueue.self, Status.self, Jobs.self, DLQ.self, Stats.self, ScheduleCommand.self, LimitCommand.self, Export.self, Replay.self, JournalCommand.self, BenchHistory.self, Bench.self, BenchJournal.self, BenchRecovery.self]
    )
}
