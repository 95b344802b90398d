/// An error from a queue operation.
public struct QueueError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable { case leaseLost, notFound, conflict, unexpectedReply }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// The worker no longer holds the job's lease (it expired and was reaped, or the job moved on).
        public static var leaseLost: Self { .init(.leaseLost) }
        public static var notFound: Self { .init(.notFound) }
        /// The job is in a state that does not allow the operation (`state` says which).
        public static var conflict: Self { .init(.conflict) }
        public static var unexpectedReply: Self { .init(.unexpectedReply) }
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let jobID: JobID?
    /// For `conflict`: the state the job was in.
    public let state: JobState?
    public let message: String

    public init(_ code: Code, jobID: JobID? = nil, state: JobState? = nil, message: String = "") {
        self.code = code
        self.jobID = jobID
        self.state = state
        self.message = message
    }

    public var description: String {
        var text = "queue: \(code)"
        if let jobID { text += " job \(jobID)" }
        if let state { text += " (state \(state.rawValue))" }
        if !message.isEmpty { text += ": \(message)" }
        return text
    }
}
