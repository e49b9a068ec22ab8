public import Foundation

/// Who a verified token says the client is: its database, its user and role, and whether it may read every
/// relation without naming any.
public struct TokenIdentity: Sendable, Equatable {
    /// The database the client reads (the token's database claim).
    public var database: String
    /// The user, for logs.
    public var user: String
    /// The PostgreSQL role whose privileges decide what the client may read.
    public var role: String
    /// True: the client may read every relation of its database (GC2's superUser).
    public var superuser: Bool
    /// When the token expires; the connection is closed then.
    public var expiresAt: Date

    /// An identity from its parts.
    public init(database: String, user: String, role: String, superuser: Bool, expiresAt: Date) {
        self.database = database
        self.user = user
        self.role = role
        self.superuser = superuser
        self.expiresAt = expiresAt
    }

    /// Reads an identity from verified claims with the configured claim names, checking `exp` and `nbf` against
    /// `now` (with `leeway` seconds of clock skew). Pure, so every rule has a unit test.
    public static func from(
        claims: [String: JSONValue], names: ServeConfiguration.Claims, now: Date, leeway: Double = 0
    ) throws(TokenError) -> TokenIdentity {
        guard let exp = claims["exp"] else { throw TokenError("the token has no exp claim (tokens without an expiry are refused)") }
        guard case .number(let expSeconds) = exp, expSeconds.isFinite else { throw TokenError("the exp claim is not a number") }
        let expiresAt = Date(timeIntervalSince1970: expSeconds)
        if now.timeIntervalSince(expiresAt) >= leeway { throw TokenError("the token expired at \(Self.format(expiresAt))") }
        if let nbf = claims["nbf"] {
            guard case .number(let nbfSeconds) = nbf, nbfSeconds.isFinite else { throw TokenError("the nbf claim is not a number") }
            let notBefore = Date(timeIntervalSince1970: nbfSeconds)
            if notBefore.timeIntervalSince(now) > leeway { throw TokenError("the token is not valid before \(Self.format(notBefore))") }
        }
        let database = try text(claims, names.database, what: "database")
        let user = try text(claims, names.user, what: "user")
        let role = names.role == names.user ? user : try text(claims, names.role, what: "role")
        let superuser: Bool
        switch claims[names.superuser] {
        case nil, .null?: superuser = false
        case .bool(let value)?: superuser = value
        case .string(let value)? where value == "true" || value == "false": superuser = value == "true"
        case .number(let value)? where value == 0 || value == 1: superuser = value == 1
        default: throw TokenError("the \(names.superuser) claim is not true or false")
        }
        return TokenIdentity(database: database, user: user, role: role, superuser: superuser, expiresAt: expiresAt)
    }

    private static func text(_ claims: [String: JSONValue], _ name: String, what: String) throws(TokenError) -> String {
        guard let value = claims[name] else { throw TokenError("the token has no \(name) claim (the \(what))") }
        guard let text = value.scalarText, !text.isEmpty, !text.contains("\0") else {
            throw TokenError("the \(name) claim (the \(what)) is not a non-empty string")
        }
        return text
    }

    private static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

/// Why a token was refused; the message is sent to the client as the `invalid_token` error's message.
public struct TokenError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong with the token (never its contents or the key).
    public var message: String

    init(_ message: String) { self.message = message }

    public var description: String { message }
}
