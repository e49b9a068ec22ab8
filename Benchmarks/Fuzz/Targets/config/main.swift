// libFuzzer target for the processor configuration: ProcessorConfiguration(yaml:file:), and the listener and backoff built from it.
// What is checked: FuzzTarget.check (Tests/PGEventsFuzzOracles). Built and run by ci/fuzz.
import CLibFuzzer
import PGEventsFuzzOracles

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.config.fuzz(data, size)
}

pgevents_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv, fuzzOne)
