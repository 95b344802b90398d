import Foundation

/// The `docket` executable built beside the test bundle (or `DOCKET_BINARY`).
public enum DocketBinary {
    public static var path: String {
        if let path = ProcessInfo.processInfo.environment["DOCKET_BINARY"] { return path }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        return bundle.appendingPathComponent("docket").path
    }

    /// Spawns `docket ARGS` with a clean environment for DOCKET_* (plus `environment`).
    public static func spawn(_ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        var env = environment
        for key in ProcessInfo.processInfo.environment.keys where key.hasPrefix("DOCKET_") && env[key] == nil { env[key] = "" }
        return try ChildProcess(path, arguments, environment: env)
    }
}
