public import Foundation
import JWTKit

/// Checks tokens: the signature with the configured key (or the JWKS key the token's `kid` names), the header's
/// algorithm against the one configured (so an RS256 public key can never be used as an HS256 secret), then
/// expiry, not-before and the identity claims (`TokenIdentity.from`).
public final class TokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    private let auth: ServeConfiguration.Auth
    /// The `kid`s of the JWKS file's keys; nil without one. A token naming another kid is refused (JWTKit would
    /// verify it with its default key instead).
    private let jwksKids: Set<String>?

    private init(keys: JWTKeyCollection, auth: ServeConfiguration.Auth, jwksKids: Set<String>?) {
        self.keys = keys
        self.auth = auth
        self.jwksKids = jwksKids
    }

    /// Loads the key material `auth` names (from `environment` or files); throws a message naming what is missing
    /// or malformed.
    public static func make(_ auth: ServeConfiguration.Auth, environment: [String: String] = ProcessInfo.processInfo.environment)
        async throws(TokenError) -> TokenVerifier
    {
        let keys = JWTKeyCollection()
        if let source = auth.key {
            let material: String
            switch source {
            case .environment(let name):
                guard let value = environment[name], !value.isEmpty else {
                    throw TokenError("auth.key: the environment variable \(name) is not set or empty")
                }
                material = value
            case .file(let path):
                guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
                    throw TokenError("auth.key: cannot read \(path) (missing, unreadable or empty)")
                }
                material = String(decoding: data, as: UTF8.self)
            }
            do {
                switch auth.algorithm {
                case .hs256:
                    guard material.utf8.count >= 32 else {
                        throw TokenError("auth.key: an HS256 secret must be at least 32 bytes (it has \(material.utf8.count))")
                    }
                    await keys.add(hmac: HMACKey(from: material), digestAlgorithm: .sha256)
                case .rs256:
                    await keys.add(rsa: try Insecure.RSA.PublicKey(pem: material), digestAlgorithm: .sha256)
                case .es256:
                    await keys.add(ecdsa: try ES256PublicKey(pem: material))
                }
            } catch {
                if let tokenError = error as? TokenError { throw tokenError }
                throw TokenError(
                    "auth.key: not a \(auth.algorithm.rawValue) \(auth.algorithm == .hs256 ? "secret" : "public key in PEM") (\(error))")
            }
        }
        var jwksKids: Set<String>?
        if let path = auth.jwksFile {
            guard let data = FileManager.default.contents(atPath: path) else { throw TokenError("auth.jwks: cannot read \(path)") }
            let text = String(decoding: data, as: UTF8.self)
            do {
                try await keys.add(jwksJSON: text)
            } catch {
                throw TokenError("auth.jwks: \(path) is not a JWKS document (\(error))")
            }
            guard case .array(let jwks)? = JSONValue.parse(text)?["keys"] else {
                throw TokenError("auth.jwks: \(path) is not a JWKS document (no \"keys\" array)")
            }
            let kids = jwks.map { $0["kid"]?.string }
            guard !kids.isEmpty, kids.allSatisfy({ $0?.isEmpty == false }) else {
                throw TokenError("auth.jwks: every key of \(path) needs a \"kid\" (tokens choose their key by it)")
            }
            jwksKids = Set(kids.compactMap { $0 })
        }
        return TokenVerifier(keys: keys, auth: auth, jwksKids: jwksKids)
    }

    /// The identity of a valid token, or why it is not valid.
    public func verify(_ token: String, now: Date = Date()) async throws(TokenError) -> TokenIdentity {
        guard token.utf8.count <= 16_384 else { throw TokenError("the token is longer than 16384 bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw TokenError("the token is not a JWT (three base64url parts separated by dots)") }
        guard let headerData = Self.base64URLDecoded(parts[0]),
            case .object(let header)? = try? JSONDecoder().decode(JSONValue.self, from: headerData)
        else {
            throw TokenError("the token's header is not base64url-encoded JSON")
        }
        guard let algorithm = header["alg"]?.string else { throw TokenError("the token's header names no algorithm") }
        guard algorithm == auth.algorithm.rawValue else {
            throw TokenError("the token is signed with \(algorithm.prefix(20)); this server accepts \(auth.algorithm.rawValue) only")
        }
        if let jwksKids {
            // With a JWKS file the token's kid chooses the key: one the file does not hold is refused, and a token
            // without a kid is verified with `auth.key` only.
            if let kid = header["kid"] {
                guard let name = kid.string, jwksKids.contains(name) else {
                    throw TokenError("the token's kid names no key of auth.jwks")
                }
            } else if auth.key == nil {
                throw TokenError("the token names no kid; this server's keys (auth.jwks) are chosen by kid")
            }
        }
        let payload: ClaimsPayload
        do {
            payload = try await keys.verify(token, as: ClaimsPayload.self)
        } catch {
            if let jwtError = error as? JWTError, jwtError.errorType == .signatureVerificationFailed {
                throw TokenError("the token's signature does not verify")
            }
            throw TokenError("the token cannot be verified: \(error)")
        }
        return try TokenIdentity.from(claims: payload.claims, names: auth.claims, now: now, leeway: auth.leeway)
    }

    static func base64URLDecoded(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        return Data(base64Encoded: base64)
    }
}

/// Any claims, kept as JSON: which ones matter is configuration (`ServeConfiguration.Claims`).
struct ClaimsPayload: JWTPayload {
    var claims: [String: JSONValue]

    init(claims: [String: JSONValue]) { self.claims = claims }

    init(from decoder: any Decoder) throws {
        claims = try [String: JSONValue](from: decoder)
    }

    func encode(to encoder: any Encoder) throws {
        try claims.encode(to: encoder)
    }

    // Expiry and not-before are checked by TokenIdentity.from, with the configured names and leeway.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
