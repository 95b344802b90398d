import Synchronization

/// Wake-ups for a claimer that waits on several queues in a Redis Cluster, where one `BLPOP` cannot span slots.
/// One listener task per queue (started on first use, ended when the client shuts down) blocks on that queue's wake
/// list on the master serving it and hands each token to a waiting claimer, or keeps it until the next one waits.
/// So no wake-up is lost the way it would be by cancelling `BLPOP`s that already took a token.
final class WakeHub: Sendable {
    private struct Waiter {
        let queues: Set<QueueName>
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        /// Queues woken while no claimer waited for them.
        var woken: Set<QueueName> = []
        var listening: Set<QueueName> = []
        var waiters: [UInt64: Waiter] = [:]
        /// Waits that ended (timed out) before their continuation was registered.
        var finished: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Waits until one of `queues` is woken, or `timeout` passes. `listen` starts the listener of a queue not yet
    /// listened to; it calls `signal` for each token and `stopped` when it ends.
    func wait(on queues: [QueueName], timeout: Duration, listen: (QueueName) -> Void) async {
        let set = Set(queues)
        let (id, start, ready) = state.withLock { s -> (UInt64, Set<QueueName>, Bool) in
            let start = set.subtracting(s.listening)
            s.listening.formUnion(start)
            s.nextID += 1
            if !s.woken.isDisjoint(with: set) {
                s.woken.subtract(set)
                return (s.nextID, start, true)
            }
            return (s.nextID, start, false)
        }
        for queue in start { listen(queue) }
        if ready { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { s -> Bool in
                        if s.finished.remove(id) != nil { return true }
                        if !s.woken.isDisjoint(with: set) {
                            s.woken.subtract(set)
                            return true
                        }
                        s.waiters[id] = Waiter(queues: set, continuation: continuation)
                        return false
                    }
                    if now { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            self.finish(id)
        }
    }

    private func finish(_ id: UInt64) {
        let waiter = state.withLock { s -> Waiter? in
            if let waiter = s.waiters.removeValue(forKey: id) { return waiter }
            s.finished.insert(id)
            return nil
        }
        waiter?.continuation.resume()
    }

    /// A token arrived for `queue`: wake one claimer waiting for it, or remember it for the next.
    func signal(_ queue: QueueName) {
        let waiter = state.withLock { s -> Waiter? in
            if let (id, _) = s.waiters.first(where: { $0.value.queues.contains(queue) }) { return s.waiters.removeValue(forKey: id) }
            s.woken.insert(queue)
            return nil
        }
        waiter?.continuation.resume()
    }

    /// The listener of `queue` ended (the client shut down): the next wait starts another.
    func stopped(_ queue: QueueName) {
        _ = state.withLock { $0.listening.remove(queue) }
    }
}
