import Foundation
import PGEventsSystem
import Testing

/// The systemd unit in `deploy/`, as systemd itself reads it.
@Suite("deploy/: the systemd unit")
struct DeployTests {
    static let systemdAnalyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test(
        "systemd-analyze verify accepts deploy/pgevents-process.service without a warning, and it keeps its restart policy, environment file and hardening",
        .enabled(if: systemdAnalyze != nil, "systemd-analyze is not installed (Debian package systemd; ci/setup installs it)")
    )
    func unitVerifies() async throws {
        let analyze = try #require(Self.systemdAnalyze)
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let unit = try String(contentsOfFile: repositoryPath("deploy/pgevents-process.service"), encoding: .utf8)
        for line in [
            "ExecStart=/usr/local/bin/pgevents process", "EnvironmentFile=/etc/pgevents/process.env", "Restart=on-failure",
            "KillSignal=SIGTERM", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
            "CapabilityBoundingSet=", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service",
        ] {
            #expect(unit.split(separator: "\n").contains { $0 == line }, "\(line) is not in the unit")
        }
        // verify checks that ExecStart's program exists: the one just built stands in for /usr/local/bin/pgevents.
        let directory = try migrationDirectory([
            "pgevents-process.service": unit.replacingOccurrences(of: "/usr/local/bin/pgevents", with: executable)
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try await runChild(analyze, ["verify", directory + "/pgevents-process.service"])
        #expect(result.termination == .exited(0), "\(result.output)")
        // Unknown keys and bad values are only warnings (exit 0): none may concern this unit.
        let warnings = result.output.split(separator: "\n").filter { $0.contains("pgevents-process.service") }
        #expect(warnings.isEmpty, "\(warnings.joined(separator: "\n"))")
    }
}
