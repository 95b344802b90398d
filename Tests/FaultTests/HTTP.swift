import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP exchange as the fault tests see it: a status (0 when nothing came back: refused, reset or
/// past the deadline), the body, and how long it took.
struct HTTPAnswer: Sendable {
    var status: Int
    var body: String
    /// Header names lowercased.
    var headers: [String: String]
    /// Why nothing came back (status 0).
    var failure: String?
    var timedOut: Bool
    var elapsed: Duration

    /// The body's top-level JSON object, if it is one.
    var object: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    var jobID: String? { object?["id"] as? String }
    var spooled: Bool { object?["spooled"] as? Bool == true }
    var summary: String { status == 0 ? "no answer (\(failure ?? "?")) after \(elapsed)" : "\(status) \(body.prefix(300))" }
}

/// A minimal HTTP/1.1 client over a loopback TCP socket with a hard deadline per request (no URLSession:
/// the tests must see a hung server as a timeout, never hang themselves). Each request blocks a GCD
/// thread, not the cooperative pool.
enum HTTP {
    static func request(
        _ method: String, _ base: String, _ path: String, body: String? = nil, timeout: Duration = .seconds(8)
    ) async -> HTTPAnswer {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: blocking(method, base, path, body: body, timeout: timeout))
            }
        }
    }

    static func post(_ base: String, _ path: String, _ body: String, timeout: Duration = .seconds(8)) async -> HTTPAnswer {
        await request("POST", base, path, body: body, timeout: timeout)
    }

    static func get(_ base: String, _ path: String, timeout: Duration = .seconds(8)) async -> HTTPAnswer {
        await request("GET", base, path, timeout: timeout)
    }

    /// `http://127.0.0.1:PORT` → port.
    static func port(of base: String) -> UInt16? {
        guard let colon = base.lastIndex(of: ":") else { return nil }
        return UInt16(base[base.index(after: colon)...].prefix { $0.isNumber })
    }

    static func blocking(_ method: String, _ base: String, _ path: String, body: String?, timeout: Duration) -> HTTPAnswer {
        let start = ContinuousClock.now
        let deadline = start + timeout
        func fail(_ why: String, timedOut: Bool = false) -> HTTPAnswer {
            HTTPAnswer(status: 0, body: "", headers: [:], failure: why, timedOut: timedOut, elapsed: ContinuousClock.now - start)
        }
        guard let port = port(of: base) else { return fail("bad base URL \(base)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return fail("socket: errno \(errno)") }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)

        /// Waits for `events` on the socket until the deadline; false on timeout.
        func ready(_ events: Int16) -> Bool {
            while true {
                let left = deadline - ContinuousClock.now
                if left <= .zero { return false }
                var pfd = pollfd(fd: fd, events: events, revents: 0)
                let ms = Int32(max(1, min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000, 60_000)))
                let n = poll(&pfd, 1, ms)
                if n > 0 { return true }
                if n < 0 && errno != EINTR { return true }  // let the following call report the error
            }
        }

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 {
            guard errno == EINPROGRESS else { return fail("connect: errno \(errno)") }
            guard ready(Int16(POLLOUT)) else { return fail("connect timed out", timedOut: true) }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 { return fail("connect: errno \(error)") }
        }

        let payload = Array((body ?? "").utf8)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nAccept: application/json\r\n"
        if body != nil { head += "Content-Type: application/json\r\n" }
        head += "Content-Length: \(payload.count)\r\n\r\n"
        let request = Array(head.utf8) + payload
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                guard ready(Int16(POLLOUT)) else { return fail("send timed out", timedOut: true) }
                continue
            }
            return fail("send: errno \(errno)")
        }

        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let complete = parse(received) { return complete.with(elapsed: ContinuousClock.now - start) }
            guard ready(Int16(POLLIN)) else { return fail("no answer within \(timeout)", timedOut: true) }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 { received += buffer[0..<n]; continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            if n == 0, let complete = parse(received, atEOF: true) { return complete.with(elapsed: ContinuousClock.now - start) }
            return fail(n == 0 ? "connection closed after \(received.count) bytes" : "recv: errno \(errno)")
        }
    }

    /// A complete response in `bytes`, or nil while more is needed.
    static func parse(_ bytes: [UInt8], atEOF: Bool = false) -> HTTPAnswer? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let headEnd = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
        let head = String(decoding: bytes[0..<headEnd], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var headers = [String: String]()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let rest = Array(bytes[(headEnd + 4)...])
        var body: [UInt8]
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            guard let decoded = dechunk(rest) else { return nil }
            body = decoded
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            guard rest.count >= length else { return nil }
            body = Array(rest[0..<length])
        } else {
            guard atEOF else { return nil }
            body = rest
        }
        return HTTPAnswer(status: status, body: String(decoding: body, as: UTF8.self), headers: headers, failure: nil, timedOut: false, elapsed: .zero)
    }

    /// The body of a complete chunked encoding, nil while incomplete.
    static func dechunk(_ bytes: [UInt8]) -> [UInt8]? {
        var out = [UInt8]()
        var i = 0
        while true {
            guard let lineEnd = (i..<max(i, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else { return nil }
            let sizeText = String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
            i = lineEnd + 2
            if size == 0 { return out }
            guard bytes.count >= i + size + 2 else { return nil }
            out += bytes[i..<i + size]
            i += size + 2
        }
    }
}

extension HTTPAnswer {
    func with(elapsed: Duration) -> HTTPAnswer {
        var copy = self
        copy.elapsed = elapsed
        return copy
    }
}
