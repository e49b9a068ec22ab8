// libFuzzer target for text payloads: PayloadJudge.problems(in:for:) on a text channel (size, forbidden words), and excerpts.
// What is checked: FuzzTarget.check (Tests/PGEventsFuzzOracles). Built and run by ci/fuzz.
import CLibFuzzer
import PGEventsFuzzOracles

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.text.fuzz(data, size)
}

pgevents_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv, fuzzOne)
