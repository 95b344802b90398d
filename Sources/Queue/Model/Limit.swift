import Foundation

/// A rate or concurrency limit on starting jobs (SPEC §8), checked inside `claim.lua`: a job it holds back stays
/// pending, is not charged an attempt, and the claim takes the next eligible job instead.
public struct Limit: Sendable, Hashable, Codable {
    /// 1–128 characters of `[A-Za-z0-9._:-]`.
    public var name: String
    /// Only jobs of this queue (nil: every queue) and of this type (nil: every type).
    public var queue: String?
    public var type: String?
    /// A JSON pointer into the payload (`/customer_id`): counted per distinct value (nil: one count).
    public var key: String?
    /// At most `rateLimit` starts in any window of `ratePerMs` (sliding, kept in Redis at claim time).
    public var rateLimit: Int?
    public var ratePerMs: Int64?
    /// At most this many active at once; a slot frees when its job stops being active (completed, failed, released,
    /// reaped after its worker died).
    public var concurrency: Int?
    public var createdAt: Date

    public init(name: String, queue: String? = nil, type: String? = nil, key: String? = nil, rateLimit: Int? = nil, ratePerMs: Int64? = nil,
                concurrency: Int? = nil, createdAt: Date = Date()) {
        self.name = name
        self.queue = queue
        self.type = type
        self.key = key
        self.rateLimit = rateLimit
        self.ratePerMs = ratePerMs
        self.concurrency = concurrency
        self.createdAt = Date(millis: createdAt.millis)
    }

    public func applies(to queue: QueueName) -> Bool { self.queue == nil || self.queue == queue.rawValue }
}
