import DocketQueue
import Foundation

/// The handlers built into the `docket` binary (SPEC §5), used by tests, benchmarks and the quick start.
public enum Builtins {
    /// Adds `docket.noop`, `docket.echo`, `docket.sleep` and `docket.fail` to `registry`.
    public static func register(into registry: inout HandlerRegistry) {
        registry.register("docket.noop") { _ in nil }
        registry.register("docket.echo") { context in context.payload }
        registry.register("docket.sleep") { context in
            let ms = try number(context.payload, "ms") ?? 0
            guard ms >= 0 else { throw JobFailure("docket.sleep: \"ms\" must be >= 0") }
            try await Task.sleep(for: .milliseconds(ms))
            return nil
        }
        registry.register("docket.fail") { context in
            // {"times": k} fails attempts 1...k, then succeeds; without `times` it always fails.
            if let times = try number(context.payload, "times"), context.attempt > times {
                return #"{"succeededOnAttempt":\#(context.attempt)}"#
            }
            throw JobFailure("docket.fail: attempt \(context.attempt) failed on purpose")
        }
    }

    /// The integer field `key` of a JSON object payload; nil when absent or the payload is not an object.
    private static func number(_ payload: String, _ key: String) throws -> Int64? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8), options: [.fragmentsAllowed]) as? [String: Any],
            let value = object[key]
        else { return nil }
        guard let n = value as? NSNumber, !(value is Bool) else { throw JobFailure("\"\(key)\" must be a number") }
        return n.int64Value
    }
}
