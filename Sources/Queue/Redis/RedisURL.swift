/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`, `unix:///path/to/redis.sock[?db=N]`, or
/// `redis+sentinel://[[user]:password@]host:port[,host:port...]/master[/db]` (the master Sentinel names; the
/// credentials are the master's).
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
        /// Ask these Sentinels which server is master `master` on every (re)connect.
        case sentinel(nodes: [SentinelNode], master: String)
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
            RedisClientError(.invalidURL, message: "\(why) in \"\(string)\" (expected redis://[:password@]host:port/db or unix:///path)")
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
        let sentinel = string.hasPrefix("redis+sentinel://")
        guard string.hasPrefix("redis://") || sentinel else { throw invalid("unknown scheme") }
        var rest = Substring(string.dropFirst(sentinel ? "redis+sentinel://".count : "redis://".count))
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
            var nodes = [SentinelNode]()
            for part in rest[..<slash].split(separator: ",") {
                guard let colon = part.lastIndex(of: ":"), let port = Int(part[part.index(after: colon)...]), (1...65535).contains(port),
                    colon > part.startIndex
                else { throw invalid("a Sentinel needs host:port") }
                var host = part[..<colon]
                if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }  // [::1]:26379
                nodes.append(SentinelNode(host: String(host), port: port))
            }
            guard !nodes.isEmpty else { throw invalid("no Sentinel given") }
            self.init(endpoint: .sentinel(nodes: nodes, master: String(master)), username: username, password: password, database: database)
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
            let list = nodes.map { $0.host.contains(":") ? "[\($0.host)]:\($0.port)" : "\($0.host):\($0.port)" }.joined(separator: ",")
            return "redis+sentinel://\(auth)\(list)/\(master)/\(database)"
        }
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
