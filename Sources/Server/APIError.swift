import Hummingbird

/// The API's one error type. Renders `{"error": {"code", "message", "field"}}`.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let field: String?
    public var headers: HTTPFields = [:]
    /// The job a `unique_conflict` names (its holder), rendered as `jobId` in the error object.
    public var jobID: String?

    public init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    public static func invalid(_ field: String, _ message: String) -> Self {
        Self(.badRequest, code: "invalid_request", message: "\(field): \(message)", field: field)
    }
    public static func notFound(_ what: String) -> Self { Self(.notFound, code: "not_found", message: "\(what) not found") }
    public static func conflict(_ message: String) -> Self { Self(.conflict, code: "conflict", message: message) }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body = JSONObject()
        body.add("code", code)
        body.add("message", message)
        body.add("field", field)
        if let jobID { body.add("jobId", jobID) }
        var outer = JSONObject()
        outer.add("error", raw: body.text)
        var response = Response.json(outer.text, status: status)
        response.headers.append(contentsOf: headers)
        return response
    }
}

extension Response {
    /// A JSON response from already-encoded text.
    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
