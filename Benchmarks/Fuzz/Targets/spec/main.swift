// libFuzzer target for the check spec: CheckSpec(yaml:file:baseDirectory:).
// What is checked: FuzzTarget.check (Tests/PGEventsFuzzOracles). Built and run by ci/fuzz.
import CLibFuzzer
import PGEventsFuzzOracles

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.spec.fuzz(data, size)
}

pgevents_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv, fuzzOne)
