import CHiredis
import NIOCore

/// Encodes commands with hiredis' `redisFormatCommandArgv`. All hiredis C lives in this file.
enum RESPEncoder {
    /// Appends the RESP encoding of `command` to `buffer`.
    static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) {
        let args = command.arguments
        var lengths = args.map { $0.bytes.count }
        // Copy the arguments into one contiguous C buffer; hiredis reads pointer + length pairs.
        var storage = [UInt8]()
        storage.reserveCapacity(lengths.reduce(0, +) + 1)
        for arg in args { storage.append(contentsOf: arg.bytes) }
        storage.append(0)
        storage.withUnsafeBufferPointer { raw in
            let base = UnsafeRawPointer(raw.baseAddress!).assumingMemoryBound(to: CChar.self)
            var pointers = [UnsafePointer<CChar>?]()
            pointers.reserveCapacity(args.count)
            var offset = 0
            for length in lengths {
                pointers.append(base + offset)
                offset += length
            }
            var target: UnsafeMutablePointer<CChar>?
            let written = pointers.withUnsafeMutableBufferPointer { argv in
                redisFormatCommandArgv(&target, Int32(args.count), argv.baseAddress, &lengths)
            }
            precondition(written >= 0 && target != nil, "redisFormatCommandArgv failed (out of memory)")
            buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(written)))
            redisFreeCommand(target)
        }
    }
}

/// Parses replies with a hiredis `redisReader`. The reader never leaves its channel's event loop.
final class RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        guard let reader = redisReaderCreate() else { preconditionFailure("redisReaderCreate failed (out of memory)") }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if buffer.readableBytes > 0 {
            let status = buffer.withUnsafeReadableBytes { bytes in
                redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
            }
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            guard status == REDIS_OK else { throw protocolError() }
        }
        // Emit every complete reply the reader now holds.
        while let value = try nextReply() {
            context.fireChannelRead(wrapInboundOut(value))
        }
        return .needMoreData
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// The next complete reply, or nil when more bytes are needed.
    func nextReply() throws -> RESPValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw protocolError() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Feeds raw bytes (used by the codec tests to split replies arbitrarily).
    func feed(_ bytes: [UInt8]) throws {
        let status = bytes.withUnsafeBufferPointer { buf in
            redisReaderFeed(reader, UnsafeRawPointer(buf.baseAddress)?.assumingMemoryBound(to: CChar.self), buf.count)
        }
        guard status == REDIS_OK else { throw protocolError() }
    }

    private func protocolError() -> RedisClientError {
        let message = withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisClientError(.protocolError, message: message)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulkString(Array(UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(r.integer)
        case REDIS_REPLY_ARRAY:
            var values = [RESPValue]()
            values.reserveCapacity(r.elements)
            for i in 0..<r.elements { values.append(convert(r.element[i]!)) }
            return .array(values)
        default:
            return .null
        }
    }
}
