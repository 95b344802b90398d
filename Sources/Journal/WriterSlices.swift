import ServiceLifecycle

/// Background work on the journal in short write transactions (index builds, pruning, vacuum): each step is sized to
/// hold SQLite's single writer about `slice`, and the writer is then left free about as long, so ingestion and
/// enqueues never wait behind it for more than about one slice.
enum WriterSlices {
    /// Calls `step(size)` until it returns false (or the task is cancelled or shutting down), adapting `size` between
    /// `range` bounds from how long each step took.
    static func run(start: Int, range: ClosedRange<Int>, slice: Duration = .milliseconds(10), _ step: (Int) async throws -> Bool) async throws {
        var size = start
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let began = ContinuousClock.now
            guard try await step(size) else { return }
            let took = began.duration(to: .now)
            size = took > slice * 2 ? max(range.lowerBound, size / 2) : took < slice / 2 ? min(range.upperBound, size * 2) : size
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: max(took, .milliseconds(1))) }
        }
    }
}
