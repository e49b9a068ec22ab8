import PGEventsRedis
import Testing

@Suite("RedisError")
struct RedisErrorTests {
    @Test func descriptionShowsCodeCommandAndMessage() {
        let error = RedisError(
            code: .server, message: "WRONGTYPE Operation against a key holding the wrong kind of value", command: "LPUSH")
        #expect(error.description == "server (LPUSH): WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(RedisError(code: .invalidConfiguration, message: "missing host").description == "invalidConfiguration: missing host")
    }

    @Test func serverErrorPrefix() {
        #expect(RedisError(code: .server, message: "WRONGTYPE Operation against a key", command: "LPUSH").serverErrorPrefix == "WRONGTYPE")
        #expect(RedisError(code: .server, message: "NOAUTH Authentication required.").serverErrorPrefix == "NOAUTH")
        #expect(RedisError(code: .connectionLost, message: "WRONGTYPE").serverErrorPrefix == nil)
        #expect(RedisError(code: .server, message: "").serverErrorPrefix == nil)
    }

    @Test func connectionErrors() {
        #expect(RedisError(code: .connectionFailed, message: "").isConnectionError)
        #expect(RedisError(code: .connectionLost, message: "").isConnectionError)
        #expect(RedisError(code: .connectionClosed, message: "").isConnectionError)
        #expect(RedisError(code: .timeout, message: "").isConnectionError)
        #expect(!RedisError(code: .server, message: "").isConnectionError)
        #expect(!RedisError(code: .invalidArgument, message: "").isConnectionError)
        #expect(!RedisError(code: .invalidConfiguration, message: "").isConnectionError)
        #expect(!RedisError(code: .protocolViolation, message: "").isConnectionError)
    }

    @Test func codesAreDistinctAndNamed() {
        let codes: [RedisError.Code] = [
            .invalidConfiguration, .connectionFailed, .connectionLost, .connectionClosed,
            .server, .timeout, .protocolViolation, .invalidArgument,
        ]
        #expect(Set(codes).count == codes.count)
        #expect(
            codes.map(\.description) == [
                "invalidConfiguration", "connectionFailed", "connectionLost", "connectionClosed",
                "server", "timeout", "protocolViolation", "invalidArgument",
            ])
    }
}
