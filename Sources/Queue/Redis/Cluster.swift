import Logging
import NIOCore
import Synchronization

/// Redis Cluster's key → slot function: CRC16 (XMODEM) of the key, or of its first non-empty `{hash tag}`, mod 16384.
/// The only place Docket computes slots.
public enum ClusterSlot {
    public static let count = 16384

    public static func of<C: BidirectionalCollection<UInt8>>(_ key: C) -> Int {
        var hashed = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let rest = key[key.index(after: open)...]
            if let close = rest.firstIndex(of: UInt8(ascii: "}")), close != rest.startIndex { hashed = rest[..<close] }
        }
        var crc: UInt16 = 0
        for byte in hashed { crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)] }
        return Int(crc) & (count - 1)
    }

    public static func of(_ key: String) -> Int { of(Array(key.utf8)) }

    /// A short hash tag whose slot is `slot` (a key `…{tag}…` lands there): the first decimal number that hashes to it.
    public static func tag(for slot: Int) -> String {
        var i = 0
        while of(Array(String(i).utf8)) != slot { i += 1 }
        return String(i)
    }

    private static let table: [UInt16] = (0..<256).map { i in
        var crc = UInt16(i) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}

extension RedisCommand {
    /// The key that decides which cluster node runs this command; nil for commands without keys (any node answers).
    var routingKey: [UInt8]? {
        guard arguments.count > 1 else { return nil }
        switch name.uppercased() {
        case "EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO":
            guard arguments.count > 3, let n = Int(String(decoding: arguments[2].bytes, as: UTF8.self)), n > 0 else { return nil }
            return arguments[3].bytes
        case "PING", "INFO", "SCRIPT", "ROLE", "CLUSTER", "SCAN", "FLUSHALL", "FLUSHDB", "DBSIZE", "CONFIG", "CLIENT", "ECHO",
            "TIME", "ASKING", "READONLY", "AUTH", "SELECT", "COMMAND", "FUNCTION", "SLOWLOG", "LATENCY", "MEMORY", "WAIT":
            return nil
        default:
            return arguments[1].bytes
        }
    }
}

/// The cluster side of `RedisClient`: the slot map (from `CLUSTER SLOTS`), one `ConnectionPool` per master, and
/// routing: each command goes to the owner of its key's slot, a pipeline is split per node and sent to all of them at
/// once, `MOVED` updates the map and retries, `ASK` retries once on the importing node after `ASKING`, `TRYAGAIN`
/// and `CLUSTERDOWN` retry after a short pause until the command deadline.
final class ClusterRouter: Sendable {
    private struct SlotMap {
        /// Slot → index in `addresses` (`UInt16.max`: no owner known).
        var owners = [UInt16](repeating: .max, count: ClusterSlot.count)
        var addresses: [String] = []
        var refreshedAt: ContinuousClock.Instant?
    }

    private let url: RedisURL
    private let seeds: [String]
    private let configuration: RedisClient.Configuration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let map = Mutex(SlotMap())
    private let pools = Mutex<[String: ConnectionPool]>([:])
    private let refreshLock = Mutex<Bool>(false)
    /// Redirects followed so far.
    let redirects = Mutex(RedisClient.Redirects())

    init(url: RedisURL, nodes: [RedisURL.SentinelNode], configuration: RedisClient.Configuration, logger: Logger, group: any EventLoopGroup) {
        self.url = url
        self.seeds = nodes.map { Self.address($0.host, $0.port) }
        self.configuration = configuration
        self.logger = logger
        self.group = group
    }

    static func address(_ host: String, _ port: Int) -> String { "\(host):\(port)" }

    private static func split(_ address: String) -> (host: String, port: Int) {
        let colon = address.lastIndex(of: ":")!
        return (String(address[..<colon]), Int(address[address.index(after: colon)...]) ?? 6379)
    }

    func pool(_ address: String) -> ConnectionPool {
        pools.withLock { pools in
            if let pool = pools[address] { return pool }
            let (host, port) = Self.split(address)
            let pool = ConnectionPool(url: url.at(host: host, port: port), configuration: configuration, logger: logger, group: group)
            pools[address] = pool
            return pool
        }
    }

    func dropConnections() { for pool in pools.withLock({ Array($0.values) }) { pool.dropConnections() } }
    func shutdown() { for pool in pools.withLock({ Array($0.values) }) { pool.shutdown() } }

    // MARK: Slot map

