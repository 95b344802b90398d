import DocketQueue
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Drains every queue's Redis event stream into the journal, in batches: inserts idempotently, advances
/// job rows and its cursor in one transaction, then lets Redis trim what every live journal has committed.
public final class JournalIngestor: Service, Sendable {
    public struct Configuration: Sendable {
        public var batchSize = 1000
        /// Pause between passes that found nothing new.
        public var idleInterval: Duration = .milliseconds(50)
        /// Pause after a pass that found only a few events (under a quarter batch), so the next one reads a
        /// larger batch: each pass costs a commit (fsync) and a few Redis round trips whatever its size.
        public var gatherInterval: Duration = .milliseconds(20)
        /// A journal silent this long stops holding back trimming (`DOCKET_JOURNAL_STALE`).
        public var staleAfter: Duration = .seconds(3600)
        public init() {}
    }

    let journal: Journal
    let driver: RedisQueueDriver
    let configuration: Configuration
    let logger: Logger
    private let observers = Mutex<[@Sendable ([JournalEvent]) -> Void]>([])
    private let lagMillis = Atomic<Int64>(0)
    private let ingested = Atomic<Int>(0)
    /// Jobs recently known to be defined in the journal (saves a lookup per event on the hot path).
    private let known = Mutex<Set<JobID>>([])

    public init(journal: Journal, driver: RedisQueueDriver, configuration: Configuration = .init(), logger: Logger) {
        self.journal = journal
        self.driver = driver
        self.configuration = configuration
        self.logger = logger
    }

    /// Calls `observer` with every batch once it is committed (metrics).
    public func observe(_ observer: @escaping @Sendable ([JournalEvent]) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Age of the oldest event not yet journaled, as of the last pass (0 when caught up).
    public var lag: Duration { .milliseconds(lagMillis.load(ordering: .relaxed)) }
    /// Events ingested since start.
    public var ingestedCount: Int { ingested.load(ordering: .relaxed) }

    public func run() async throws {
        var cursors = try await journal.reader.cursors()
        var failing = false
        var staleCheck = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                if staleCheck <= .now {
                    staleCheck = .now + .seconds(60)
                    for id in try await driver.staleJournals(staleAfter: configuration.staleAfter) where id != journal.id {
                        logger.warning("A journal has been silent too long and no longer holds back stream trimming; its history will have gaps",
                                       metadata: ["journal.id": "\(id)"])
                    }
                }
                let moved = try await pass(&cursors)
                if failing { logger.info("Journal ingestion reached Redis again") }
                failing = false
                let pause = moved == 0 ? configuration.idleInterval : moved < configuration.batchSize / 4 ? configuration.gatherInterval : nil
                if let pause { try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) } }
            } catch {
                if !failing { logger.warning("Journal ingestion failed; retrying", metadata: ["error": "\(error)"]) }
                failing = true
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        // One last pass so a clean shutdown leaves nothing behind.
        _ = try? await pass(&cursors)
    }

    /// Definitions (from Redis) of the jobs `batch` meets mid-life: not enqueued in the batch and not defined in
    /// the journal (this journal joined late, or their `enqueued` event was trimmed before it was read).
    func definitions(for batch: [JournalEvent], queue: QueueName) async throws -> [Job] {
        let enqueued = Set(batch.lazy.filter { $0.job != nil }.map(\.jobID))
        // Filtered under the lock: a copy of the set taken out would be duplicated whole by the next insert.
        let candidates = Set(batch.lazy.map(\.jobID).filter { !enqueued.contains($0) })
        let unknown = known.withLock { set in candidates.filter { !set.contains($0) } }.map { $0 }
        if unknown.isEmpty { return [] }
        let defined = try await journal.reader.definedJobs(unknown)
        remember(Array(defined))
        let missing = unknown.filter { !defined.contains($0) }
        if missing.isEmpty { return [] }
        let found = try await driver.jobs(missing.map { ($0, queue) }).compactMap { $0 }
        if found.count < missing.count {
            logger.warning("Met jobs whose definition Redis no longer holds; they are journaled as undefined and never restored",
                           metadata: ["jobs.count": "\(missing.count - found.count)", "queue.name": "\(queue)"])
        }
        return found
    }

    private func remember(_ ids: [JobID]) {
        known.withLock { set in
            if set.count > 200_000 { set.removeAll(keepingCapacity: true) }
            set.formUnion(ids)
        }
    }

    /// One pass over every queue; returns how many events it journaled.
    @discardableResult
    public func pass(_ cursors: inout [QueueName: String]) async throws -> Int {
        var moved = 0
        var oldestPending: Int64?
        try await driver.journalHeartbeat(journalID: journal.id)
        // Queues Redis lists, plus any this journal has drained before (Redis may have lost its list).
        let queues = Set(try await driver.queues()).union(cursors.keys).sorted { $0.rawValue < $1.rawValue }
        for queue in queues {
            let cursor = cursors[queue] ?? "0-0"
            var events = try await driver.events(of: queue, after: cursor, count: configuration.batchSize)
            guard !events.isEmpty else {
                // A stream that now ends before our cursor was lost (Redis restarted empty): start over;
                // (jobId, seq) makes re-reading harmless.
                let newest = try await driver.lastStreamID(of: queue)
                if let n = StreamID(newest), let c = StreamID(cursor), n < c {
                    logger.warning("Event stream went backwards; re-reading it", metadata: ["queue.name": "\(queue)", "stream.cursor": "\(cursor)"])
                    cursors[queue] = "0-0"
                }
                continue
            }
            // A full batch means more is waiting: the next batch is read while this one is written (the journal's
            // commit and Redis' reply overlap instead of taking turns), up to a few batches per queue per pass.
            for round in 1...4 {
                guard let last = events.last else { break }
                let full = events.count == configuration.batchSize
                if full, let first = StreamID(last.streamID) {
                    oldestPending = min(oldestPending ?? Int64(first.ms), Int64(first.ms))
                }
                async let prefetched = full && round < 4
                    ? driver.events(of: queue, after: last.streamID, count: configuration.batchSize) : []
                let batch = events.map { JournalEvent($0, queue: queue) }
                let definitions = try await definitions(for: batch, queue: queue)
                try await journal.writer.write([.define(definitions), .events(batch), .cursor(queue, last.streamID)])
                remember(batch.map(\.jobID))
                for observer in observers.withLock({ $0 }) { observer(batch) }
                cursors[queue] = last.streamID
                moved += events.count
                try await driver.commitJournalCursor(journalID: journal.id, queue: queue, streamID: last.streamID, staleAfter: configuration.staleAfter)
                events = try await prefetched
            }
        }
        ingested.add(moved, ordering: .relaxed)
        lagMillis.store(oldestPending.map { max(0, Date().millis - $0) } ?? 0, ordering: .relaxed)
        return moved
    }
}
