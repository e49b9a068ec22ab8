import Foundation
import JWTKit

/// Tokens the gateway accepts, signed here: for tools that speak to a gateway they configured themselves
/// (`pgevents bench fanout` signs its clients' token with the secret it gives its gateway).
public enum GatewayToken {
    /// An HS256 token with `claims` (GC2's names: `database`, `uid`, `superUser`), expiring in `lifetime` seconds.
    public static func hs256(secret: String, claims: [String: JSONValue], lifetime: Double = 86_400) async throws -> String {
        var claims = claims
        claims["exp"] = .number((Date().timeIntervalSince1970 + lifetime).rounded())
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(ClaimsPayload(claims: claims))
    }
}
