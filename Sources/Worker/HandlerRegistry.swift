import DocketQueue
import Foundation

/// A job handler: returns the result as JSON text (nil for none) or throws to fail the attempt.
public typealias JobHandler = @Sendable (JobContext) async throws -> String?

/// The handlers a worker runs, by job type.
public struct HandlerRegistry: Sendable {
    private var handlers: [JobType: JobHandler] = [:]

    public init() {}

    /// Registers a handler on raw JSON: the payload is `context.payload`, the result JSON text.
    public mutating func register(_ type: JobType, _ handler: @escaping JobHandler) {
        handlers[type] = handler
    }

    /// Registers a typed handler: the payload is decoded as `Payload`, the result encoded as JSON.
    /// A payload that does not decode fails the attempt with the decoding error.
    public mutating func register<Payload: Decodable & Sendable, Result: Encodable & Sendable>(
        _ type: JobType, payload: Payload.Type, _ handler: @escaping @Sendable (Payload, JobContext) async throws -> Result
    ) {
        handlers[type] = { context in
            let payload = try JSONDecoder().decode(Payload.self, from: Data(context.payload.utf8))
            let result = try await handler(payload, context)
            if result is EmptyResult { return nil }
            return String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
        }
    }

    public func handler(for type: JobType) -> JobHandler? { handlers[type] }
    public var types: [JobType] { handlers.keys.sorted { $0.rawValue < $1.rawValue } }
}

/// Results and progress are stored as JSON text: checked once, where a handler produces them, so readers
/// can embed them as they are.
enum JSONText {
    /// `text` trimmed when it is JSON; otherwise `text` as a JSON string.
    static func normalized(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed])) != nil { return trimmed }
        return (try? String(decoding: JSONEncoder().encode(text), as: UTF8.self)) ?? "null"
    }
}

/// A result that stores nothing (for typed handlers with no result).
public struct EmptyResult: Encodable, Sendable {
    public init() {}
}

/// A handler's failure with a message of its own choosing (shown as the job's `lastError`).
public struct JobFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ message: String) { self.description = message }
}
