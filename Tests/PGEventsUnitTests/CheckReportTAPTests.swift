import PGEventsCheck
import PGEventsHarness
import Testing

@Suite("Check report as TAP")
struct CheckReportTAPTests {
    @Test("TAP 13: a plan, ok / not ok per check, SKIP, warnings as diagnostics, a YAML block under each failure")
    func tap() {
        var report = CheckReport(
            source: "db", postgresVersions: ["15.18"],
            results: [
                CheckResult(group: "migrations", name: "2 migration file(s) apply", status: .passed, message: "a, b"),
                CheckResult(
                    group: "public.jobs", name: "two rows notify twice on jobs", status: .warning, message: "collapsed\nto one", payload: ""
                ),
                CheckResult(group: "public.jobs", name: "channel # known", status: .skipped, message: "computed"),
                CheckResult(
                    group: "public.jobs", name: "DELETE payload", status: .failed, message: "it is \"empty\"", payload: "", fix: "use OLD"),
            ])
        report.layout = "goose"
        #expect(
            report.tap().split(separator: "\n", omittingEmptySubsequences: false).map(String.init) == [
                "TAP version 13",
                "1..4",
                "ok 1 - migrations: 2 migration file(s) apply",
                "ok 2 - public.jobs: two rows notify twice on jobs",
                #"# warning: collapsed\nto one"#,
                ##"ok 3 - public.jobs: channel \# known # SKIP computed"##,
                "not ok 4 - public.jobs: DELETE payload",
                "  ---",
                #"  message: "it is \"empty\"""#,
                #"  payload: "(empty)""#,
                #"  fix: "use OLD""#,
                "  ...",
                "# 1 passed, 1 failed, 1 skipped, 1 warnings; layout goose",
            ])
    }
}