    /// Asks the known nodes, then the seeds, for the slot map. Skipped when the map is younger than `minAge` (many
    /// callers seeing the same `MOVED` refresh once).
    func refresh(minAge: Duration = .milliseconds(100)) async throws {
        let now = ContinuousClock.now
        if let at = map.withLock({ $0.refreshedAt }), at.duration(to: now) < minAge { return }
        guard refreshLock.withLock({ busy in defer { busy = true }; return !busy }) else {
            // Another task is refreshing: wait for it (bounded) rather than asking again.
            for _ in 0..<40 where refreshLock.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
            return
        }
        defer { refreshLock.withLock { $0 = false } }
        var candidates = map.withLock { $0.addresses }
        for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
        var failures = [String]()
        for address in candidates {
            do {
                let reply = try await pool(address).connection().send(RedisCommand("CLUSTER", ["SLOTS"]))
                let fresh = try Self.slotMap(reply, askedAt: address)
                map.withLock { $0 = fresh }
                return
            } catch {
                failures.append("\(address): \(error)")
            }
        }
        throw RedisClientError(.connectionFailed, message: "no cluster node gave its slot map: \(failures.joined(separator: "; "))")
    }

    private static func slotMap(_ reply: RESPValue, askedAt: String) throws -> SlotMap {
        guard let ranges = reply.array else { throw RedisClientError(.unexpectedReply, message: "CLUSTER SLOTS: \(reply)") }
        var fresh = SlotMap()
        fresh.refreshedAt = .now
        for range in ranges {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int, let master = parts[2].array,
                master.count >= 2, var host = master[0].string, let port = master[1].int, (0..<Int64(ClusterSlot.count)).contains(start), start <= end,
                end < ClusterSlot.count
            else { throw RedisClientError(.unexpectedReply, message: "CLUSTER SLOTS: \(range)") }
            if host.isEmpty || host == "?" { host = split(askedAt).host }  // "the node you asked"
            let address = Self.address(host, Int(port))
            let index: Int
            if let known = fresh.addresses.firstIndex(of: address) { index = known } else {
                index = fresh.addresses.count
                fresh.addresses.append(address)
            }
            for slot in Int(start)...Int(end) { fresh.owners[slot] = UInt16(index) }
        }
        guard !fresh.addresses.isEmpty else { throw RedisClientError(.unexpectedReply, message: "CLUSTER SLOTS: no slot is served") }
        return fresh
    }

    /// The master serving `slot`; any master for nil (keyless commands).
    private func address(forSlot slot: Int?) async throws -> String {
        for attempt in 0..<2 {
            let found = map.withLock { map -> String? in
                guard !map.addresses.isEmpty else { return nil }
                guard let slot else { return map.addresses[Int.random(in: 0..<map.addresses.count)] }
                let owner = map.owners[slot]
                return owner == .max ? nil : map.addresses[Int(owner)]
            }
            if let found { return found }
            if attempt == 0 { try await refresh(minAge: .zero) }
        }
        throw RedisClientError(.serverError, message: "CLUSTERDOWN no node serves slot \(slot.map(String.init) ?? "-")")
    }

    private func setOwner(_ slot: Int, _ address: String) {
        map.withLock { map in
            guard (0..<ClusterSlot.count).contains(slot) else { return }
            if let known = map.addresses.firstIndex(of: address) { map.owners[slot] = UInt16(known) } else {
                map.owners[slot] = UInt16(map.addresses.count)
                map.addresses.append(address)
            }
        }
    }

    /// Each master and a hash tag that lands on a slot it serves (keys `…{tag}…` live on that master).
    func masters() async throws -> [(address: String, tag: String)] {
        if map.withLock({ $0.addresses.isEmpty }) { try await refresh(minAge: .zero) }
        let firstSlots = map.withLock { map -> [(String, Int)] in
            var first = [Int: Int]()
            for slot in stride(from: ClusterSlot.count - 1, through: 0, by: -1) where map.owners[slot] != .max { first[Int(map.owners[slot])] = slot }
            return first.sorted { $0.key < $1.key }.map { (map.addresses[$0.key], $0.value) }
        }
        return firstSlots.map { address, slot in (address, Self.tag(for: slot)) }
    }

    private static func tag(for slot: Int) -> String {
        tags.withLock { tags in
            if let tag = tags[slot] { return tag }
            let tag = ClusterSlot.tag(for: slot)
            tags[slot] = tag
            return tag
        }
    }

    private static let tags = Mutex<[Int: String]>([:])

    // MARK: Routing

    /// A connection failed: the node may be down and its replica promoted, so learn the map again (in the background).
    private func nodeFailed() {
        Task { try? await self.refresh(minAge: .milliseconds(200)) }
    }

