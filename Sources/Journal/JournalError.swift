/// An error from the journal.
public struct JournalError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable { case invalidCursor, closed, corrupt, unavailable, scanLimit }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// A pagination cursor that this journal did not issue.
        public static var invalidCursor: Self { .init(.invalidCursor) }
        /// The writer has shut down.
        public static var closed: Self { .init(.closed) }
        /// The journal cannot commit (disk full, read-only, I/O error): nothing was acknowledged.
        public static var unavailable: Self { .init(.unavailable) }
        /// A stored row that does not decode.
        public static var corrupt: Self { .init(.corrupt) }
        /// A search on a field with no index would read more jobs than the scan limit allows.
        public static var scanLimit: Self { .init(.scanLimit) }
        public var description: String { base.rawValue }
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, message: String = "") {
        self.code = code
        self.message = message
    }
    public var description: String { message.isEmpty ? "journal: \(code)" : "journal: \(code): \(message)" }
}
