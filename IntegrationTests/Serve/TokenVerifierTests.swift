import Foundation
import JWTKit
import Testing

@testable import PGEventsServe

/// Tokens signed with RS256 and ES256 keys (public keys read from PEM files), and the algorithm confusion a
/// verifier must refuse. No server: these live here for JWTKit, which signs the tokens.
@Suite("pgevents serve: RS256 and ES256 tokens")
struct TokenVerifierTests {
    let claims: [String: JSONValue] = ["database": .string("d"), "uid": .string("u"), "exp": .number(Date().timeIntervalSince1970 + 600)]

    func writeTemporary(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pgevents-key-\(UUID().uuidString).pem").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("ES256: a token signed by the key verifies; one signed by another key, or HS256 with the public key as secret, does not")
    func es256() async throws {
        let key = ES256PrivateKey()
        let path = try writeTemporary(key.publicKey.pemRepresentation)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let verifier = try await TokenVerifier.make(.init(algorithm: .es256, key: .file(path)))
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key)
        let token = try await signer.sign(ClaimsPayload(claims: claims))
        #expect(try await verifier.verify(token).user == "u")

        let other = JWTKeyCollection()
        await other.add(ecdsa: ES256PrivateKey())
        await #expect(throws: TokenError.self) { try await verifier.verify(try await other.sign(ClaimsPayload(claims: claims))) }

        let confused = JWTKeyCollection()
        await confused.add(hmac: HMACKey(from: key.publicKey.pemRepresentation), digestAlgorithm: .sha256)
        do {
            _ = try await verifier.verify(try await confused.sign(ClaimsPayload(claims: claims)))
            Issue.record("an HS256 token accepted by an ES256 verifier")
        } catch {
            #expect("\(error)".contains("accepts ES256 only"))
        }
    }

    @Test("RS256: a token signed by the key verifies; a missing key file is a clear error")
    func rs256() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["genrsa", "2048"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let privatePEM = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let key = try Insecure.RSA.PrivateKey(pem: privatePEM)
        let path = try writeTemporary(key.publicKey.pemRepresentation)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let verifier = try await TokenVerifier.make(.init(algorithm: .rs256, key: .file(path)))
        let signer = JWTKeyCollection()
        await signer.add(rsa: key, digestAlgorithm: .sha256)
        #expect(try await verifier.verify(try await signer.sign(ClaimsPayload(claims: claims))).database == "d")
        do {
            _ = try await TokenVerifier.make(.init(algorithm: .rs256, key: .file("/nonexistent/key.pem")))
            Issue.record("a missing key file accepted")
        } catch {
            #expect("\(error)".contains("cannot read /nonexistent/key.pem"))
        }
        do {
            _ = try await TokenVerifier.make(.init(algorithm: .hs256, key: .environment("X")), environment: ["X": "short"])
            Issue.record("a short HS256 secret accepted")
        } catch {
            #expect("\(error)".contains("at least 32 bytes"))
        }
    }
}

@Suite("pgevents serve: keys from a JWKS file")
struct JWKSTests {
    let claims: [String: JSONValue] = ["database": .string("d"), "uid": .string("u"), "exp": .number(Date().timeIntervalSince1970 + 600)]

    func jwk(_ key: ES256PrivateKey, kid: String) throws -> String {
        let parameters = try #require(key.publicKey.parameters)
        return #"{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(parameters.x)","y":"\#(parameters.y)"}"#
    }

    @Test(
        "ES256 keys from a JWKS file, chosen by the token's kid: each key's tokens verify; a kid the file does not hold, no kid, or another key under a known kid, do not; a file that is not JWKS is a clear error"
    )
    func keysByKid() async throws {
        let first = ES256PrivateKey()
        let second = ES256PrivateKey()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pgevents-jwks-\(UUID().uuidString).json").path
        try #"{"keys":[\#(try jwk(first, kid: "first")),\#(try jwk(second, kid: "second"))]}"#.write(
            toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let verifier = try await TokenVerifier.make(.init(algorithm: .es256, jwksFile: path))

        func token(_ key: ES256PrivateKey, kid: String) async throws -> String {
            let signer = JWTKeyCollection()
            await signer.add(ecdsa: key, kid: JWKIdentifier(string: kid))
            return try await signer.sign(ClaimsPayload(claims: claims), kid: JWKIdentifier(string: kid))
        }
        #expect(try await verifier.verify(try await token(first, kid: "first")).user == "u")
        #expect(try await verifier.verify(try await token(second, kid: "second")).database == "d")
        await #expect(throws: TokenError.self) { try await verifier.verify(try await token(first, kid: "third")) }
        await #expect(throws: TokenError.self) { try await verifier.verify(try await token(ES256PrivateKey(), kid: "first")) }
        await #expect(throws: TokenError.self) { try await verifier.verify(try await token(second, kid: "first")) }
        let noKid = JWTKeyCollection()
        await noKid.add(ecdsa: first)
        await #expect(throws: TokenError.self) { try await verifier.verify(try await noKid.sign(ClaimsPayload(claims: claims))) }

        let notJWKS = path + ".txt"
        try "not a key set".write(toFile: notJWKS, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: notJWKS) }
        do {
            _ = try await TokenVerifier.make(.init(algorithm: .es256, jwksFile: notJWKS))
            Issue.record("a file that is not JWKS accepted")
        } catch {
            #expect("\(error)".contains("is not a JWKS document"))
        }
        do {
            _ = try await TokenVerifier.make(.init(algorithm: .es256, jwksFile: "/nonexistent/jwks.json"))
            Issue.record("a missing JWKS file accepted")
        } catch {
            #expect("\(error)".contains("cannot read /nonexistent/jwks.json"))
        }
    }
}
