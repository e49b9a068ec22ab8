// libFuzzer target for Redis replies: hiredis' RESP reader and RedisReply's conversion, through RedisReply.parse(resp:).
// What is checked: FuzzTarget.check (Tests/PGEventsFuzzOracles). Built and run by ci/fuzz.
import CLibFuzzer
import PGEventsFuzzOracles

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.resp.fuzz(data, size)
}

pgevents_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv, fuzzOne)
