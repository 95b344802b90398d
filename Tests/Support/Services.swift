import Logging
import ServiceLifecycle

/// Runs `services` in a ServiceGroup (in dependency order) around `body`, then shuts them down gracefully.
public func withRunningServices<T: Sendable>(
    _ services: [any Service], logger: Logger = TestQueue.logger, _ body: () async throws -> T
) async throws -> T {
    let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let result = try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}
