import Foundation
import PGEventsHarness
import PGEventsPostgres
import PGEventsSystem
import Testing

@testable import PGEventsHarness
@testable import PGEventsServe

@Suite("pgevents serve --process: the gateway and the processor in one process")
struct ServeCommandTests {
    @Test(
        "the executable with --process runs the gc2-csv example's processor beside the gateway: rows inserted reach a WebSocket client; SIGTERM stops both, exit 0"
    )
    func gatewayWithProcessor() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let (database, _) = try await exampleSetup("gc2-csv")
        try await PostgresConnection.withConnection(database.configuration) { db in
            try await db.execute(
                "DROP ROLE IF EXISTS cli_viewer; CREATE ROLE cli_viewer NOLOGIN; GRANT SELECT ON public.parcels TO cli_viewer")
        }
        let port = try freeLoopbackPort()
        let directory = try migrationDirectory([
            "serve.yml": try String(contentsOfFile: repositoryPath("sql/examples/gc2-csv/serve.yml"), encoding: .utf8)
                .replacingOccurrences(of: "port: 8088", with: "port: \(port)")
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await withTemporaryRedis { redis in
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = database.url
            environment["REDIS_URL"] = redis.url
            environment["PGEVENTS_JWT_SECRET"] = testSecret
            let output = directory + "/out.txt"
            let child = try ChildProcess.spawn(
                executable,
                [
                    "serve", "--config", directory + "/serve.yml", "--process", repositoryPath("sql/examples/gc2-csv/processor.yml"),
                    "--log-level", "warning",
                ], outputPath: output, environment: environment)
            var stopped = false
            defer {
                if !stopped {
                    child.kill(SIGKILL)
                    _ = child.wait()
                }
            }
            @Sendable func log() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
            @Sendable func metric(_ name: String) async -> Int? {
                guard let response = try? await RawEventStream.get(port: port, pathAndQuery: "/metrics") else { return nil }
                return response.body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ")[1]) }
            }
            try await withTimeout(30) {
                while await metric("pgevents_serve_connections") == nil {
                    if let ended = child.poll() { throw RawWebSocket.Failure(description: "pgevents serve exited (\(ended)): \(log())") }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            let token = try await makeToken(["database": .string(database.name), "uid": .string("cli_viewer"), "superUser": .bool(false)])
            let path = "/broadcast?token=\(token)&rel=public.parcels"
            async let received = RawWebSocket.run(port: port, pathAndQuery: path) { socket in
                try socket.transcript { $0.compactMap(JSONValue.parse).flatMap(GC2ExampleServeTests.rows).count >= 2 }
            }
            try await withTimeout(30) {
                while await metric("pgevents_serve_connections") != 1 { try await Task.sleep(for: .milliseconds(20)) }
            }
            try await PostgresConnection.withConnection(database.configuration) { db in
                try await db.execute("INSERT INTO parcels (parcel_no, owner_name) VALUES ('P-cli-1', 'Bo'), ('P-cli-2', 'Cy')")
            }
            let rows = try await received.json.flatMap(GC2ExampleServeTests.rows)
            #expect(rows.compactMap { $0["parcel_no"]?.string } == ["P-cli-1", "P-cli-2"], "\(log())")

            child.kill(SIGTERM)
            let termination = try await withTimeout(30) {
                while true {
                    if let ended = child.poll() { return ended }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            stopped = true
            #expect(termination == .exited(0), "\(log())")
        }
    }
}
