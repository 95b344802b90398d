/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`, `unix:///path/to/redis.sock[?db=N]`,
/// `redis+sentinel://[[user]:password@]host:port[,host:port...]/master[/db]` (the master Sentinel names; the
/// credentials are the master's), or `redis+cluster://[[user]:password@]host:port[,host:port...]` (seed nodes of a
/// Redis Cluster; the client learns the rest from them).
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
        /// Ask these Sentinels which server is master `master` on every (re)connect.
        case sentinel(nodes: [SentinelNode], master: String)
        /// A Redis Cluster reached through any of these seed nodes.
        case cluster(nodes: [SentinelNode])
    }

    /// True for `redis+cluster://` (commands are routed by key slot).
    public var isCluster: Bool { if case .cluster = endpoint { true } else { false } }

    /// The same credentials at another address (a cluster node, the master Sentinel names).
    public func at(host: String, port: Int) -> RedisURL {
        RedisURL(endpoint: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    /// `redis://host:port` as a cluster seed (`DOCKET_REDIS_CLUSTER=true`); other URLs are returned as they are.
    public var asCluster: RedisURL {
        guard case .tcp(let host, let port) = endpoint else { return self }
        return RedisURL(endpoint: .cluster(nodes: [SentinelNode(host: host, port: port)]), username: username, password: password)
    }

    public struct SentinelNode: Sendable, Hashable {
        public let host: String
        public let port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public var endpoint: Endpoint
    public var username: String?
    public var password: String?
    public var database: Int

    public init(endpoint: Endpoint, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    public init(_ string: String) throws {
        func invalid(_ why: String) -> RedisClientError {
            RedisClientError(.invalidURL, message: "\(why) in \"\(string)\" (expected redis://[:password@]host:port/db, unix:///path, redis+sentinel://host:port,.../master or redis+cluster://host:port,...)")
        }
        if string.hasPrefix("unix://") {
            var rest = String(string.dropFirst("unix://".count))
            var database = 0
            if let q = rest.firstIndex(of: "?") {
                let query = rest[rest.index(after: q)...]
                rest = String(rest[..<q])
                for pair in query.split(separator: "&") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard kv.count == 2, kv[0] == "db", let db = Int(kv[1]), db >= 0 else { throw invalid("bad query") }
                    database = db
                }
            }
            guard rest.hasPrefix("/") else { throw invalid("the socket path must be absolute") }
            self.init(endpoint: .unix(path: rest), database: database)
            return
        }
        let sentinel = string.hasPrefix("redis+sentinel://"), cluster = string.hasPrefix("redis+cluster://")
        guard string.hasPrefix("redis://") || sentinel || cluster else { throw invalid("unknown scheme") }
        var rest = Substring(string.drop { $0 != ":" }.dropFirst(3))
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = String(userinfo[..<colon])
                username = user.isEmpty ? nil : user.removingPercentEncodingLite
                password = String(userinfo[userinfo.index(after: colon)...]).removingPercentEncodingLite
            } else {
                password = String(userinfo).removingPercentEncodingLite
            }
        }
        if sentinel {
            // host:port,host:port/master[/db]
            guard let slash = rest.firstIndex(of: "/") else { throw invalid("missing the master's name") }
            let path = rest[rest.index(after: slash)...].split(separator: "/", omittingEmptySubsequences: false)
            guard let master = path.first, !master.isEmpty, path.count <= 2 else { throw invalid("missing the master's name") }
            var database = 0
            if path.count == 2, !path[1].isEmpty {
                guard let n = Int(path[1]), n >= 0 else { throw invalid("bad database number") }
                database = n
            }
            let nodes = try Self.nodes(rest[..<slash], what: "a Sentinel", invalid)
            self.init(endpoint: .sentinel(nodes: nodes, master: String(master)), username: username, password: password, database: database)
            return
        }
        if cluster {
            // host:port,host:port[/] (a cluster has only database 0)
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            guard !rest.contains("/") else { throw invalid("a cluster has no database or path") }
            self.init(endpoint: .cluster(nodes: try Self.nodes(rest, what: "a cluster node", invalid)), username: username, password: password)
            return
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { throw invalid("bad database number") }
                database = n
            }
        }
        var host = String(rest)
        var port = 6379
        if host.hasPrefix("[") {  // [::1]:6379
            guard let close = host.firstIndex(of: "]") else { throw invalid("bad IPv6 host") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw invalid("bad port") }
                port = p
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else { throw invalid("bad port") }
            port = p
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        self.init(endpoint: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    /// The URL without its password, for logs.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        switch endpoint {
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            return "redis://\(auth)\(h):\(port)/\(database)"
        case .unix(let path):
            return "unix://\(path)" + (database == 0 ? "" : "?db=\(database)")
        case .sentinel(let nodes, let master):
            return "redis+sentinel://\(auth)\(Self.list(nodes))/\(master)/\(database)"
        case .cluster(let nodes):
            return "redis+cluster://\(auth)\(Self.list(nodes))"
        }
    }

    private static func list(_ nodes: [SentinelNode]) -> String {
        nodes.map { $0.host.contains(":") ? "[\($0.host)]:\($0.port)" : "\($0.host):\($0.port)" }.joined(separator: ",")
    }

    /// `host:port,host:port` (IPv6 hosts in brackets).
    private static func nodes(_ text: Substring, what: String, _ invalid: (String) -> RedisClientError) throws -> [SentinelNode] {
        var nodes = [SentinelNode]()
        for part in text.split(separator: ",") {
            guard let colon = part.lastIndex(of: ":"), let port = Int(part[part.index(after: colon)...]), (1...65535).contains(port),
                colon > part.startIndex
            else { throw invalid("\(what) needs host:port") }
            var host = part[..<colon]
            if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }  // [::1]:26379
            nodes.append(SentinelNode(host: String(host), port: port))
        }
        guard !nodes.isEmpty else { throw invalid("no \(what) given") }
        return nodes
    }
}

extension String {
    /// Decodes `%XX` escapes (userinfo of a URL); leaves anything malformed as it is.
    fileprivate var removingPercentEncodingLite: String {
        guard contains("%") else { return self }
        var out = [UInt8]()
        var bytes = Array(utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2,
                let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
            {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