    /// Sends `commands`, each to the master of its key, and returns the replies in order (error replies included).
    /// With `fence`, every node reached must be a Redis process (`run_id`) in it, checked before anything is sent;
    /// else `serverChanged`.
    func pipeline(_ commands: [RedisCommand], fence: Set<String>?) async throws -> [RESPValue] {
        if commands.isEmpty { return [] }
        let slots = commands.map { $0.routingKey.map { ClusterSlot.of($0) } }
        var results = [RESPValue?](repeating: nil, count: commands.count)
        var todo: [(index: Int, ask: String?)] = commands.indices.map { ($0, nil) }
        let deadline = ContinuousClock.now + configuration.commandTimeout
        var round = 0
        while !todo.isEmpty {
            var groups = [String: [(index: Int, ask: String?)]]()
            for item in todo {
                let address: String
                if let ask = item.ask { address = ask } else { address = try await self.address(forSlot: slots[item.index]) }
                groups[address, default: []].append(item)
            }
            // Every connection first, so a fence stops the whole pipeline before any of it runs.
            var connections = [(RedisConnection, [(index: Int, ask: String?)])]()
            for (address, items) in groups {
                let connection: RedisConnection
                do { connection = try await pool(address).connection() } catch {
                    nodeFailed()
                    throw error
                }
                if let fence, !fence.contains(connection.runID ?? "") {
                    throw RedisClientError(.serverChanged, message: "cluster node \(address) is Redis process \(connection.runID ?? "?"), not a vouched one")
                }
                connections.append((connection, items))
            }
            let answered = try await withThrowingTaskGroup(of: ([(index: Int, ask: String?)], [RESPValue]).self) { group in
                for (connection, items) in connections {
                    group.addTask {
                        var batch = [RedisCommand]()
                        batch.reserveCapacity(items.count)
                        for item in items {
                            if item.ask != nil { batch.append(RedisCommand("ASKING")) }
                            batch.append(commands[item.index])
                        }
                        do {
                            let replies = try await connection.pipeline(batch)
                            guard items.contains(where: { $0.ask != nil }) else { return (items, replies) }
                            var kept = [RESPValue]()
                            var i = 0
                            for item in items {
                                if item.ask != nil { i += 1 }
                                kept.append(replies[i])
                                i += 1
                            }
                            return (items, kept)
                        } catch {
                            self.nodeFailed()
                            throw error
                        }
                    }
                }
                var all = [([(index: Int, ask: String?)], [RESPValue])]()
                for try await part in group { all.append(part) }
                return all
            }
            var next = [(index: Int, ask: String?)]()
            var moved = false, pause = false
            for (items, replies) in answered {
                for (item, reply) in zip(items, replies) {
                    if case .error(let message) = reply, let redirect = Redirect(message) {
                        switch redirect {
                        case .moved(let slot, let address):
                            redirects.withLock { $0.moved += 1 }
                            setOwner(slot, address)
                            moved = true
                            next.append((item.index, nil))
                        case .ask(let address):
                            redirects.withLock { $0.ask += 1 }
                            next.append((item.index, address))
                        case .tryAgain:
                            redirects.withLock { $0.tryAgain += 1 }
                            pause = true
                            next.append((item.index, nil))
                        }
                        results[item.index] = reply
                        continue
                    }
                    results[item.index] = reply
                }
            }
            round += 1
            if next.isEmpty || ContinuousClock.now >= deadline || round > 64 { break }
            if moved { try? await refresh() }
            if pause { try await Task.sleep(for: .milliseconds(min(5 * round, 100))) }
            todo = next
        }
        return results.map { $0 ?? .error("CLUSTERDOWN no reply") }
    }

    /// Sends `commands` (whose keys must share one node) and tells which Redis process answered.
    func pipelineReportingRunID(_ commands: [RedisCommand]) async throws -> (replies: [RESPValue], runID: String?) {
        let slot = commands.lazy.compactMap(\.routingKey).first.map { ClusterSlot.of($0) }
        for round in 0..<4 {
            let connection: RedisConnection
            do { connection = try await pool(try await address(forSlot: slot)).connection() } catch {
                nodeFailed()
                throw error
            }
            let replies = try await connection.pipeline(commands)
            let redirected = replies.contains { if case .error(let m) = $0 { Redirect(m) != nil } else { false } }
            if !redirected || round == 3 { return (replies, connection.runID) }
            try await refresh(minAge: .zero)
        }
        preconditionFailure("unreachable")
    }

    /// Runs `body` on a connection of its own to the master serving `key` (blocking commands).
    func withDedicatedConnection<T: Sendable>(key: RedisKey, _ body: (RedisConnection) async throws -> T) async throws -> T {
        let pool = pool(try await address(forSlot: ClusterSlot.of(Array(key.description.utf8))))
        do {
            return try await pool.withDedicatedConnection(body)
        } catch let error as RedisClientError where error.isClusterRedirect {
            try? await refresh()
            throw error
        }
    }

    private enum Redirect {
        case moved(slot: Int, address: String)
        case ask(address: String)
        case tryAgain

        init?(_ message: String) {
            if message.hasPrefix("TRYAGAIN") || message.hasPrefix("CLUSTERDOWN") {
                self = .tryAgain
                return
            }
            let parts = message.split(separator: " ")
            guard parts.count == 3, let slot = Int(parts[1]) else { return nil }
            switch parts[0] {
            case "MOVED": self = .moved(slot: slot, address: String(parts[2]))
            case "ASK": self = .ask(address: String(parts[2]))
            default: return nil
            }
        }
    }
}
