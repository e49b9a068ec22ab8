import ArgumentParser
import Foundation
import PGEventsHarness

/// How the `pgevents` commands that judge something (`check`, `bench`) end, in one place. Exit status 0:
/// everything passed; 1: a check failed, a scenario lost or duplicated a job, or a result regressed; 2: the
/// input or the machine is wrong, with the reason on standard error as `pgevents <command>: <reason>`.
struct CommandExit {
    /// The command in messages: `check`, `bench`.
    let command: String

    /// Exit status 1 when `failed`: a check failed, a job was lost or duplicated, a result regressed.
    static func failed(if failed: Bool) throws {
        if failed { throw ExitCode(1) }
    }

    /// Writes `pgevents <command>: <reason>` on standard error; the error to throw is exit status 2.
    func badInput(_ reason: String) -> ExitCode {
        badInput(each: [reason])
    }

    /// Writes each reason on a line of its own, as `badInput(_:)` does; the error to throw is exit status 2.
    func badInput(each reasons: [String]) -> ExitCode {
        for reason in reasons { FileHandle.standardError.write(Data("pgevents \(command): \(reason)\n".utf8)) }
        return ExitCode(2)
    }

    /// Runs `body`; what the library throws when the input or the machine is wrong (`HarnessError`, a
    /// `MigrationError` such as an unterminated string or an undefined placeholder, a malformed
    /// `Placeholders.Problem`) becomes exit status 2 with its message, after `cleanup`.
    func mappingInputErrors<T>(cleanup: () -> Void = {}, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as HarnessError {
            cleanup()
            throw badInput("\(error)")
        } catch let error as MigrationError {
            cleanup()
            throw badInput("\(error)")
        } catch let problem as Placeholders.Problem {
            cleanup()
            throw badInput(problem.message)
        }
    }
}
