public import HTTPTypes

/// An error told to a client before its connection is closed, in GC2's shape:
/// `{"type":"error","error":"missing_token","message":"Missing token"}`.
public struct GatewayError: Error, Sendable, Equatable {
    /// The machine-readable code (`missing_token`, `invalid_token`, `missing_rel`, `not_allowed`, …).
    public var code: String
    /// What is wrong, for a person.
    public var message: String
    /// The HTTP status an SSE request is answered with.
    public var status: HTTPResponse.Status

    /// An error from its parts.
    public init(code: String, message: String, status: HTTPResponse.Status) {
        self.code = code
        self.message = message
        self.status = status
    }

    /// The JSON text sent to the client.
    public var json: String {
        JSONValue.object(["type": .string("error"), "error": .string(code), "message": .string(message)]).text
    }

    static let missingToken = GatewayError(code: "missing_token", message: "Missing token", status: .unauthorized)
    static func invalidToken(_ reason: String) -> GatewayError {
        GatewayError(code: "invalid_token", message: reason, status: .unauthorized)
    }
    static let missingRel = GatewayError(code: "missing_rel", message: "Sub-users must specify a rel parameter", status: .badRequest)
    static func notAllowed(_ relation: String) -> GatewayError {
        GatewayError(code: "not_allowed", message: "Not allowed to access this resource: \(relation)", status: .forbidden)
    }
    static func invalidParameter(_ message: String) -> GatewayError {
        GatewayError(code: "invalid_parameter", message: message, status: .badRequest)
    }
    static let unavailable = GatewayError(
        code: "unavailable", message: "The relations cannot be checked now (the database did not answer); try again",
        status: .serviceUnavailable)
    static let tooManyConnections = GatewayError(
        code: "too_many_connections", message: "The server has as many clients as it accepts; try again later", status: .serviceUnavailable)
    static func tokenExpired(_ identity: TokenIdentity) -> GatewayError {
        GatewayError(
            code: "token_expired", message: "The token expired at \(identity.expiresAt.formatted(.iso8601))", status: .unauthorized)
    }
    static let slowClient = GatewayError(
        code: "slow_client", message: "The client did not keep up with its messages and was disconnected; reconnect with since= to resume",
        status: .serviceUnavailable)
}
