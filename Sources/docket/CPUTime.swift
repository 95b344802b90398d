import DocketQueue
import Foundation

/// CPU time in seconds (user + system) of the processes a benchmark watches.
enum CPUTime {
    /// This process, or (with `children`) its children already reaped.
    static func own(children: Bool = false) -> Double {
        var usage = rusage()
        getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Another process, all its threads: fields 14 and 15 (utime, stime) of /proc/PID/stat. nil once it is gone.
    static func process(_ pid: pid_t) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else {
            return nil
        }
        // After the command name in parentheses come the fields from 3 (state) on.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// redis-server's used_cpu_user + used_cpu_sys (INFO cpu), summed over every master of a cluster (replicas not
    /// counted): works for a Redis on another host too.
    static func redis(_ redis: RedisClient) async throws -> Double {
        try await redis.sendToEachMaster(RedisCommand("INFO", ["cpu"])).reduce(0) { $0 + info($1, ["used_cpu_user", "used_cpu_sys"]) }
    }

    /// The sum of the numeric `fields` of an INFO reply.
    static func info(_ reply: RESPValue, _ fields: Set<Substring>) -> Double {
        (reply.string ?? "").split(whereSeparator: \.isNewline).reduce(0) { sum, line in
            let parts = line.split(separator: ":")
            guard parts.count == 2, fields.contains(parts[0]) else { return sum }
            return sum + (Double(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0)
        }
    }
}
