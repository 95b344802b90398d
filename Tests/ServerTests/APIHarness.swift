import DocketJournal
import DocketQueue
import DocketServer
import DocketTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// A live API over a real Redis (unique prefix) and a real journal file, through Hummingbird's router tester.
struct API {
    let client: any TestClientProtocol
    let t: TestQueue
    let journal: Journal

    struct Reply {
        let status: Int
        let headers: HTTPFields
        let text: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
        var error: (code: String, field: String?) {
            let e = json["error"] as? [String: Any] ?? [:]
            return (e["code"] as? String ?? "", e["field"] as? String)
        }
    }

    @discardableResult
    func call(_ method: HTTPRequest.Method, _ uri: String, json body: String? = nil, headers: HTTPFields = [:], raw: [UInt8]? = nil) async throws -> Reply {
        var headers = headers
        if (body != nil || raw != nil) && headers[.contentType] == nil { headers[.contentType] = "application/json" }
        let buffer = raw.map { ByteBuffer(bytes: $0) } ?? body.map { ByteBuffer(string: $0) }
        return try await client.execute(uri: uri, method: method, headers: headers, body: buffer) { response in
            Reply(status: Int(response.status.code), headers: response.headers, text: String(buffer: response.body))
        }
    }
}

func withAPI(
    server: RedisServer = .shared, mode: TestingSetup = .router, configure: (inout DocketAPI.Configuration) -> Void = { _ in },
    _ body: @Sendable (API) async throws -> Void
) async throws {
    var configuration = DocketAPI.Configuration()
    configure(&configuration)
    let config = configuration
    try await withTestQueue(server: server) { t in
        try await withTemporaryJournal { journal in
            let queue = JournaledQueue(journal: journal, driver: t.driver, logger: TestQueue.logger)
            try await t.vouch()
            let ingestor = JournalIngestor(journal: journal, driver: t.driver, logger: TestQueue.logger)
            let api = DocketAPI(queue: queue, ingestor: ingestor, configuration: config)
            let app = Application(router: api.router(), logger: TestQueue.logger)
            try await withRunningServices([ingestor]) {
                try await app.test(mode) { client in
                    try await body(API(client: client, t: t, journal: journal))
                }
            }
        }
    }
}

/// Headers from plain names (HTTPTypes' name type is not re-exported by Hummingbird).
func hdr(_ pairs: [String: String]) -> HTTPFields {
    var fields = HTTPFields()
    for (name, value) in pairs { fields[.init(name)!] = value }
    return fields
}

extension HTTPFields {
    subscript(named name: String) -> String? { self[.init(name)!] }
}
